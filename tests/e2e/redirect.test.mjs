// redirect.test.mjs - the plain-HTTP listener only ever redirects to HTTPS: 301 to the same
// host (port replaced by the HTTPS port), path and query kept, no body, no HSTS (it means
// nothing over plain HTTP), and malformed input is answered 400 and the connection closed.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, rawTcp, parseResponses, DOMAIN } from './lib/harness.mjs';

// One exchange on a fresh connection; returns { res: [responses], raw, closed }.
async function exchange(srv, bytes, idleMs = 400) {
  const r = await rawTcp(srv.httpPort, bytes, { idleMs });
  return { res: parseResponses(r.data), raw: r.data, closed: r.closed };
}

function assertRedirect(x, location, what) {
  assert.equal(x.res.length, 1, `${what}: exactly one response\n${x.raw}`);
  const [r] = x.res;
  assert.equal(r.status, 301, `${what}\n${x.raw}`);
  assert.equal(r.headers.location, location, what);
  assert.equal(r.headers['content-length'], '0', what);
  assert.equal(r.body, '', what);
  assert.ok(x.raw.endsWith('\r\n\r\n'), `${what}: nothing after the head\n${JSON.stringify(x.raw)}`);
  assert.equal(r.headers['strict-transport-security'], undefined, `${what}: no HSTS over plain HTTP`);
  assert.equal(r.headers.server, undefined, what);
  assert.equal(r.headers['x-content-type-options'], 'nosniff', what);
}

function assertBadRequest(x, what) {
  const [r] = x.res;
  assert.equal(r?.status, 400, `${what}\n${x.raw}`);
  assert.equal(r.headers.connection, 'close', what);
  assert.equal(r.headers.location, undefined, what);
  assert.equal(typeof JSON.parse(r.body).error.code, 'string', what);
  assert.equal(x.closed, true, `${what}: the server must close the connection`);
  assert.equal(x.res.length, 1, `${what}: nothing after the error\n${x.raw}`);
}

test('plain HTTP listener redirects and never serves', async (t) => {
  const srv = await startServer();
  try {
    assert.ok(srv.httpPort > 0 && srv.httpPort !== srv.port, 'redirect listener is up');
    const https = `https://${DOMAIN}:${srv.port}`;

    await t.test('GET keeps path and query, adds the HTTPS port', async () => {
      const x = await exchange(srv, `GET /a/b?x=1 HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`);
      assertRedirect(x, `${https}/a/b?x=1`, 'GET /a/b?x=1');
      // Path bytes are not decoded or normalised on the way through.
      const y = await exchange(srv, `GET /a/%2e%2e/b%20c?q=%41&r HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`);
      assertRedirect(y, `${https}/a/%2e%2e/b%20c?q=%41&r`, 'encoded path');
    });

    await t.test('a port in the Host header is replaced by the HTTPS port', async () => {
      const x = await exchange(srv, `GET /p HTTP/1.1\r\nHost: ${DOMAIN}:${srv.httpPort}\r\n\r\n`);
      assertRedirect(x, `${https}/p`, 'host with port');
      const y = await exchange(srv, `GET /p HTTP/1.1\r\nHost: vault1.vault.${DOMAIN}:80\r\n\r\n`);
      assertRedirect(y, `https://vault1.vault.${DOMAIN}:${srv.port}/p`, 'subdomain with port');
    });

    await t.test('POST with a small body and HEAD are redirected too', async () => {
      const x = await exchange(srv, `POST /api/things HTTP/1.1\r\nHost: ${DOMAIN}\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello`);
      assertRedirect(x, `${https}/api/things`, 'POST');
      const h = await exchange(srv, `HEAD /x?y=2 HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`);
      assertRedirect(h, `${https}/x?y=2`, 'HEAD');
    });

    await t.test('it never serves content: /health and /api answer 301', async () => {
      for (const path of ['/health', '/api/version', '/']) {
        const x = await exchange(srv, `GET ${path} HTTP/1.1\r\nHost: ${DOMAIN}\r\nAuthorization: Bearer ${srv.token}\r\n\r\n`);
        assertRedirect(x, `${https}${path}`, `GET ${path}`);
        assert.doesNotMatch(x.raw, /"status":"ok"|"name":"rampart"/);
      }
    });

    await t.test('IPv6-literal Host keeps its brackets', async () => {
      const x = await exchange(srv, `GET /health HTTP/1.1\r\nHost: [::1]:${srv.httpPort}\r\n\r\n`);
      assertRedirect(x, `https://[::1]:${srv.port}/health`, '[::1]');
      const y = await exchange(srv, 'GET /z HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      assertRedirect(y, `https://127.0.0.1:${srv.port}/z`, '127.0.0.1');
    });

    await t.test('absolute-form target: the authority is the Host', async () => {
      const x = await exchange(srv, `GET http://${DOMAIN}/x?y=2 HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`);
      assertRedirect(x, `${https}/x?y=2`, 'absolute-form');
    });

    await t.test('keep-alive: two pipelined requests get two redirects on one connection', async () => {
      const x = await exchange(srv, `GET /one HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\nGET /two HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`);
      assert.deepEqual(x.res.map((r) => [r.status, r.headers.location]), [[301, `${https}/one`], [301, `${https}/two`]], x.raw);
    });

    await t.test('missing Host is 400 and closes', async () => {
      assertBadRequest(await exchange(srv, 'GET / HTTP/1.1\r\n\r\n'), 'HTTP/1.1 without Host');
      assertBadRequest(await exchange(srv, 'GET / HTTP/1.0\r\n\r\n'), 'HTTP/1.0 without Host');
    });

    await t.test('garbage is 400 and closes', async () => {
      assertBadRequest(await exchange(srv, 'GARBAGE\r\n\r\n'), 'garbage line');
      // A TLS ClientHello sent to the plain port by mistake.
      assertBadRequest(await exchange(srv, '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n'), 'TLS bytes');
      assertBadRequest(await exchange(srv, `GET /a HTTP/1.1\r\nHost: bad host!\r\n\r\n`), 'bad Host');
      assertBadRequest(await exchange(srv, `GET /a HTTP/1.1\r\nHost: ${DOMAIN}\r\nHost: evil.test\r\n\r\n`), 'two Host headers');
      // Header injection through the target is impossible: the codec refuses it first.
      assertBadRequest(await exchange(srv, `GET /a\rLocation:x HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`), 'CR in target');
    });

    await t.test('the listener keeps answering after a client aborts', async () => {
      const s = net.connect(srv.httpPort, '127.0.0.1');
      await new Promise((r) => s.on('connect', r));
      s.destroy();
      const x = await exchange(srv, `GET /still HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`);
      assertRedirect(x, `${https}/still`, 'after abort');
    });
  } finally {
    await srv.stop();
  }
});
