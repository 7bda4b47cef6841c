// limits.test.mjs - the front door under hostile or heavy clients: slow and idle connections,
// oversized requests, thousands of concurrent connections, the connection cap, keep-alive.
//
// Every test starts its own server with short timeouts and stops it in `finally`. Sanitizer
// builds (RAMPART_SANITIZED=1) are ~3x slower: margins are multiplied by SCALE, counts stay.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import {
  startServer, request, rawTls, DOMAIN, SCALE, sleep, openTls, openTcp, inBatches,
  completeResponses, secureContextFor,
} from './lib/harness.mjs';

const HEADER_TIMEOUT = 2000;
const MARGIN = 1500 * SCALE;       // how late a timeout may fire
const EARLY = 300;                 // how early (loop time is cached per iteration)
const FAST = 1000 * (SCALE > 1 ? 2 : 1); // "answers quickly"

const env = (extra = {}) => ({
  RAMPART_LIMITS_HEADER_TIMEOUT_MS: String(HEADER_TIMEOUT),
  RAMPART_LOG_ACCESS: 'off',
  ...extra,
});

function assertJsonError(r, status, code) {
  assert.equal(r.status, status, `status: ${JSON.stringify(r)}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/);
  const j = JSON.parse(r.body);
  assert.equal(j.error.code, code);
  assert.equal(typeof j.error.message, 'string');
}

async function timedHealth(srv) {
  const t0 = performance.now();
  const r = await request(srv, { path: '/health', timeout: 5000 * SCALE });
  return { status: r.status, ms: performance.now() - t0 };
}

test('slowloris: 200 trickling heads get 408 and are closed at the header timeout while others are served', async (t) => {
  const N = 200;
  const srv = await startServer({ env: env() });
  const conns = [];
  const timers = [];
  try {
    // Each connection starts its head right after its handshake (the head deadline may run
    // from accept) and then trickles one byte every 500 ms. Few handshakes in flight at once,
    // so that none of them is slow enough to eat into the deadline.
    const tStart = performance.now();
    await inBatches(Array.from({ length: N }), 20, async () => {
      const c = await openTls(srv);
      conns.push(c);
      await c.write(`GET / HTTP/1.1\r\nHost: ${DOMAIN}\r\nX-a: `);
      timers.push(setInterval(() => { if (!c.closed) c.write('a'); }, 500));
    });
    const t0 = performance.now(); // every slow head has started
    // While they trickle: 20 fresh connections, each answered quickly.
    const lat = [];
    for (let i = 0; i < 20; i++) {
      const r = await timedHealth(srv);
      assert.equal(r.status, 200);
      lat.push(r.ms);
    }
    const stillOpen = conns.filter((c) => !c.closed).length;
    t.diagnostic(`${N} slow heads started in ${(t0 - tStart) | 0} ms; 20 requests in ${(performance.now() - t0) | 0} ms, ` +
      `slowest ${Math.max(...lat) | 0} ms; ${stillOpen} slow connections still open then`);
    assert.ok(stillOpen >= N / 4, `the 20 requests should overlap the trickle (${stillOpen} of ${N} still open)`);
    assert.ok(Math.max(...lat) < FAST, `slowest normal request took ${Math.max(...lat) | 0} ms: ${lat.map((x) => x | 0)}`);

    await Promise.all(conns.map((c) => c.waitClosed(HEADER_TIMEOUT + MARGIN - (performance.now() - t0))));
    const open = conns.filter((c) => !c.closed).length;
    assert.equal(open, 0, `${open} of ${N} slow connections still open ${HEADER_TIMEOUT + MARGIN} ms after their head started`);
    // The head deadline runs from accept (or from the first byte): never earlier than that,
    // and trickling does not extend it.
    const closeMs = conns.map((c) => c.closedAt - c.startedAt);
    assert.ok(Math.min(...closeMs) >= HEADER_TIMEOUT - EARLY, `closed too early: ${Math.min(...closeMs) | 0} ms after connect`);
    for (const c of conns) {
      const { responses, rest } = completeResponses(c.text);
      assert.equal(responses.length, 1, `one response per slow connection, got: ${c.text.slice(0, 300)}`);
      assertJsonError(responses[0], 408, 'RequestTimeout');
      assert.equal(responses[0].headers.connection, 'close');
      assert.equal(rest, '');
    }
  } finally {
    timers.forEach(clearInterval);
    conns.forEach((c) => c.destroy());
    await srv.stop();
  }
});

test('idle TLS connections (handshake done, nothing sent) are closed at the header timeout without a response', async () => {
  const srv = await startServer({ env: env() });
  let conns = [];
  try {
    conns = await Promise.all(Array.from({ length: 20 }, () => openTls(srv)));
    await Promise.all(conns.map((c) => c.waitClosed(HEADER_TIMEOUT + MARGIN)));
    assert.equal(conns.filter((c) => !c.closed).length, 0, 'all idle connections closed');
    for (const c of conns) {
      assert.ok(c.closedAt - c.startedAt >= HEADER_TIMEOUT - EARLY, `closed too early: ${(c.closedAt - c.startedAt) | 0} ms`);
      assert.equal(c.buf.length, 0, `no application data expected, got ${JSON.stringify(c.text.slice(0, 200))}`);
    }
    // The server still works.
    assert.equal((await timedHealth(srv)).status, 200);
  } finally {
    conns.forEach((c) => c.destroy());
    await srv.stop();
  }
});

test('a TCP connection that never starts the TLS handshake is closed at the header timeout', async () => {
  const srv = await startServer({ env: env() });
  let conns = [];
  try {
    // 20 on the TLS port, and one on the plain-HTTP redirect listener (same rule there).
    conns = await Promise.all([
      ...Array.from({ length: 20 }, () => openTcp(srv.port)),
      openTcp(srv.httpPort),
    ]);
    await Promise.all(conns.map((c) => c.waitClosed(HEADER_TIMEOUT + MARGIN)));
    assert.equal(conns.filter((c) => !c.closed).length, 0, 'all silent TCP connections closed');
    for (const c of conns) {
      assert.ok(c.closedAt - c.startedAt >= HEADER_TIMEOUT - EARLY, `closed too early: ${(c.closedAt - c.startedAt) | 0} ms`);
      assert.equal(c.buf.length, 0, 'nothing is sent to a client that never said hello');
    }
  } finally {
    conns.forEach((c) => c.destroy());
    await srv.stop();
  }
});

test('a request body that stalls is cut off at the body timeout', async () => {
  const BODY_TIMEOUT = 2000;
  const srv = await startServer({ env: env({ RAMPART_LIMITS_BODY_TIMEOUT_MS: String(BODY_TIMEOUT) }) });
  let c;
  try {
    c = await openTls(srv);
    await c.write(`POST /api/x HTTP/1.1\r\nHost: ${DOMAIN}\r\nContent-Type: application/octet-stream\r\n` +
      `Content-Length: 100\r\n\r\n0123456789`);
    const t0 = performance.now();
    assert.ok(await c.waitClosed(BODY_TIMEOUT + MARGIN), `connection still open ${BODY_TIMEOUT + MARGIN} ms after the body stalled`);
    const ms = c.closedAt - t0;
    assert.ok(ms >= BODY_TIMEOUT - EARLY, `closed after ${ms | 0} ms, before the body timeout`);
    // Either a 408, or the answer the handler gave at head time (401 here: no token) and a
    // close; never two answers, never a 2xx.
    const { responses, rest } = completeResponses(c.text);
    assert.equal(rest, '', `trailing bytes: ${JSON.stringify(rest.slice(0, 200))}`);
    assert.equal(responses.length, 1, `exactly one response, got ${JSON.stringify(c.text.slice(0, 400))}`);
    if (responses[0].status === 408) assertJsonError(responses[0], 408, 'RequestTimeout');
    else assertJsonError(responses[0], 401, 'Unauthorized');
  } finally {
    c?.destroy();
    await srv.stop();
  }
});

test('oversized requests: 431 for big or many headers, 414 for a long target, 413 for big bodies', async () => {
  const srv = await startServer({ env: env() });
  try {
    const one = async (bytes, status, code) => {
      const r = await rawTls(srv, bytes, { idleMs: 3000 * SCALE });
      const { responses, rest } = completeResponses(r.data);
      assert.equal(responses.length, 1, `one response expected, got ${JSON.stringify(r.data.slice(0, 300))}`);
      assert.equal(rest, '');
      assertJsonError(responses[0], status, code);
      assert.equal(responses[0].headers.connection, 'close');
      assert.equal(r.closed, true, 'server closes after the error');
      return responses[0];
    };
    const head = (extra = '', target = '/health') => `GET ${target} HTTP/1.1\r\nHost: ${DOMAIN}\r\n${extra}\r\n`;

    // Header section of 17 KiB (one big field); 16 KiB is the limit.
    await one(head(`X-Big: ${'a'.repeat(17 * 1024)}\r\n`), 431, 'HeadersTooLarge');
    // Same size spread over many fields below the count limit.
    const fields = Array.from({ length: 60 }, (_, i) => `X-f${i}: ${'b'.repeat(300)}\r\n`).join('');
    await one(head(fields), 431, 'HeadersTooLarge');
    // 101 header fields (Host + 100); 100 fields in all is still fine.
    const hdrs = (n) => Array.from({ length: n }, (_, i) => `X-h${i}: v\r\n`).join('');
    const ok = completeResponses((await rawTls(srv, head(hdrs(99)), { idleMs: 500 })).data).responses;
    assert.equal(ok[0]?.status, 200, '100 header fields are accepted');
    await one(head(hdrs(100)), 431, 'TooManyHeaders');
    // 9 KiB request target; a 4 KiB one is fine.
    const okTarget = completeResponses((await rawTls(srv, head('', `/health?q=${'c'.repeat(4096)}`), { idleMs: 500 })).data).responses;
    assert.equal(okTarget[0]?.status, 200, 'a 4 KiB target is accepted');
    await one(head('', `/health?q=${'c'.repeat(9 * 1024)}`), 414, 'UriTooLong');

    // Content-Length over the /api limit (1 MiB): 413 at once, before any body byte is sent.
    const c = await openTls(srv);
    try {
      await c.write(`POST /api/x HTTP/1.1\r\nHost: ${DOMAIN}\r\nAuthorization: Bearer ${srv.token}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Length: 2000000\r\n\r\n`);
      assert.ok(await c.waitResponses(1, 2000 * SCALE), 'answered without waiting for the body');
      const r = c.responses[0];
      assertJsonError(r, 413, 'RequestBodyTooLarge');
      assert.equal(r.headers.connection, 'close');
      assert.ok(await c.waitClosed(1000 * SCALE), 'closed after the 413');
      assert.equal(c.responses.length, 1);
    } finally {
      c.destroy();
    }
  } finally {
    await srv.stop();
  }
});

test('a chunked body over the 1 MiB /api limit is refused and the connection closed', async (t) => {
  const srv = await startServer({ env: env() });
  let c;
  try {
    c = await openTls(srv);
    await c.write(`POST /api/x HTTP/1.1\r\nHost: ${DOMAIN}\r\nAuthorization: Bearer ${srv.token}\r\n` +
      `Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const chunk = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(0x10000, 0x61), Buffer.from('\r\n')]);
    const LIMIT = 1 << 20;
    let sent = 0;
    let sentAtClose = -1;
    // The server must stop us shortly after 1 MiB (socket buffers and latency: a few MiB).
    const SLACK = 3 * LIMIT * SCALE;
    while (sent < LIMIT + 2 * SLACK && !c.closed) {
      if (!(await c.write(chunk))) break;
      sent += 0x10000;
    }
    // Either the early answer or the 413 is there, followed by a close.
    assert.ok(await c.waitClosed(3000 * SCALE), `server did not close the connection (sent ${sent} bytes)`);
    sentAtClose = sent;
    const { responses, rest } = completeResponses(c.text);
    assert.equal(rest, '');
    assert.equal(responses.length, 1, `exactly one response, got ${JSON.stringify(c.text.slice(0, 400))}`);
    // 413 when the limit is noticed before the handler answers; the /api handler answers
    // unknown paths at head time (404), and the limit then shows as the close alone.
    if (responses[0].status === 413) {
      assertJsonError(responses[0], 413, 'RequestBodyTooLarge');
      assert.equal(responses[0].headers.connection, 'close');
    } else {
      assertJsonError(responses[0], 404, 'NotFound');
    }
    t.diagnostic(`status ${responses[0].status}; ${sentAtClose} body bytes written when the server closed`);
    assert.ok(sentAtClose >= LIMIT, `closed after ${sentAtClose} bytes, before the limit`);
    assert.ok(sentAtClose < LIMIT + SLACK, `the server read ${sentAtClose} bytes without closing`);

    // Control: the same request with 512 KiB keeps the connection usable.
    const k = await openTls(srv);
    try {
      await k.write(`POST /api/x HTTP/1.1\r\nHost: ${DOMAIN}\r\nAuthorization: Bearer ${srv.token}\r\n` +
        `Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`);
      for (let i = 0; i < 8; i++) await k.write(chunk);
      await k.write('0\r\n\r\n');
      await k.write(`GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`);
      assert.ok(await k.waitResponses(2, 3000 * SCALE), `got ${JSON.stringify(k.text.slice(0, 300))}`);
      assertJsonError(k.responses[0], 404, 'NotFound');
      assert.equal(k.responses[1].status, 200);
      assert.equal(k.closed, false);
    } finally {
      k.destroy();
    }
  } finally {
    c?.destroy();
    await srv.stop();
  }
});

test('2,000 concurrent TLS connections are all served and the server stays responsive', async (t) => {
  const N = 2000;
  const srv = await startServer({
    env: env({
      RAMPART_LIMITS_HEADER_TIMEOUT_MS: String(10000 * SCALE),
      RAMPART_LIMITS_IDLE_TIMEOUT_MS: String(120000),
    }),
  });
  const conns = [];
  try {
    const t0 = performance.now();
    const ids = Array.from({ length: N }, (_, i) => i);
    const results = await inBatches(ids, 200, async (i) => {
      let c;
      try {
        c = await openTls(srv);
      } catch (e) {
        return { err: e.code || e.message };
      }
      conns.push(c);
      await c.write(`GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\nx-ms-client-request-id: c${i}\r\n\r\n`);
      if (!(await c.waitResponses(1, 10000 * SCALE))) return { err: `no response (closed=${c.closed})` };
      const r = c.responses[0];
      return { status: r.status, id: r.headers['x-ms-client-request-id'] === `c${i}` };
    });
    const openMs = performance.now() - t0;
    const errs = results.filter((r) => r.err);
    assert.deepEqual(errs.slice(0, 5), [], `${errs.length} connections failed (EMFILE here means the test process needs a higher ulimit -n)`);
    assert.equal(results.filter((r) => r.status === 200 && r.id).length, N, 'every connection got its 200');
    assert.equal(conns.length, N);
    assert.equal(conns.filter((c) => c.closed).length, 0, 'no connection was closed by the server');
    // With all of them open: a new request is answered quickly.
    for (let i = 0; i < 3; i++) {
      const r = await timedHealth(srv);
      assert.equal(r.status, 200);
      assert.ok(r.ms < FAST, `request with ${N} connections open took ${r.ms | 0} ms`);
    }
    // And the open ones are still usable (keep-alive).
    const sample = [conns[0], conns[N >> 1], conns[N - 1]];
    await Promise.all(sample.map((c) => c.write(`GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`)));
    for (const c of sample) {
      assert.ok(await c.waitResponses(2, 5000 * SCALE));
      assert.equal(c.responses[1].status, 200);
    }
    t.diagnostic(`opened ${N} connections in ${openMs | 0} ms`);
  } finally {
    conns.forEach((c) => c.destroy());
    await srv.stop();
  }
});

test('max connections: the connection over the cap waits in the backlog until one closes', async () => {
  const MAX = 50;
  const srv = await startServer({
    env: env({
      RAMPART_LIMITS_MAX_CONNECTIONS: String(MAX),
      RAMPART_WORKERS: '1',
      RAMPART_LIMITS_HEADER_TIMEOUT_MS: String(30000),
      RAMPART_HTTP_LISTEN: 'off',
    }),
  });
  const conns = [];
  let extra;
  let extraTls;
  try {
    for (let i = 0; i < MAX; i++) conns.push(await openTls(srv));
    // The kernel completes the TCP handshake (backlog), the server does not accept it.
    extra = await openTcp(srv.port);
    let handshakeAt = 0;
    let tlsErr = null;
    extraTls = tls.connect({ socket: extra.sock, servername: DOMAIN, secureContext: secureContextFor(srv) });
    extraTls.on('secureConnect', () => { handshakeAt = performance.now(); });
    extraTls.on('error', (e) => { tlsErr = e; });
    await sleep(1000 * SCALE);
    assert.equal(handshakeAt, 0, 'the 51st connection must not complete TLS while 50 are open');
    assert.equal(tlsErr, null);
    assert.equal(extra.closed, false);
    assert.equal(conns.filter((c) => c.closed).length, 0, 'the 50 idle connections are still open');

    const t0 = performance.now();
    conns[0].destroy();
    const deadline = t0 + 2000 * SCALE;
    while (!handshakeAt && !tlsErr && performance.now() < deadline) await sleep(10);
    assert.equal(tlsErr, null);
    assert.ok(handshakeAt > 0, 'handshake completed after a slot freed up');
    const c = new (conns[1].constructor)(extraTls);
    await c.write(`GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`);
    assert.ok(await c.waitResponses(1, 2000 * SCALE));
    assert.equal(c.responses[0].status, 200);
    assert.equal(JSON.parse(c.responses[0].body).status, 'ok');
  } finally {
    extraTls?.destroy();
    extra?.destroy();
    conns.forEach((c) => c.destroy());
    await srv.stop();
  }
});

test('keep-alive: 100 requests on one connection; 10 pipelined requests answered in order', async () => {
  const srv = await startServer({ env: env() });
  let c;
  let p;
  try {
    c = await openTls(srv);
    const reqIds = new Set();
    for (let i = 0; i < 100; i++) {
      await c.write(`GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\nx-ms-client-request-id: k${i}\r\n\r\n`);
      assert.ok(await c.waitResponses(i + 1, 2000 * SCALE), `response ${i} missing (closed=${c.closed})`);
      const r = c.responses[i];
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-ms-client-request-id'], `k${i}`);
      assert.equal(r.headers.connection, undefined);
      reqIds.add(r.headers['x-ms-request-id']);
    }
    assert.equal(reqIds.size, 100);
    assert.equal(c.closed, false, 'connection kept open');

    p = await openTls(srv);
    const batch = Array.from({ length: 10 }, (_, i) =>
      `GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\nx-ms-client-request-id: p${i}\r\n${i === 9 ? 'Connection: close\r\n' : ''}\r\n`).join('');
    await p.write(batch);
    assert.ok(await p.waitResponses(10, 3000 * SCALE), `got ${p.responses.length} of 10 pipelined responses`);
    const rs = p.responses;
    assert.deepEqual(rs.map((r) => r.status), Array(10).fill(200));
    assert.deepEqual(rs.map((r) => r.headers['x-ms-client-request-id']), Array.from({ length: 10 }, (_, i) => `p${i}`));
    assert.equal(new Set(rs.map((r) => r.headers['x-ms-request-id'])).size, 10, 'request ids distinct');
    assert.deepEqual(rs.map((r) => r.headers.connection), [...Array(9).fill(undefined), 'close']);
    assert.ok(await p.waitClosed(2000 * SCALE), 'closed after the request that asked for it');
    assert.equal(completeResponses(p.text).rest, '');
  } finally {
    c?.destroy();
    p?.destroy();
    await srv.stop();
  }
});
