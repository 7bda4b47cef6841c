// functions-c.test.mjs - the C custom handler example (examples/functions/c): built with its own
// Makefile in a scratch copy (the repo tree stays clean), checked on its own as an HTTP/1.1
// server (the port variable, keep-alive, pipelining, its limits), then deployed as a function
// app with the CLI and called through rampart: the function key (401 with an empty body without
// it, 200 with x-functions-key or ?code=), the JSON greeting and its headers, a POST body, a
// route parameter and its constraint, a `$return` answer, and a timer firing on a 2 s schedule.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, request, openTcp, DOMAIN, SCALE, sleep } from './lib/harness.mjs';
import { apiOk, uniq, cliAsync, cliEnv } from './lib/iam.mjs';

const EXAMPLE = new URL('../../examples/functions/c', import.meta.url).pathname;
let srv;
let home;
let work; // the scratch copy of the example, built
let env;
let name; // the function app
let keys; // { masterKey, functionKeys, systemKeys }

const call = (path, { headers = {}, method = 'GET', body } = {}) =>
  request(srv, { host: `${name}.${DOMAIN}`, path, headers, method, body, timeout: 30000 * SCALE });
const json = (r) => { assert.match(r.headers['content-type'] || '', /application\/json/, r.text); return JSON.parse(r.text); };

async function until(pred, what, ms = 30000 * SCALE) {
  const t0 = Date.now();
  for (;;) {
    if (await pred()) return;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test.before(async () => {
  // Build in a copy, leaving out any handler binary built in the repo (it may be stale).
  work = mkdtempSync(join(tmpdir(), 'rp-fnc-'));
  cpSync(EXAMPLE, work, { recursive: true, filter: (src) => src !== join(EXAMPLE, 'handler') });
  const mk = spawnSync('make', ['-C', work], { encoding: 'utf8', timeout: 120000 });
  assert.equal(mk.status, 0, `make failed:\n${mk.stdout}${mk.stderr}`);
  srv = await startServer();
  home = mkdtempSync(join(tmpdir(), 'rp-fnc-home-'));
  env = cliEnv(srv, home);
  name = uniq('fnc').replace(/[^a-z0-9-]/g, '').slice(0, 40);
  const c = await cliAsync(['app', 'create', name], { env });
  assert.equal(c.status, 0, c.stderr + c.stdout);
  const d = await cliAsync(['app', 'deploy', name, work, '--allow-anonymous'], { env, timeoutMs: 120000 * SCALE });
  assert.equal(d.status, 0, d.stderr + d.stdout);
  await until(async () => (await call('/api/ping')).status === 200, 'the C handler to answer');
  keys = await apiOk(srv, 'POST', `/api/apps/${name}/host/default/listkeys`, {}, 200);
});

test.after(async () => {
  if (srv) await srv.stop();
  if (home) rmSync(home, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------- the handler on its own

async function freePort() {
  const s = net.createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

// Starts the built handler outside rampart; resolves once it says it listens.
async function startHandler(port) {
  const p = spawn(join(work, 'handler'), [], { env: { FUNCTIONS_CUSTOMHANDLER_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the handler did not start: ${out}`)), 5000 * SCALE);
    p.stdout.on('data', (d) => { out += d; if (out.includes('listening')) { clearTimeout(timer); resolve(); } });
    p.stderr.on('data', (d) => { out += d; });
    p.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the handler exited ${code}: ${out}`)); });
  });
  return p;
}

const post = (fn, body, extra = '') =>
  `POST /${fn} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

test('the handler on its own: it needs its port, and is a careful HTTP/1.1 server', async () => {
  const bin = join(work, 'handler');
  for (const v of [undefined, '', 'http', '70000']) {
    const r = spawnSync(bin, [], { env: v === undefined ? {} : { FUNCTIONS_CUSTOMHANDLER_PORT: v }, encoding: 'utf8', timeout: 5000 });
    assert.equal(r.status, 2, `port ${v}: ${r.stderr}`);
    assert.match(r.stderr, /FUNCTIONS_CUSTOMHANDLER_PORT/);
  }
  const port = await freePort();
  const h = await startHandler(port);
  try {
    // Keep-alive and pipelining: two invocations in one write, answered in order, connection open.
    let c = await openTcp(port);
    await c.write(post('ping', '{}') + post('items', '{"Data":{"req":{"Params":{"id":"9"}}}}'));
    assert.ok(await c.waitResponses(2, 5000 * SCALE), c.text);
    const [a, b] = c.responses;
    assert.equal(a.status, 200);
    assert.equal(a.headers.connection, 'keep-alive');
    assert.deepEqual(JSON.parse(a.body).ReturnValue, { statusCode: 200, headers: { 'Content-Type': 'text/plain' }, body: 'pong' });
    assert.deepEqual(JSON.parse(JSON.parse(b.body).Outputs.res.body), { id: 9 });
    assert.equal(c.closed, false);
    // A third on the same connection, asking to close: answered, then closed.
    await c.write(post('ticks', '{}', 'Connection: close\r\n'));
    assert.ok(await c.waitClosed(5000 * SCALE), 'closed after Connection: close');
    assert.equal(c.responses.length, 3);
    assert.equal(c.responses[2].headers.connection, 'close');

    // Refusals, each with the status a client can act on and no body.
    const refusals = [
      ['POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n', 413, true],
      ['POST /ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n', 501, true],
      ['POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 400, true],
      ['POST /ping HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}', 400, true], // HTTP/1.1 without Host
      ['POST /ping HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\nContent-Length: 2\r\n\r\n{}', 400, true],
      [`POST /ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`, 431, true],
      ['POST /ping HTTP/2.0\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}', 400, true],
      [`POST /${'p'.repeat(2000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414, true],
      ['GET /hello HTTP/1.1\r\nHost: x\r\n\r\n', 405, false],
      ['POST /nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}', 404, false],
      ['POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n[1,2]', 400, false], // not an envelope
    ];
    for (const [raw, status, closes] of refusals) {
      c = await openTcp(port);
      await c.write(raw);
      assert.ok(await c.waitResponses(1, 5000 * SCALE), `${raw.slice(0, 60)}: ${c.text}`);
      assert.equal(c.responses[0].status, status, raw.slice(0, 60));
      assert.equal(c.responses[0].body, '');
      if (closes) assert.ok(await c.waitClosed(5000 * SCALE), `${status} closes the connection`);
      else assert.equal(c.responses[0].headers.connection, 'keep-alive');
      c.destroy();
    }
    // A body that arrives in pieces, larger than the first read.
    c = await openTcp(port);
    const name = 'x'.repeat(100000);
    const body = JSON.stringify({ Data: { req: { Query: {}, Body: JSON.stringify({ name }) } } });
    const msg = post('hello', body);
    for (let i = 0; i < msg.length; i += 30000) { await c.write(msg.slice(i, i + 30000)); await sleep(10); }
    assert.ok(await c.waitResponses(1, 5000 * SCALE), c.text.slice(0, 200));
    assert.equal(c.responses[0].status, 200);
    const greeting = JSON.parse(JSON.parse(c.responses[0].body).Outputs.res.body).greeting;
    assert.ok(greeting === `Hello, ${name}!`, greeting.slice(0, 40));
    c.destroy();
  } finally {
    h.kill('SIGTERM');
  }
});

// ---------------------------------------------------------------- through rampart

test('hello needs a function key: 401 with an empty body without one, 200 with x-functions-key or ?code=', async () => {
  const fnKey = (await apiOk(srv, 'POST', `/api/apps/${name}/functions/hello/listkeys`, {}, 200)).default;
  assert.ok(fnKey);
  const none = await call('/api/hello?name=ann');
  assert.equal(none.status, 401);
  assert.equal(none.text, '');
  assert.equal((await call('/api/hello?name=ann', { headers: { 'x-functions-key': 'wrong-key-0123456789' } })).status, 401);
  assert.equal((await call('/api/hello?code=wrong-key-0123456789')).status, 401);
  for (const r of [
    await call('/api/hello?name=ann', { headers: { 'x-functions-key': keys.functionKeys.default } }),
    await call('/api/hello?name=ann', { headers: { 'x-functions-key': fnKey } }),
    await call(`/api/hello?name=ann&code=${encodeURIComponent(fnKey)}`),
    await call(`/api/hello?code=${encodeURIComponent(keys.functionKeys.default)}&name=ann`),
  ]) {
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(json(r), { greeting: 'Hello, ann!' });
  }
  // The anonymous functions need none.
  assert.equal((await call('/api/ping')).status, 200);
  assert.equal((await call('/api/items/1')).status, 200);
});

test('hello: the JSON greeting with its headers, the name from the query or a POST body', async () => {
  const k = { 'x-functions-key': keys.functionKeys.default };
  let r = await call('/api/hello', { headers: k });
  assert.equal(r.status, 200);
  assert.deepEqual(json(r), { greeting: 'Hello, world!' });
  assert.equal(r.headers['x-handler'], 'rampart-c-example');
  // The handler echoes the X-Azure-Functions-InvocationId it got: rampart's request id.
  assert.ok(r.headers['x-invocation-id'], JSON.stringify(r.headers));
  assert.equal(r.headers['x-invocation-id'], r.headers['x-ms-request-id']);
  r = await call('/api/hello?name=Zo%C3%AB', { headers: k });
  assert.deepEqual(json(r), { greeting: 'Hello, Zoë!' });
  // POST: the name from a JSON body; the query still wins.
  const body = JSON.stringify({ name: 'Bo "the" builder' });
  r = await call('/api/hello', { method: 'POST', body, headers: { ...k, 'content-type': 'application/json' } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(json(r), { greeting: 'Hello, Bo "the" builder!' });
  r = await call('/api/hello?name=q', { method: 'POST', body, headers: { ...k, 'content-type': 'application/json' } });
  assert.deepEqual(json(r), { greeting: 'Hello, q!' });
  // A large body, well past the handler's first read.
  const big = 'n'.repeat(1 << 20);
  r = await call('/api/hello', { method: 'POST', body: JSON.stringify({ name: big }), headers: { ...k, 'content-type': 'application/json' } });
  assert.equal(r.status, 200);
  const g = json(r).greeting;
  assert.ok(g === `Hello, ${big}!`, `${g.length} bytes: ${g.slice(0, 40)}`);
  // The status the handler sets is the one the client gets.
  r = await call('/api/hello', { method: 'POST', body: 'not json', headers: { ...k, 'content-type': 'text/plain' } });
  assert.equal(r.status, 400);
  assert.deepEqual(json(r), { error: 'expected {"name": STRING}' });
  // Only the methods function.json names.
  assert.equal((await call('/api/hello', { method: 'DELETE', headers: k })).status, 404);
  // Over the host's 4 MiB limit: refused before it reaches the handler.
  r = await call('/api/hello', { method: 'POST', body: 'x'.repeat((4 << 20) + 1), headers: k });
  assert.equal(r.status, 413);
});

test('items/{id:int}: the route parameter reaches the handler; an id that is not an int is 404', async () => {
  for (const id of [0, 42, -3, 2147483647]) {
    const r = await call(`/api/items/${id}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(json(r), { id });
  }
  for (const bad of ['abc', '4.2', '1e3', '', '42/more']) {
    const r = await call(`/api/items/${bad}`);
    assert.equal(r.status, 404, bad);
    assert.equal(r.text, '', bad);
  }
  assert.equal((await call('/api/items/42', { method: 'POST', body: '{}' })).status, 404, 'GET only');
});

test('$return: ping answers through the return value', async () => {
  const r = await call('/api/ping');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'pong');
  assert.match(r.headers['content-type'], /^text\/plain/);
});

test('the timer runs every 2 s and the handler counts its runs', async () => {
  const ticks = async () => {
    const r = await call('/api/ticks');
    assert.equal(r.status, 200, r.text);
    return json(r);
  };
  let first;
  await until(async () => (first = await ticks()).runs >= 1, 'the first timer run', 15000 * SCALE);
  assert.match(first.last, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'UtcNow of the last run');
  const t0 = Date.now();
  let now;
  // Two more occurrences: a last run at least 4 s (two periods) after the first one seen.
  await until(async () => Date.parse((now = await ticks()).last) - Date.parse(first.last) >= 4000, 'two more timer occurrences', 15000 * SCALE);
  assert.ok(now.runs >= first.runs + 2, `${first.runs} runs, then ${now.runs}`);
  // Not running wild: a 2 s schedule gives one run per occurrence. The bound is loose on
  // purpose: rampart can run one occurrence two or three times when its timer fires a few ms
  // before the wall clock reaches the second (timers.c recomputes the next occurrence from the
  // current second and finds the same one again), which a busy machine makes likely.
  const elapsed = Date.now() - t0;
  assert.ok(now.runs - first.runs <= 3 * (Math.ceil(elapsed / 2000) + 1), `${now.runs - first.runs} runs in ${elapsed} ms`);
});
