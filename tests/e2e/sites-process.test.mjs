// sites-process.test.mjs - app processes behind the reverse proxy (docs/sites.md "App
// processes"): examples/app-node deployed and started in its sandbox with PORT, requests and
// bodies streamed both ways (30 MB echo, 8 MB chunked answer), the forwarding headers and the
// headers a client must not be able to set, restart after a crash, the app's log, redeploy,
// and what the sandbox lets the app see.
import test from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, rmSync, cpSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, request, lookupLoopback, DOMAIN, SCALE, sleep } from './lib/harness.mjs';
import { api, apiOk, uniq, cliAsync, cliEnv } from './lib/iam.mjs';

const EXAMPLE = new URL('../../examples/app-node', import.meta.url).pathname;
let srv;
let home;
let name;
let env;

const appName = (p) => uniq(p).replace(/[^a-z0-9-]/g, '').slice(0, 40);
const get = (path, headers = {}) => request(srv, { host: `${name}.${DOMAIN}`, path, headers, timeout: 30000 * SCALE });

// Sends body to path and hashes what comes back, without holding either in one piece.
function stream(path, body, { method = 'POST' } = {}) {
  return new Promise((resolve, reject) => {
    const h = `${name}.${DOMAIN}`;
    const req = https.request({ host: h, servername: h, port: srv.port, path, method, ca: srv.ca, agent: false, lookup: lookupLoopback,
      headers: body ? { 'content-type': 'application/octet-stream', 'content-length': body.length } : {} }, (res) => {
      const hash = createHash('sha256');
      let n = 0;
      res.on('data', (c) => { hash.update(c); n += c.length; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, bytes: n, sha: hash.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) {
      // In 1 MiB pieces: the proxy has to stream, not buffer.
      for (let i = 0; i < body.length; i += 1 << 20) req.write(body.subarray(i, i + (1 << 20)));
    }
    req.end();
  });
}

async function waitUp(what = 'the app') {
  const t0 = Date.now();
  for (;;) {
    const r = await get('/');
    if (r.status === 200) return r;
    if (Date.now() - t0 > 20000 * SCALE) throw new Error(`${what} did not come up: ${r.status} ${r.text}`);
    await sleep(100);
  }
}

test.before(async () => {
  srv = await startServer();
  home = mkdtempSync(join(tmpdir(), 'rp-proc-home-'));
  env = cliEnv(srv, home);
  name = appName('node');
  const r = await cliAsync(['app', 'create', name, '--command', 'node server.js', '--static', EXAMPLE], { env });
  assert.equal(r.status, 0, r.stderr + r.stdout);
});
test.after(async () => {
  if (srv) await srv.stop();
  rmSync(home, { recursive: true, force: true });
});

test('a process app answers through the proxy; forwarding headers set, spoofed ones stripped', async () => {
  const r = await waitUp();
  assert.equal(r.text, 'hello from node, version 1\n');
  assert.match(r.headers['strict-transport-security'], /max-age/);
  const h = JSON.parse((await get('/headers', {
    'x-forwarded-for': '203.0.113.7', 'x-ms-client-principal': 'eyJhZG1pbiI6dHJ1ZX0=', 'x-ms-client-principal-id': 'x',
    'x-arr-clientcert': 'forged', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'evil.example', 'x-custom': 'kept', connection: 'x-custom',
  })).text);
  assert.equal(h.host, `${name}.${DOMAIN}`);
  assert.equal(h['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'https');
  assert.equal(h['x-forwarded-host'], `${name}.${DOMAIN}`);
  for (const k of ['x-ms-client-principal', 'x-ms-client-principal-id', 'x-arr-clientcert', 'x-custom'])
    assert.equal(h[k], undefined, `${k} must not reach the app`);
  const app = await apiOk(srv, 'GET', `/api/apps/${name}`, {}, 200);
  assert.equal(app.properties.appCommandLine, 'node server.js');
  // HEAD: the head only, at once (the app's answer announces a body that never comes).
  const head = await request(srv, { method: 'HEAD', host: `${name}.${DOMAIN}`, path: '/', timeout: 5000 * SCALE });
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  // Underscore look-alikes of the trusted headers never reach the app.
  const u = JSON.parse((await get('/headers', { x_ms_client_principal_name: 'admin', 'x-client-ip': '10.0.0.1' })).text);
  assert.equal(u.x_ms_client_principal_name, undefined);
  assert.equal(u['x-client-ip'], undefined);
});

test('bodies stream both ways: a 30 MB echo and an 8 MB chunked answer arrive intact', async () => {
  const body = randomBytes(30 * 1024 * 1024);
  const r = await stream('/echo', body);
  assert.equal(r.status, 200);
  assert.equal(r.bytes, body.length);
  assert.equal(r.sha, createHash('sha256').update(body).digest('hex'));
  const big = await stream('/big?mb=8', null, { method: 'GET' });
  assert.equal(big.status, 200);
  assert.equal(big.bytes, 8 * 1024 * 1024);
  assert.equal(big.headers['transfer-encoding'], 'chunked');
  assert.equal((await get('/nope')).status, 404);
});

test('the sandbox: only PORT and the site variables; no data directory, no /etc/shadow', async () => {
  const e = JSON.parse((await get('/env')).text);
  assert.ok(Number(e.PORT) > 0);
  assert.equal(e.WEBSITE_SITE_NAME, name);
  assert.equal(e.WEBSITE_HOSTNAME, `${name}.${DOMAIN}`);
  assert.deepEqual(Object.keys(e).filter((k) => k.startsWith('RAMPART') || k.startsWith('NODE_') || k === 'SSH_AUTH_SOCK'), []);
  for (const path of [join(srv.dataDir, 'keys', 'root-1.key'), join(srv.dataDir, 'rampart.db'), '/etc/shadow', '/root/.bashrc'])
    assert.equal((await get(`/read?path=${encodeURIComponent(path)}`)).text, 'ENOENT', path);
  // The release is read-only to the app.
  assert.equal((await get('/read?path=/home/site/wwwroot/server.js')).status, 200);
});

test('a crashing app is restarted, and its output is in the app log (API and CLI)', async () => {
  assert.equal((await get('/crash')).text, 'bye\n');
  const t0 = Date.now();
  await waitUp('the restarted app');
  assert.ok(Date.now() - t0 < 10000 * SCALE);
  const logs = await apiOk(srv, 'GET', `/api/apps/${name}/logs`, {}, 200);
  assert.match(logs.text, /process exited \(status 3/);
  assert.match(logs.text, /restarting in \d+ ms/);
  assert.match(logs.text, /GET \/crash/);
  assert.ok(logs.size >= logs.text.length);
  const again = await apiOk(srv, 'GET', `/api/apps/${name}/logs?offset=${logs.offset}`, {}, 200);
  assert.equal(again.offset >= logs.offset, true);
  const cli = await cliAsync(['app', 'logs', name], { env });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /listening on \d+/);
  assert.equal((await api(srv, 'GET', `/api/apps/${name}/logs?offset=x`)).status, 400);
});

test('redeploy restarts the process on the new release; without a command the app is static again', async () => {
  const src = mkdtempSync(join(tmpdir(), 'rp-proc-src-'));
  try {
    cpSync(EXAMPLE, src, { recursive: true });
    writeFileSync(join(src, 'version.txt'), '2\n');
    writeFileSync(join(src, 'index.html'), 'static page');
    const r = await cliAsync(['app', 'deploy', name, src], { env });
    assert.equal(r.status, 0, r.stderr);
    const t0 = Date.now();
    for (;;) {
      const g = await get('/');
      if (g.text === 'hello from node, version 2\n') break;
      if (Date.now() - t0 > 20000 * SCALE) throw new Error(`still ${g.status} ${g.text}`);
      await sleep(100);
    }
    const off = await api(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { appCommandLine: '' } } });
    assert.equal(off.status, 200, off.text);
    assert.equal((await get('/')).text, 'static page');
    assert.equal((await get('/index.html', {})).status, 200);
    const post = await request(srv, { method: 'POST', host: `${name}.${DOMAIN}`, path: '/', body: 'x' });
    assert.equal(post.status, 405);
    // And back.
    assert.equal((await api(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { appCommandLine: 'node server.js' } } })).status, 200);
    assert.equal((await waitUp()).text, 'hello from node, version 2\n');
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
});

test('an app whose process does not start answers 502; a command with control characters is refused', async () => {
  const bad = appName('bad');
  await apiOk(srv, 'PUT', `/api/apps/${bad}`, { body: { properties: { appCommandLine: 'exit 1' } } }, 201);
  assert.equal((await api(srv, 'PUT', `/api/apps/${bad}`, { body: { properties: { appCommandLine: 'a\nb' } } })).status, 400);
  const r0 = await request(srv, { host: `${bad}.${DOMAIN}` });
  assert.equal(JSON.parse(r0.text).error.code, 'NoContent');
  const zip = (await import('./lib/zip.mjs')).makeZip([{ name: 'index.html', data: 'x' }]);
  const d = await request(srv, { method: 'POST', host: `${bad}.scm.${DOMAIN}`, path: '/api/zipdeploy', headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/zip' }, body: zip });
  assert.equal(d.status, 200, d.text);
  const r = await request(srv, { host: `${bad}.${DOMAIN}`, timeout: 30000 * SCALE });
  assert.equal(r.status, 502, r.text);
  assert.equal(JSON.parse(r.text).error.code, 'BadGateway');
  // Deleting the app stops its process for good.
  assert.equal((await api(srv, 'DELETE', `/api/apps/${bad}`)).status, 204);
});
