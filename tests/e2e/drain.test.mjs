// drain.test.mjs - SIGTERM: listeners close at once, idle connections close, requests in
// flight are finished with "Connection: close", stragglers are cut at the drain timeout, and
// the process exits 0.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, DOMAIN, SCALE, sleep, openTls, openTcp, completeResponses } from './lib/harness.mjs';

const PROMPT = 500 * SCALE; // "promptly"

// Resolves 'refused' on ECONNREFUSED, 'connected' when the kernel completed the handshake.
function probe(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve('connected'); });
    s.once('error', (e) => { s.destroy(); resolve(e.code === 'ECONNREFUSED' ? 'refused' : e.code); });
  });
}

// Probes until refused or timeoutMs; returns ms from `since` to the first refusal, or -1.
async function refusedWithin(port, since, timeoutMs) {
  while (performance.now() - since < timeoutMs) {
    if ((await probe(port)) === 'refused') return performance.now() - since;
    await sleep(10);
  }
  return -1;
}

function exitWithin(srv, ms) {
  return Promise.race([srv.exited.then((r) => ({ ...r, at: performance.now() })), sleep(ms).then(() => null)]);
}

test('SIGTERM: a request whose body is still arriving is answered; idle connections close; new ones are refused; exit 0', async (t) => {
  const DRAIN = 5000 * SCALE;
  const srv = await startServer({ env: { RAMPART_LIMITS_DRAIN_TIMEOUT_MS: String(DRAIN), RAMPART_LOG_ACCESS: 'off' } });
  const conns = [];
  try {
    // In flight: 10 of 20 body bytes sent.
    const slow = await openTls(srv);
    conns.push(slow);
    await slow.write(`POST /api/x HTTP/1.1\r\nHost: ${DOMAIN}\r\nAuthorization: Bearer ${srv.token}\r\n` +
      `Content-Type: application/octet-stream\r\nContent-Length: 20\r\n\r\n0123456789`);
    // Idle keep-alive connections, one request done on each.
    const idle = [];
    for (let i = 0; i < 4; i++) {
      const c = await openTls(srv);
      conns.push(c);
      await c.write(`GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`);
      assert.ok(await c.waitResponses(1, 2000 * SCALE));
      assert.equal(c.responses[0].status, 200);
      assert.equal(c.responses[0].headers.connection, undefined, 'keep-alive before the drain');
      idle.push(c);
    }
    await sleep(200 * SCALE);
    assert.equal(slow.closed, false);

    const t0 = performance.now();
    srv.proc.kill('SIGTERM');

    // New connections: refused right away.
    const refusedMs = await refusedWithin(srv.port, t0, PROMPT);
    assert.ok(refusedMs >= 0, `new connections still accepted ${PROMPT} ms after SIGTERM`);
    assert.equal(await probe(srv.httpPort), 'refused', 'the redirect listener is closed too');
    // Idle keep-alive connections: closed promptly, with nothing sent.
    await Promise.all(idle.map((c) => c.waitClosed(PROMPT)));
    assert.deepEqual(idle.map((c) => c.closed), [true, true, true, true], 'idle connections closed');
    for (const c of idle) {
      assert.ok(c.closedAt - t0 < PROMPT, `idle connection closed after ${(c.closedAt - t0) | 0} ms`);
      assert.equal(completeResponses(c.text).responses.length, 1, 'no second response on an idle connection');
      assert.equal(completeResponses(c.text).rest, '');
    }
    // The in-flight request keeps the process alive.
    await sleep(200 * SCALE);
    assert.equal(srv.proc.exitCode, null, 'the process waits for the request in flight');
    assert.equal(slow.closed, false, 'the request in flight is not cut');

    // The rest of the body: the answer (if not already given) and a close.
    await slow.write('abcdefghij');
    assert.ok(await slow.waitResponses(1, 2000 * SCALE), `no answer: ${JSON.stringify(slow.text.slice(0, 300))}`);
    const { responses, rest } = completeResponses(slow.text);
    assert.equal(responses.length, 1);
    assert.equal(rest, '');
    const r = responses[0];
    assert.equal(r.status, 404);
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.deepEqual(JSON.parse(r.body), { error: { code: 'NotFound', message: 'no such resource' } });
    // An answer written after SIGTERM must announce the close. (The /api handler may answer at
    // head time, before the signal; that answer could not know.)
    if (slow.firstDataAt > t0) assert.equal(r.headers.connection, 'close');
    t.diagnostic(`answer ${slow.firstDataAt > t0 ? 'after' : 'before'} SIGTERM; connection: ${r.headers.connection}; refused after ${refusedMs | 0} ms`);
    assert.ok(await slow.waitClosed(PROMPT), 'the server closes the connection once the request is over');

    const ex = await exitWithin(srv, DRAIN);
    assert.ok(ex, `process still running ${DRAIN} ms after SIGTERM`);
    assert.equal(ex.code, 0);
    assert.equal(ex.signal, null);
    assert.ok(ex.at - slow.closedAt < PROMPT, `exit ${(ex.at - slow.closedAt) | 0} ms after the last connection closed`);
  } finally {
    conns.forEach((c) => c.destroy());
    await srv.stop();
  }
});

test('SIGTERM: a request head still arriving is completed and answered with Connection: close', async () => {
  const DRAIN = 3000 * SCALE;
  const srv = await startServer({
    env: {
      RAMPART_LIMITS_DRAIN_TIMEOUT_MS: String(DRAIN),
      RAMPART_LIMITS_HEADER_TIMEOUT_MS: String(10000 * SCALE),
      RAMPART_LOG_ACCESS: 'off',
    },
  });
  let c;
  try {
    c = await openTls(srv);
    await c.write(`GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\n`);
    await sleep(200 * SCALE);
    const t0 = performance.now();
    srv.proc.kill('SIGTERM');
    await sleep(200 * SCALE);
    assert.equal(c.closed, false, 'a connection with a request in progress is not dropped');
    await c.write('\r\n');
    assert.ok(await c.waitResponses(1, 1000 * SCALE),
      `no answer within ${1000 * SCALE} ms of the end of the head (got ${JSON.stringify(c.text.slice(0, 300))}, closed=${c.closed} at ${c.closedAt ? (c.closedAt - t0) | 0 : '-'} ms)`);
    const r = c.responses[0];
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).status, 'ok');
    assert.equal(r.headers.connection, 'close');
    assert.ok(await c.waitClosed(PROMPT));
    const ex = await exitWithin(srv, DRAIN);
    assert.ok(ex && ex.at - t0 < DRAIN, 'exits before the drain timeout once the request is over');
    assert.equal(ex.code, 0);
  } finally {
    c?.destroy();
    await srv.stop();
  }
});

test('SIGTERM: clients that never finish are cut at the drain timeout and the process exits 0', async (t) => {
  const DRAIN = 1000;
  const srv = await startServer({
    env: {
      RAMPART_LIMITS_DRAIN_TIMEOUT_MS: String(DRAIN),
      // More workers than stalled connections: some workers finish draining at once while
      // others wait for the timeout (the cut must still reach the busy ones cleanly).
      RAMPART_WORKERS: '4',
      RAMPART_LIMITS_HEADER_TIMEOUT_MS: String(30000),
      RAMPART_LIMITS_BODY_TIMEOUT_MS: String(30000),
      RAMPART_LOG_ACCESS: 'off',
    },
  });
  const conns = [];
  try {
    // A body that stalls, a head that stalls, and a TCP connection that never says hello.
    const body = await openTls(srv);
    conns.push(body);
    await body.write(`POST /api/x HTTP/1.1\r\nHost: ${DOMAIN}\r\nAuthorization: Bearer ${srv.token}\r\n` +
      `Content-Length: 20\r\n\r\n0123456789`);
    const head = await openTls(srv);
    conns.push(head);
    await head.write(`GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\nX-a: `);
    const tcp = await openTcp(srv.port);
    conns.push(tcp);
    await sleep(200 * SCALE);
    assert.deepEqual(conns.map((c) => c.closed), [false, false, false]);

    const t0 = performance.now();
    srv.proc.kill('SIGTERM');
    const ex = await exitWithin(srv, DRAIN + 1000 * SCALE);
    assert.ok(ex, `process still running ${DRAIN + 1000 * SCALE} ms after SIGTERM`);
    const ms = ex.at - t0;
    t.diagnostic(`exited ${ms | 0} ms after SIGTERM (${ex.signal || ex.code})`);
    assert.equal(ex.signal, null, `killed by ${ex.signal} at the drain timeout: ${srv.stderr.slice(-500)}`);
    assert.equal(ex.code, 0);
    assert.ok(ms >= DRAIN - 100, `exited after ${ms | 0} ms: stalled requests should get the drain timeout`);
    await Promise.all(conns.map((c) => c.waitClosed(PROMPT)));
    assert.deepEqual(conns.map((c) => c.closed), [true, true, true], 'every straggler was closed');
  } finally {
    conns.forEach((c) => c.destroy());
    await srv.stop();
  }
});
