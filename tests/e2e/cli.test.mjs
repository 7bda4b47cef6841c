// cli.test.mjs - the `rampart` command line: help, version, init (idempotence, refusals, file
// modes), serve --check-config (exit 3 naming the bad key), status against a live server, and
// the documented exit codes (0 ok, 2 usage, 3 configuration, 4 init refused, 5 server,
// 6 not authorized).
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { existsSync, readdirSync, statSync } from 'node:fs';
import {
  BIN, startServer, request, tmpDir, DOMAIN, writeFileSync, mkdirSync, readFileSync, rmSync, join,
} from './lib/harness.mjs';
import { spawnSync } from 'node:child_process';

// The CLI reads RAMPART_* and $HOME/.config/rampart/client.json: run it in a clean environment.
const HOME = tmpDir('rp-cli-home-');
const ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RAMPART_')));
ENV.HOME = HOME;

function cli(args, env = {}) {
  return spawnSync(BIN, args, { encoding: 'utf8', timeout: 30000, env: { ...ENV, ...env } });
}

function json(r) {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function mode(p) {
  return statSync(p).mode & 0o777;
}

const TOKEN_RE = /^rpa_[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{32,}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

test.after(() => rmSync(HOME, { recursive: true, force: true }));

test('help, version and unknown commands', () => {
  for (const args of [['help'], ['--help'], ['-h'], []]) {
    const r = cli(args);
    assert.equal(r.status, 0, `${args}: ${r.stderr}`);
    assert.match(r.stdout, /^Usage:$/m);
    assert.match(r.stdout, /rampart serve/);
    assert.equal(r.stderr, '');
  }
  const bad = cli(['frobnicate']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown command 'frobnicate'/);
  assert.equal(bad.stdout, '', 'usage goes to stderr on error');

  const v = json(cli(['version', '--output', 'json']));
  assert.equal(v.name, 'rampart');
  assert.match(v.version, /^\d+\.\d+\.\d+/);
  assert.deepEqual(Object.keys(v).sort(), ['name', 'version']);
  const vt = cli(['version']);
  assert.equal(vt.status, 0);
  assert.equal(vt.stdout, `rampart ${v.version}\n`);
  assert.equal(cli(['--version']).stdout, vt.stdout);
  assert.equal(cli(['version', '--output', 'xml']).status, 2);
  assert.equal(cli(['version', '--bogus']).status, 2);
  assert.equal(cli(['version', 'extra']).status, 2);
});

test('init: report, idempotence, refusals, file modes', () => {
  const root = tmpDir('rp-cli-init-');
  try {
    const data = join(root, 'data'); // does not exist yet: init creates it
    const r = json(cli(['init', '--data', data, '--output', 'json']));
    assert.equal(r.created, true);
    assert.equal(r.domain, DOMAIN);
    assert.equal(r.ca_cert, join(data, 'tls', 'ca.crt'));
    assert.ok(existsSync(r.ca_cert));
    assert.match(readFileSync(r.ca_cert, 'utf8'), /^-----BEGIN CERTIFICATE-----\n/);
    assert.deepEqual(r.urls, { management: `https://${DOMAIN}:8443/`, login: `https://login.${DOMAIN}:8443/` });
    assert.match(r.admin_token, TOKEN_RE);
    assert.match(r.install_id, UUID_RE);
    assert.ok(Array.isArray(r.hosts) && r.hosts[0].startsWith('127.0.0.1 '), JSON.stringify(r.hosts));

    // Modes: private data regardless of the umask the CLI inherited (typically 022).
    assert.equal(mode(data), 0o700, 'data dir 0700');
    assert.equal(mode(join(data, 'keys', 'root-1.key')), 0o600, 'root key 0600');
    assert.equal(mode(join(data, 'keys', 'keystore.db')), 0o600, 'key store 0600');
    assert.equal(mode(join(data, 'objects.db')), 0o600, 'ciphertext store 0600');
    assert.equal(mode(join(data, 'keys')), 0o700);
    assert.equal(mode(join(data, 'tls')), 0o700);
    for (const f of ['tls/ca.key.sealed', 'tls/server.key.sealed', 'rampart.db'])
      assert.equal(mode(join(data, f)), 0o600, f);
    // The token is stored only as a hash: it appears in no file of the data dir.
    for (const f of ['install.json', 'rampart.db', 'keys/root-1.key', 'keys/keystore.db'])
      assert.ok(!readFileSync(join(data, f)).includes(r.admin_token.split('.')[1]), `${f} holds the token`);

    // Second init: nothing changes, no token shown.
    const before = readFileSync(join(data, 'keys', 'root-1.key'));
    const again = json(cli(['init', '--data', data, '--output', 'json']));
    assert.equal(again.created, false);
    assert.equal(again.admin_token, undefined);
    assert.equal(again.install_id, r.install_id);
    assert.equal(again.ca_cert, r.ca_cert);
    assert.deepEqual(readFileSync(join(data, 'keys', 'root-1.key')), before);
    const text = cli(['init', '--data', data]);
    assert.equal(text.status, 0);
    assert.match(text.stdout, /already initialised/);
    assert.doesNotMatch(text.stdout, /rpa_/);

    // Same directory, another domain: refused.
    const other = cli(['init', '--data', data, '--domain', 'other.test']);
    assert.equal(other.status, 4, other.stderr);
    assert.match(other.stderr, /other\.test/);

    // A non-empty directory that is not a rampart install: refused, untouched.
    const foreign = join(root, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'notes.txt'), 'mine');
    const f = cli(['init', '--data', foreign, '--output', 'json']);
    assert.equal(f.status, 4, f.stderr);
    assert.equal(f.stdout, '');
    assert.deepEqual(readdirSync(foreign), ['notes.txt']);

    // Bad domains: usage error, nothing created.
    for (const d of ['bad_domain!', '-x.test', 'a..b', 'UPPER.test', '', 'x'.repeat(300)]) {
      const dir = join(root, `bad-${Math.random().toString(36).slice(2)}`);
      const b = cli(['init', '--data', dir, '--domain', d]);
      assert.equal(b.status, 2, `domain ${JSON.stringify(d)}: ${b.stderr}`);
      assert.ok(!existsSync(dir), `domain ${JSON.stringify(d)} left ${dir} behind`);
    }

    // An existing empty directory is used, and made private.
    const empty = join(root, 'empty');
    mkdirSync(empty, { mode: 0o755 });
    assert.equal(json(cli(['init', '--data', empty, '--output', 'json'])).created, true);
    assert.equal(mode(empty), 0o700, 'an existing data dir is made 0700');
    // Missing parents are not created: a run-time failure, with the path in the message.
    const deep = cli(['init', '--data', join(root, 'no', 'such', 'parent')]);
    assert.equal(deep.status, 1, deep.stderr);
    assert.match(deep.stderr, /no\/such\/parent/);

    // A custom domain works and is reported.
    const custom = json(cli(['init', '--data', join(root, 'custom'), '--domain', 'apps.example.test', '--output', 'json']));
    assert.equal(custom.domain, 'apps.example.test');
    assert.equal(custom.urls.management, 'https://apps.example.test:8443/');

    // The data dir comes from RAMPART_DATA when --data is absent; neither is a usage error.
    const envInit = cli(['init', '--output', 'json'], { RAMPART_DATA: join(root, 'fromenv') });
    assert.equal(json(envInit).created, true);
    const none = cli(['init']);
    assert.equal(none.status, 2);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('serve --check-config: valid is 0, every bad value is 3 and names the key', () => {
  const root = tmpDir('rp-cli-cfg-');
  try {
    const data = join(root, 'data');
    json(cli(['init', '--data', data, '--output', 'json']));
    const ok = cli(['serve', '--data', data, '--check-config']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /configuration is valid/);
    const oj = json(cli(['serve', '--data', data, '--check-config', '--output', 'json', '--workers', '3']));
    assert.equal(oj.valid, true);
    assert.equal(oj.config.workers, 3);

    const unknownKey = join(root, 'unknown.json');
    writeFileSync(unknownKey, JSON.stringify({ limits: { idle_timout_ms: 5000 } }));
    const badJson = join(root, 'bad.json');
    writeFileSync(badJson, '{"limits": ');
    const badCert = join(root, 'badcert.json');
    writeFileSync(badCert, JSON.stringify({ tls: { certificates: [{ cert: join(root, 'nope.crt'), key: join(root, 'nope.key') }] } }));
    const cases = [
      [{ RAMPART_LIMITS_IDLE_TIMEOUT_MS: '5' }, [], /limits\.idle_timeout_ms/],
      [{ RAMPART_TLS_MIN_VERSION: '1.1' }, [], /tls\.min_version/],
      [{}, ['--listen', 'nope'], /listen/],
      [{}, ['--listen', '127.0.0.1:99999'], /listen/],
      [{}, ['--workers', '0x2'], /workers/],
      [{}, ['--workers', '-1'], /workers/],
      [{}, ['--config', unknownKey], /limits\.idle_timout_ms/],
      [{}, ['--config', badJson], /bad\.json/],
      [{}, ['--config', join(root, 'missing.json')], /missing\.json/],
      [{}, ['--config', badCert], /nope\.crt/],
      [{}, ['--http-listen', '127.0.0.1:8443'], /http_listen/],
    ];
    for (const [env, args, re] of cases) {
      const r = cli(['serve', '--data', data, '--check-config', ...args], env);
      const what = `${JSON.stringify(env)} ${args.join(' ')}`;
      assert.equal(r.status, 3, `${what}: ${r.stderr}`);
      assert.match(r.stderr, re, what);
      assert.equal(r.stdout, '', what);
    }
    // A directory that was never initialised is a configuration problem too.
    const notInit = cli(['serve', '--data', join(root, 'empty'), '--check-config']);
    assert.equal(notInit.status, 3, notInit.stderr);
    assert.match(notInit.stderr, /not an initialised data directory/);

    // Usage errors: no data dir, unknown flag, missing value.
    const noData = cli(['serve']);
    assert.equal(noData.status, 2);
    assert.match(noData.stderr, /--data/);
    assert.equal(cli(['serve', '--data', data, '--frob']).status, 2);
    assert.equal(cli(['serve', '--data']).status, 2);
    assert.equal(cli(['serve', '--data', data, '--check-config=yes']).status, 2);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

// A loopback port with nothing listening.
async function closedPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

test('status against a running server; the token never reaches the logs', async () => {
  const srv = await startServer();
  const ca = join(srv.dataDir, 'tls', 'ca.crt');
  const url = `https://127.0.0.1:${srv.port}`;
  let stopped = false;
  try {
    const st = json(cli(['status', '--url', url, '--ca', ca, '--token', srv.token, '--output', 'json']));
    assert.equal(st.health, 'ok');
    assert.equal(st.url, url);
    assert.equal(st.server.name, 'rampart');
    assert.equal(st.server.domain, DOMAIN);
    const text = cli(['status', '--url', url, '--ca', ca, '--token', srv.token]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /healthy/);
    // The environment works as well as the flags.
    const viaEnv = cli(['status', '--output', 'json'], { RAMPART_URL: url, RAMPART_CA: ca, RAMPART_TOKEN: srv.token });
    assert.equal(json(viaEnv).health, 'ok');

    const wrong = 'rpa_AAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
    const w = cli(['status', '--url', url, '--ca', ca, '--token', wrong]);
    assert.equal(w.status, 6, w.stderr);
    assert.doesNotMatch(w.stderr, /BBBBBBBB/, 'the token is never echoed');
    assert.equal(cli(['status', '--url', url, '--ca', ca]).status, 6, 'no token');

    // Without the CA the certificate does not verify: server error, not success.
    const noCa = cli(['status', '--url', url, '--token', srv.token]);
    assert.equal(noCa.status, 5, noCa.stderr);
    // Plain HTTP is refused before anything is sent.
    const plain = cli(['status', '--url', `http://127.0.0.1:${srv.httpPort}`, '--ca', ca, '--token', srv.token]);
    assert.equal(plain.status, 3, plain.stderr);
    assert.match(plain.stderr, /https/);
    assert.ok(!plain.stderr.includes(srv.token));

    // Drive the access log with the token in the header and in a query string.
    const q = await request(srv, { path: `/api/version?token=${encodeURIComponent(srv.token)}`, headers: { authorization: `Bearer ${srv.token}` } });
    assert.equal(q.status, 200);

    await srv.stop({ keepData: true });
    stopped = true;
    const logs = srv.stderr;
    assert.match(logs, /"path":"\/api\/version"/, 'the access log saw the requests');
    const secret = srv.token.split('.')[1];
    assert.ok(!logs.includes(secret), 'the admin token must not appear in serve output');
    assert.ok(!logs.includes(wrong.split('.')[1]), 'nor a rejected token');

    // Server down: exit 5.
    const down = cli(['status', '--url', `https://127.0.0.1:${await closedPort()}`, '--ca', ca, '--token', srv.token]);
    assert.equal(down.status, 5, down.stderr);
    assert.ok(!down.stderr.includes(secret));
  } finally {
    if (!stopped) await srv.stop({ keepData: true });
    rmSync(srv.dataDir, { recursive: true, force: true });
  }
});
