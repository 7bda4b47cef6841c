// sites-proxy.test.mjs - the proxy's keep-alive pool to an app process (docs/sites.md "App
// processes", src/sites/proxy.c). The app is a raw TCP server written here (not node:http, so it
// can answer exactly as a test needs: Connection: close while keeping the socket, HTTP/1.0, a
// body that ends with the connection, a HEAD head announcing a body) that reports, per request,
// which of its connections carried it. One worker, so every request meets the same pool.
import test from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, request, DOMAIN, SCALE, sleep } from './lib/harness.mjs';
import { uniq, cliAsync, cliEnv } from './lib/iam.mjs';

const APP = String.raw`
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
const boot = randomBytes(4).toString('hex');
const sockets = new Set();
let conns = 0;
net.createServer((sock) => {
  const conn = ++conns;
  let n = 0;
  let doom = false;
  let buf = Buffer.alloc(0);
  sockets.add(sock);
  sock.on('close', () => sockets.delete(sock));
  sock.on('error', () => {});
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const m = /\r\ncontent-length: *(\d+)/i.exec(head);
      const blen = m ? Number(m[1]) : 0;
      if (/\r\ntransfer-encoding:/i.test(head)) { sock.destroy(); return; }
      if (buf.length < end + 4 + blen) return;
      const body = buf.subarray(end + 4, end + 4 + blen);
      buf = buf.subarray(end + 4 + blen);
      if (doom) { sock.destroy(); return; }
      n++;
      answer(head.split(' ')[0], head.split(' ')[1], body);
    }
  });
  function answer(method, url, body) {
    const u = new URL(url, 'http://app');
    const info = JSON.stringify({ boot, conn, n, len: body.length,
      sha: createHash('sha256').update(body).digest('hex'), open: sockets.size, conns });
    const ok = (extra = '') => sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n' + extra +
      'Content-Length: ' + Buffer.byteLength(info) + '\r\n\r\n' + info);
    switch (u.pathname) {
      case '/close': ok('Connection: close\r\n'); break; // ... and the socket stays open
      case '/http10': sock.write('HTTP/1.0 200 OK\r\nContent-Length: ' + info.length + '\r\n\r\n' + info); break;
      case '/eof': sock.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n' + info); break;
      case '/204': sock.write('HTTP/1.1 204 No Content\r\nX-Info: ' + info + '\r\n\r\n'); break;
      case '/head': sock.write('HTTP/1.1 200 OK\r\nContent-Length: 12345\r\nX-Info: ' + info + '\r\n\r\n'); break;
      case '/slow': setTimeout(() => ok(), Number(u.searchParams.get('ms'))); break;
      case '/crash': sock.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbye\n', () => process.exit(3)); break;
      case '/doom': ok(); doom = true; break; // the next request on it is dropped unanswered
      case '/close-idle': ok(); setTimeout(() => { for (const s of sockets) s.destroy(); }, 50); break;
      default: ok();
    }
  }
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'));
`;

let srv;
let home;
let src;
let name;

const keepAlive = () => new https.Agent({ keepAlive: true, maxSockets: 1 });
const get = (path, agent, opts = {}) => request(srv, { host: `${name}.${DOMAIN}`, path, agent, timeout: 30000 * SCALE, ...opts });
const info = async (path, agent, opts) => {
  const r = await get(path, agent, opts);
  assert.equal(r.status, 200, `${path}: ${r.status} ${r.text}`);
  return JSON.parse(r.text);
};

test.before(async () => {
  srv = await startServer({ args: ['--workers', '1'] });
  home = mkdtempSync(join(tmpdir(), 'rp-pxy-home-'));
  src = mkdtempSync(join(tmpdir(), 'rp-pxy-app-'));
  writeFileSync(join(src, 'server.mjs'), APP);
  name = uniq('pool').replace(/[^a-z0-9-]/g, '').slice(0, 40);
  const env = cliEnv(srv, home);
  const r = await cliAsync(['app', 'create', name, '--command', 'node server.mjs', '--static', src], { env });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const t0 = Date.now();
  for (;;) {
    const g = await get('/', undefined);
    if (g.status === 200) break;
    if (Date.now() - t0 > 20000 * SCALE) throw new Error(`the app did not come up: ${g.status} ${g.text}`);
    await sleep(100);
  }
});
test.after(async () => {
  if (srv) await srv.stop();
  rmSync(home, { recursive: true, force: true });
  rmSync(src, { recursive: true, force: true });
});

test('sequential requests over one client connection share one upstream connection', async () => {
  const agent = keepAlive();
  try {
    const seen = [];
    for (let i = 0; i < 30; i++) seen.push(await info(`/?i=${i}`, agent));
    const conns = new Set(seen.map((x) => `${x.boot}/${x.conn}`));
    assert.ok(conns.size <= 2, `30 requests used ${conns.size} upstream connections`);
    assert.ok(Math.max(...seen.map((x) => x.n)) >= 15, 'connections were reused');
  } finally {
    agent.destroy();
  }
});

test('an answer with Connection: close, or HTTP/1.0 without keep-alive, is not reused', async () => {
  const agent = keepAlive();
  try {
    const a = await info('/', agent);
    const c = await info('/close', agent); // the app keeps that socket open all the same
    assert.equal(c.conn, a.conn, 'the idle connection was reused for /close');
    const b = await info('/', agent);
    assert.notEqual(b.conn, c.conn, 'a connection after Connection: close was reused');
    const d = await info('/http10', agent);
    assert.equal(d.conn, b.conn);
    const e = await info('/', agent);
    assert.notEqual(e.conn, d.conn, 'a connection after an HTTP/1.0 answer was reused');
  } finally {
    agent.destroy();
  }
});

test('HEAD and 204 answers end at their head, and the connection is reused after them', async () => {
  const agent = keepAlive();
  try {
    const a = await info('/', agent);
    const t0 = Date.now();
    const h = await get('/head', agent, { method: 'HEAD', timeout: 5000 * SCALE });
    assert.equal(h.status, 200);
    assert.equal(h.body.length, 0);
    assert.ok(Date.now() - t0 < 3000 * SCALE, 'the HEAD answer waited for a body');
    assert.equal(JSON.parse(h.headers['x-info']).conn, a.conn);
    const b = await info('/', agent);
    assert.equal(b.conn, a.conn, 'not reused after HEAD');
    assert.equal(b.n, JSON.parse(h.headers['x-info']).n + 1);
    const nc = await get('/204', agent, { timeout: 5000 * SCALE });
    assert.equal(nc.status, 204);
    assert.equal(nc.body.length, 0);
    assert.equal(JSON.parse(nc.headers['x-info']).conn, a.conn);
    const c = await info('/', agent);
    assert.equal(c.conn, a.conn, 'not reused after 204');
  } finally {
    agent.destroy();
  }
});

test('an answer that ends with the connection arrives whole; the next request gets a new one', async () => {
  const agent = keepAlive();
  try {
    const a = await info('/', agent);
    const r = await get('/eof', agent);
    assert.equal(r.status, 200);
    const body = JSON.parse(r.text); // cut short, it would not parse
    assert.equal(body.conn, a.conn);
    const b = await info('/', agent);
    assert.notEqual(b.conn, a.conn);
  } finally {
    agent.destroy();
  }
});

test('a POST with a body after the app closed its idle connections', async () => {
  const agent = keepAlive();
  try {
    await info('/', agent);
    await info('/close-idle', agent);
    await sleep(300); // the app has closed every connection by now, the pooled one included
    const body = randomBytes(200 * 1024);
    const r = await info('/echo', agent, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } });
    assert.equal(r.len, body.length);
    assert.equal(r.sha, createHash('sha256').update(body).digest('hex'));
    assert.equal(r.n, 1);
  } finally {
    agent.destroy();
  }
});

test('a request with a body reuses only a connection used within the last 2 s', async () => {
  const agent = keepAlive();
  const post = () => info('/echo', agent, { method: 'POST', body: 'hello', headers: { 'content-length': 5 } });
  try {
    const a = await info('/', agent);
    const b = await post();
    assert.equal(b.conn, a.conn, 'a fresh connection was not reused');
    await sleep(2300);
    const c = await post();
    assert.notEqual(c.conn, b.conn, 'a connection idle for 2.3 s was reused for a body');
    const d = await info('/', agent); // the newest idle connection first
    assert.equal(d.conn, c.conn);
  } finally {
    agent.destroy();
  }
});

test('a pooled connection the app drops as the next request arrives: that request goes out again', async () => {
  const agent = keepAlive();
  try {
    const a = await info('/doom', agent);
    const b = await info('/', agent); // the app closes the connection on it, unanswered
    assert.notEqual(b.conn, a.conn);
    assert.equal(b.n, 1);
  } finally {
    agent.destroy();
  }
});

test('the app crashing and restarting with pooled connections does not fail the next GET', async () => {
  // Several idle connections in the pool: concurrent requests over separate client connections.
  const before = await Promise.all(Array.from({ length: 4 }, () => info('/slow?ms=100', undefined)));
  assert.ok(new Set(before.map((x) => x.conn)).size >= 2);
  const agent = keepAlive();
  try {
    assert.equal((await get('/crash', agent)).text, 'bye\n');
    // Until the process is gone it still accepts connections on its listening socket and then
    // resets them, unanswered: nothing tells that from an app failing the request (502). Once
    // it is gone, and before it is restarted (0.5 s), the pool holds dead connections only.
    await sleep(250);
    const r = await get('/', agent);
    assert.equal(r.status, 200, r.text);
    const after = JSON.parse(r.text);
    assert.notEqual(after.boot, before[0].boot, 'answered by the old process?');
    // And again at once: pooled connections to the new process work.
    assert.equal((await info('/', agent)).boot, after.boot);
  } finally {
    agent.destroy();
  }
});

test('the pool is bounded: after 40 concurrent requests at most 32 connections stay open', async () => {
  const r = await Promise.all(Array.from({ length: 40 }, () => info('/slow?ms=300', undefined)));
  assert.ok(new Set(r.map((x) => x.conn)).size >= 33, 'the requests were not concurrent');
  await sleep(200);
  const s = await info('/', undefined);
  assert.ok(s.open <= 32, `${s.open} upstream connections open`);
  assert.ok(s.open >= 1);
});
