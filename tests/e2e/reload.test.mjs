// reload.test.mjs - operator certificates from the config file, SIGHUP reload without dropping
// connections, a failed reload keeping the old certificates, and SNI certificate selection.
import test from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import {
  startServer, tmpDir, openssl, serviceReadable, DOMAIN, readFileSync, writeFileSync, rmSync, join,
} from './lib/harness.mjs';

// A self-signed EC P-256 certificate and key (PEM files under dir/name.{crt,key}).
function makeCert(dir, name, cn, sans) {
  const crt = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const r = openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', crt, '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', `subjectAltName=${sans.map((s) => `DNS:${s}`).join(',')}`]);
  if (r.status !== 0) throw new Error(`openssl req: ${r.stderr}`);
  serviceReadable(key);
  const fp = new X509Certificate(readFileSync(crt)).fingerprint256;
  return { crt, key, fp };
}

function writeConfig(dir, certs) {
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify({ tls: { certificates: certs.map((c) => ({ cert: c.crt, key: c.key })) } }));
  return path;
}

// One TLS connection that sends requests one after another and reads each response whole.
function connect(srv, { servername = DOMAIN } = {}) {
  return new Promise((resolve, reject) => {
    const opts = { host: '127.0.0.1', port: srv.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] };
    if (servername) opts.servername = servername;
    const sock = tls.connect(opts, () => resolve(conn));
    let buf = Buffer.alloc(0);
    let waiter = null;
    const conn = {
      sock,
      closed: false,
      fingerprint: () => sock.getPeerCertificate().fingerprint256,
      get(path, host = servername || '127.0.0.1') {
        return new Promise((res, rej) => {
          waiter = { res, rej };
          sock.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
          check();
        });
      },
      close() { sock.destroy(); },
    };
    function check() {
      if (!waiter) return;
      const s = buf.toString('latin1');
      const end = s.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = s.slice(0, end).match(/\r\ncontent-length:\s*(\d+)/i);
      const len = m ? Number(m[1]) : 0;
      if (buf.length < end + 4 + len) return;
      const status = Number(s.slice(9, 12));
      const body = s.slice(end + 4, end + 4 + len);
      buf = buf.subarray(end + 4 + len);
      const w = waiter;
      waiter = null;
      w.res({ status, head: s.slice(0, end), body });
    }
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); check(); });
    sock.on('close', () => { conn.closed = true; if (waiter) waiter.rej(new Error('connection closed')); });
    sock.on('error', (e) => { if (waiter) waiter.rej(e); else reject(e); });
  });
}

async function fingerprintOf(srv, servername) {
  const c = await connect(srv, { servername });
  try {
    return c.fingerprint();
  } finally {
    c.close();
  }
}

// Sends SIGHUP and waits for the n-th "reload.tls" log line.
async function reload(srv, n) {
  srv.proc.kill('SIGHUP');
  const deadline = Date.now() + 5000;
  for (;;) {
    const lines = srv.stderr.split('\n').filter((l) => l.includes('"event":"reload.tls"'));
    if (lines.length >= n) return JSON.parse(lines[n - 1]);
    if (Date.now() > deadline) throw new Error(`no reload.tls line #${n}:\n${srv.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('SIGHUP reloads operator certificates without dropping connections', async () => {
  const dir = tmpDir('rp-reload-');
  const a = makeCert(dir, 'a', DOMAIN, [DOMAIN]);
  const b = makeCert(dir, 'b', DOMAIN, [DOMAIN]);
  const live = { crt: join(dir, 'live.crt'), key: join(dir, 'live.key') };
  copyFileSync(a.crt, live.crt);
  copyFileSync(a.key, live.key);
  serviceReadable(live.key);
  const srv = await startServer({ args: ['--config', writeConfig(dir, [live])] });
  const conns = [];
  try {
    assert.notEqual(a.fp, b.fp);
    const old = await connect(srv);
    conns.push(old);
    assert.equal(old.fingerprint(), a.fp, 'starts with certificate A from the config file');
    const r1 = await old.get('/health');
    assert.equal(r1.status, 200, r1.head);
    assert.doesNotMatch(r1.head, /connection: close/i);

    copyFileSync(b.crt, live.crt);
    copyFileSync(b.key, live.key);
    const ev = await reload(srv, 1);
    assert.equal(ev.level, 'info', JSON.stringify(ev));

    // The connection opened before the reload still works, on the same socket, with A.
    const r2 = await old.get('/health');
    assert.equal(r2.status, 200, r2.head);
    assert.equal(JSON.parse(r2.body).status, 'ok');
    assert.equal(old.closed, false);
    assert.equal(old.fingerprint(), a.fp);
    // New connections get B.
    const fresh = await connect(srv);
    conns.push(fresh);
    assert.equal(fresh.fingerprint(), b.fp, 'a new connection gets certificate B');
    assert.equal((await fresh.get('/health')).status, 200);

    // A broken key: the reload fails, is logged, and B stays in use.
    writeFileSync(live.key, '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n');
    const bad = await reload(srv, 2);
    assert.equal(bad.level, 'error', JSON.stringify(bad));
    assert.match(bad.message, /live\.key/, 'the message names the file');
    assert.equal(await fingerprintOf(srv, DOMAIN), b.fp, 'old certificate kept after a failed reload');
    assert.equal((await old.get('/health')).status, 200, 'connections survive a failed reload');

    // A key that does not match the certificate is refused the same way.
    copyFileSync(a.key, live.key);
    const mismatch = await reload(srv, 3);
    assert.equal(mismatch.level, 'error', JSON.stringify(mismatch));
    assert.equal(await fingerprintOf(srv, DOMAIN), b.fp);

    // A missing certificate file too.
    rmSync(live.crt);
    const missing = await reload(srv, 4);
    assert.equal(missing.level, 'error', JSON.stringify(missing));
    assert.equal(await fingerprintOf(srv, DOMAIN), b.fp);

    // Fixing the files and reloading again brings A back.
    copyFileSync(a.crt, live.crt);
    const fixed = await reload(srv, 5);
    assert.equal(fixed.level, 'info', JSON.stringify(fixed));
    assert.equal(await fingerprintOf(srv, DOMAIN), a.fp);
    assert.equal((await old.get('/health')).status, 200);
    assert.equal((await fresh.get('/health')).status, 200);
    assert.equal(fresh.fingerprint(), b.fp);
  } finally {
    for (const c of conns) c.close();
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SNI selects among operator certificates; unknown names get the first', async () => {
  const dir = tmpDir('rp-sni-');
  const first = makeCert(dir, 'first', DOMAIN, [DOMAIN, `*.${DOMAIN}`]);
  const second = makeCert(dir, 'second', 'other.test', ['other.test', '*.wild.test']);
  const srv = await startServer({ args: ['--config', writeConfig(dir, [first, second])] });
  try {
    assert.equal(await fingerprintOf(srv, DOMAIN), first.fp);
    assert.equal(await fingerprintOf(srv, `login.${DOMAIN}`), first.fp);
    assert.equal(await fingerprintOf(srv, 'other.test'), second.fp);
    assert.equal(await fingerprintOf(srv, 'OTHER.Test'), second.fp, 'names compare case-insensitively');
    assert.equal(await fingerprintOf(srv, 'a.wild.test'), second.fp, 'wildcard covers one label');
    assert.equal(await fingerprintOf(srv, 'a.b.wild.test'), first.fp, 'wildcard covers exactly one label');
    assert.equal(await fingerprintOf(srv, 'wild.test'), first.fp, 'wildcard does not cover the bare name');
    assert.equal(await fingerprintOf(srv, 'unknown.example'), first.fp);
    assert.equal(await fingerprintOf(srv, null), first.fp, 'no SNI gets the first');
    // openssl s_client agrees.
    const r = openssl(['s_client', '-connect', `127.0.0.1:${srv.port}`, '-servername', 'other.test', '-CAfile', second.crt], 'Q\n');
    assert.match(r.stdout, /^subject=CN = other\.test$/m, r.stdout);
    assert.match(r.stdout, /Verify return code: 0 \(ok\)/, r.stdout);
    // The chosen certificate still serves requests on the platform names.
    const c = await connect(srv);
    try {
      assert.equal((await c.get('/health')).status, 200);
    } finally {
      c.close();
    }
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
