// tls.test.mjs - the front door's TLS policy as a client sees it: protocol versions, suites,
// ALPN, compression, renegotiation, the built-in certificate, session resumption, the
// tls.min_version setting, security headers on every HTTPS answer, and SNI/Host agreement.
//
// Handshakes are driven with `openssl s_client` so that the client can be made willing to
// speak what the server must refuse (TLS 1.0, CBC, RSA key exchange ...): a refusal then
// proves the server's policy, not the client's defaults.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import {
  startServer, request, rawTls, parseResponses, openssl, tmpDir, DOMAIN,
  writeFileSync, rmSync, join,
} from './lib/harness.mjs';

// Runs `openssl s_client` against the server. stdin gets `input` after `delayMs` (so that
// post-handshake messages such as TLS 1.3 tickets arrive first), then is closed.
// Resolves { code, out } with stdout and stderr together.
function sclient(srv, args, { input = 'Q\n', delayMs = 0, servername = DOMAIN, timeoutMs = 15000 } = {}) {
  const base = ['s_client', '-connect', `127.0.0.1:${srv.port}`, '-CAfile', srv.caFile];
  if (servername) base.push('-servername', servername);
  return new Promise((resolve, reject) => {
    const p = spawn('openssl', [...base, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.stdin.on('error', () => {}); // s_client may exit before reading stdin (failed handshake)
    const kill = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    const feed = setTimeout(() => { p.stdin.write(input); p.stdin.end(); }, delayMs);
    p.on('error', (e) => { clearTimeout(kill); clearTimeout(feed); reject(e); });
    p.on('close', (code, signal) => {
      clearTimeout(kill);
      clearTimeout(feed);
      if (signal) reject(new Error(`s_client killed (${signal}):\n${out}`));
      else resolve({ code, out });
    });
  });
}

function assertRefused(r, alert, what) {
  assert.notEqual(r.code, 0, `${what}: s_client should fail\n${r.out}`);
  assert.match(r.out, /Cipher is \(NONE\)/, `${what}: no cipher may be negotiated\n${r.out}`);
  assert.doesNotMatch(r.out, /^Server certificate$/m, `${what}: no certificate may be sent`);
  // The server itself answered with an alert: the client was willing.
  assert.match(r.out, alert, `${what}: expected the server's alert\n${r.out}`);
}

function assertAccepted(r, proto, what) {
  assert.equal(r.code, 0, `${what}: s_client failed\n${r.out}`);
  assert.match(r.out, new RegExp(`^New, ${proto.replace('.', '\\.')}, Cipher is [A-Z0-9_-]+$`, 'm'), `${what}\n${r.out}`);
  assert.match(r.out, /Verify return code: 0 \(ok\)/, `${what}: certificate must verify against the data dir CA\n${r.out}`);
}

const FIRST_PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/;

async function withServer(opts, fn) {
  const srv = await startServer(opts);
  srv.caFile = join(srv.dataDir, 'tls', 'ca.crt');
  try {
    await fn(srv);
  } finally {
    await srv.stop();
  }
}

test('TLS policy of the default front door', async (t) => {
  await withServer({}, async (srv) => {
    await t.test('TLS 1.0 and 1.1 are refused even when the client offers weak suites', async () => {
      for (const v of ['-tls1', '-tls1_1']) {
        const r = await sclient(srv, [v, '-cipher', 'DEFAULT@SECLEVEL=0']);
        assertRefused(r, /alert protocol version/, v);
        assert.match(r.out, /no peer certificate available/, v);
      }
    });

    await t.test('TLS 1.2 and 1.3 are accepted and verify against the data dir CA', async () => {
      const r12 = await sclient(srv, ['-tls1_2']);
      assertAccepted(r12, 'TLSv1.2', 'tls1_2');
      assert.match(r12.out, /^New, TLSv1\.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256$/m, 'server preference picks AES128-GCM first');
      const r13 = await sclient(srv, ['-tls1_3']);
      assertAccepted(r13, 'TLSv1.3', 'tls1_3');
      assert.match(r13.out, /^New, TLSv1\.3, Cipher is TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$/m);
      // Without a version flag the best protocol wins.
      const best = await sclient(srv, []);
      assertAccepted(best, 'TLSv1.3', 'default');
    });

    await t.test('ALPN: http/1.1 is chosen from h2,http/1.1; h2 alone gets no ALPN but a handshake', async () => {
      for (const v of ['-tls1_2', '-tls1_3']) {
        const both = await sclient(srv, [v, '-alpn', 'h2,http/1.1']);
        assertAccepted(both, v === '-tls1_2' ? 'TLSv1.2' : 'TLSv1.3', `${v} alpn both`);
        assert.match(both.out, /^ALPN protocol: http\/1\.1$/m, both.out);
        const h2 = await sclient(srv, [v, '-alpn', 'h2']);
        assertAccepted(h2, v === '-tls1_2' ? 'TLSv1.2' : 'TLSv1.3', `${v} alpn h2`);
        assert.match(h2.out, /^No ALPN negotiated$/m, h2.out);
        assert.doesNotMatch(h2.out, /ALPN protocol: h2/);
      }
    });

    await t.test('no CBC, no RSA key exchange, no DHE, no SHA-1 MAC suite is negotiable over TLS 1.2', async () => {
      for (const c of ['AES128-SHA', 'AES256-SHA256', 'ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384',
        'AES128-GCM-SHA256', 'DHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-SHA', 'AES256-GCM-SHA384']) {
        const r = await sclient(srv, ['-tls1_2', '-cipher', `${c}@SECLEVEL=0`]);
        assertRefused(r, /alert handshake failure/, c);
      }
    });

    await t.test('the forward-secret AEAD suites are negotiable over TLS 1.2', async () => {
      for (const c of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']) {
        const r = await sclient(srv, ['-tls1_2', '-cipher', c]);
        assertAccepted(r, 'TLSv1.2', c);
        assert.match(r.out, new RegExp(`^New, TLSv1\\.2, Cipher is ${c}$`, 'm'));
        assert.match(r.out, /^Server Temp Key: (X25519|ECDH)/m, `${c}: ephemeral ECDH`);
      }
      for (const s of ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']) {
        const r = await sclient(srv, ['-tls1_3', '-ciphersuites', s]);
        assertAccepted(r, 'TLSv1.3', s);
        assert.match(r.out, new RegExp(`^New, TLSv1\\.3, Cipher is ${s}$`, 'm'));
      }
    });

    await t.test('compression is off and secure renegotiation is signalled on TLS 1.2', async () => {
      const r = await sclient(srv, ['-tls1_2']);
      assertAccepted(r, 'TLSv1.2', 'tls1_2');
      assert.match(r.out, /^Compression: NONE$/m);
      assert.match(r.out, /^Secure Renegotiation IS supported$/m);
      assert.match(r.out, /^\s+Extended master secret: yes$/m);
    });

    await t.test('client-initiated renegotiation is refused', async () => {
      // s_client renegotiates when a line starts with "R"; the server answers no_renegotiation.
      const r = await sclient(srv, ['-tls1_2'], { input: 'R\n', delayMs: 500 });
      assert.match(r.out, /^New, TLSv1\.2, /m, r.out);
      assert.match(r.out, /^RENEGOTIATING$/m, r.out);
      assert.match(r.out, /no renegotiation/, `server must refuse renegotiation\n${r.out}`);
      assert.notEqual(r.code, 0, r.out);
      // A second handshake would print the verification lines a second time.
      assert.equal(r.out.match(/^depth=0 /gm)?.length, 1, r.out);
    });

    await t.test('the built-in certificate: SANs, EC P-256, validity, chain to tls/ca.crt', async () => {
      const r = await sclient(srv, ['-showcerts']);
      assertAccepted(r, 'TLSv1.3', 'showcerts');
      const pem = r.out.match(FIRST_PEM)?.[0];
      assert.ok(pem, r.out);
      const dir = tmpDir('rp-tls-cert-');
      try {
        const leaf = join(dir, 'leaf.pem');
        writeFileSync(leaf, pem);
        const san = openssl(['x509', '-in', leaf, '-noout', '-ext', 'subjectAltName']);
        assert.equal(san.status, 0, san.stderr);
        const names = san.stdout.split('\n').slice(1).join(',').split(',').map((s) => s.trim()).filter(Boolean);
        assert.deepEqual(new Set(names), new Set([
          `DNS:${DOMAIN}`, `DNS:*.${DOMAIN}`, `DNS:*.vault.${DOMAIN}`, `DNS:*.scm.${DOMAIN}`,
          `DNS:*.events.${DOMAIN}`, `DNS:*.blob.${DOMAIN}`, 'DNS:localhost',
          'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1',
        ]));
        assert.equal(names.length, 9, `no duplicate or extra SAN: ${names}`);
        const text = openssl(['x509', '-in', leaf, '-noout', '-text']);
        assert.equal(text.status, 0);
        assert.match(text.stdout, /Public Key Algorithm: id-ecPublicKey/);
        assert.match(text.stdout, /ASN1 OID: prime256v1/);
        assert.match(text.stdout, /Signature Algorithm: ecdsa-with-SHA256/);
        assert.match(text.stdout, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
        assert.match(text.stdout, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication\s*\n/);
        const x = new X509Certificate(pem);
        const days = (Date.parse(x.validTo) - Date.parse(x.validFrom)) / 86400000;
        assert.ok(days > 1 && days <= 398, `validity ${days} days must be <= 398`);
        assert.ok(Date.parse(x.validFrom) <= Date.now() && Date.now() < Date.parse(x.validTo), 'valid now');
        assert.equal(x.publicKey.asymmetricKeyDetails.namedCurve, 'prime256v1');
        const v = openssl(['verify', '-CAfile', srv.caFile, leaf]);
        assert.equal(v.stdout.trim(), `${leaf}: OK`, v.stderr);
        const ca = new X509Certificate(srv.ca);
        assert.ok(x.checkIssued(ca) && x.verify(ca.publicKey), 'signed by tls/ca.crt');
        // It is the certificate init wrote, and it names the domain as CN.
        assert.equal(x.fingerprint256, new X509Certificate(pemOf(join(srv.dataDir, 'tls', 'server.crt'))).fingerprint256);
        assert.equal(x.subject.trim(), `CN=${DOMAIN}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    await t.test('session resumption with tickets (TLS 1.3 and TLS 1.2)', async () => {
      const dir = tmpDir('rp-tls-sess-');
      try {
        for (const [v, proto] of [['-tls1_3', 'TLSv1.3'], ['-tls1_2', 'TLSv1.2']]) {
          const f = join(dir, `${v}.pem`);
          // Wait a moment before quitting so that the TLS 1.3 NewSessionTicket is read.
          const first = await sclient(srv, [v, '-sess_out', f], { delayMs: 300 });
          assertAccepted(first, proto, `${v} first`);
          const again = await sclient(srv, [v, '-sess_in', f], { delayMs: 300 });
          assert.equal(again.code, 0, again.out);
          assert.match(again.out, new RegExp(`^Reused, ${proto.replace('.', '\\.')}, Cipher is `, 'm'), `${v}: session must be resumed\n${again.out}`);
          assert.match(again.out, /Verify return code: 0 \(ok\)/);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    await t.test('every HTTPS answer has HSTS >= 1 year and nosniff, and no Server header', async () => {
      const cases = [
        [200, `GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`],
        [401, `GET /api/version HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`],
        [404, `GET /no/such/thing HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`],
        [405, `POST /health HTTP/1.1\r\nHost: ${DOMAIN}\r\nContent-Length: 0\r\n\r\n`],
        [400, 'GARBAGE\r\n\r\n'], // from the codec, before any request exists
        [400, `GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\nHost: ${DOMAIN}\r\n\r\n`],
        [421, `GET /health HTTP/1.1\r\nHost: login.${DOMAIN}\r\n\r\n`],
        [413, `POST /api/version HTTP/1.1\r\nHost: ${DOMAIN}\r\nContent-Length: 2000000\r\n\r\n`],
        [414, `GET /${'a'.repeat(70000)} HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`],
      ];
      for (const [status, bytes] of cases) {
        const r = await rawTls(srv, bytes, { idleMs: 400 });
        const [res] = parseResponses(r.data);
        assert.ok(res, `no response to ${JSON.stringify(bytes)}: ${r.data}`);
        assert.equal(res.status, status, `${JSON.stringify(bytes)}\n${r.data}`);
        const hsts = res.headers['strict-transport-security'];
        assert.match(hsts ?? '', /(^|;)\s*max-age=\d+/, `${status}: HSTS missing\n${r.data}`);
        assert.ok(Number(hsts.match(/max-age=(\d+)/)[1]) >= 31536000, `${status}: ${hsts}`);
        assert.equal(res.headers['x-content-type-options'], 'nosniff', `${status}\n${r.data}`);
        assert.equal(res.headers.server, undefined, `${status}: Server header\n${r.data}`);
      }
    });

    await t.test('SNI and Host must agree (421); by IP without SNI works', async () => {
      const mis = await rawTls(srv, `GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`, { servername: `login.${DOMAIN}`, idleMs: 400 });
      const [m] = parseResponses(mis.data);
      assert.equal(m?.status, 421, mis.data);
      assert.equal(JSON.parse(m.body).error.code, 'MisdirectedRequest');
      const mis2 = await request(srv, { path: '/health', host: DOMAIN, headers: { host: `login.${DOMAIN}` } });
      assert.equal(mis2.status, 421);
      const ok = await rawTls(srv, `GET /health HTTP/1.1\r\nHost: ${DOMAIN}:${srv.port}\r\n\r\n`, { idleMs: 400 });
      assert.equal(parseResponses(ok.data)[0]?.status, 200, ok.data);
      // SNI is case-insensitive as DNS is.
      const upper = await rawTls(srv, `GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`, { servername: DOMAIN.toUpperCase(), idleMs: 400 });
      assert.equal(parseResponses(upper.data)[0]?.status, 200, upper.data);
      const ip = await request(srv, { host: '127.0.0.1', path: '/health' });
      assert.equal(ip.status, 200);
      assert.equal(JSON.parse(ip.text).status, 'ok');
      // s_client without SNI, by IP, still verifies (IP SAN).
      const r = await sclient(srv, ['-noservername', '-verify_ip', '127.0.0.1', '-verify_return_error'], { servername: null });
      assertAccepted(r, 'TLSv1.3', 'no SNI');
    });
  });
});

// One request over a fresh TLS connection, optionally resuming `session`. Resolves
// { status, reused, session } once the response and (if issued) a ticket have arrived.
function tlsGet(srv, { servername, host, session, version }) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1', port: srv.port, ca: srv.ca, servername, session,
      minVersion: version, maxVersion: version,
    }, () => s.write(`GET /health HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
    let data = '';
    let ticket = null;
    let timer = null;
    const finish = () => {
      clearTimeout(timer);
      resolve({ status: Number(data.slice(9, 12)), reused: s.isSessionReused(), session: ticket });
      s.destroy();
    };
    s.on('session', (t) => { ticket = t; });
    s.on('data', (d) => {
      data += d;
      if (data.includes('\r\n\r\n')) { clearTimeout(timer); timer = setTimeout(finish, 150); }
    });
    s.on('error', reject);
    setTimeout(() => { if (!data) { s.destroy(); reject(new Error('no response')); } }, 5000);
  });
}

function pemOf(path) {
  return openssl(['x509', '-in', path]).stdout;
}

// A session (ticket) obtained for one name and offered on a handshake for another: the name the
// client sends in this ClientHello is what counts for the Host check, whether or not the server
// resumes (RFC 6066 section 3 says it should not resume across names; OpenSSL reports the
// *session's* name from SSL_get_servername after a TLS 1.2 resumption).
test('SNI/Host check after resuming a session from another name', async (t) => {
  await withServer({}, async (srv) => {
    for (const version of ['TLSv1.3', 'TLSv1.2']) {
      await t.test(version, async () => {
        const first = await tlsGet(srv, { servername: `login.${DOMAIN}`, host: `login.${DOMAIN}`, version });
        assert.ok(first.session, 'the server issued a ticket');
        assert.equal(first.status, 400, 'login host: /health names no tenant (AADSTS90002)');
        const same = await tlsGet(srv, { servername: DOMAIN, host: DOMAIN, session: first.session, version });
        assert.equal(same.status, 200, `Host equal to this handshake's SNI must be served (resumed: ${same.reused})`);
        const old = await tlsGet(srv, { servername: DOMAIN, host: `login.${DOMAIN}`, session: first.session, version });
        assert.equal(old.status, 421, `Host equal to the old session's name but not this SNI must be 421 (resumed: ${old.reused})`);
      });
    }
  });
});

test('tls.min_version 1.3 refuses TLS 1.2', async () => {
  await withServer({ env: { RAMPART_TLS_MIN_VERSION: '1.3' } }, async (srv) => {
    const r12 = await sclient(srv, ['-tls1_2']);
    assertRefused(r12, /alert protocol version/, 'tls1_2 with min 1.3');
    const r13 = await sclient(srv, ['-tls1_3']);
    assertAccepted(r13, 'TLSv1.3', 'tls1_3 with min 1.3');
    const h = await request(srv, { path: '/health' });
    assert.equal(h.status, 200);
  });
});
