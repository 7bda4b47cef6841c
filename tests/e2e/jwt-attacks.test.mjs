// jwt-attacks.test.mjs - a corpus of bearer-token attacks over HTTP against GET /api/whoami:
// algorithm confusion (none, HS256 keyed with the server's public key, ES256 with r = s = 0),
// key selection tricks (unknown and injected kid, embedded jwk, jku, x5u, x5c), edited and
// truncated tokens, oversized tokens, tokens for other audiences, issuers and tenants, and
// malformed Authorization headers. Every one must be refused with 401 and a JSON error (a
// header too large for the server may be 431, a request the HTTP layer refuses 400), never
// 200; the server stays up and a valid token still works afterwards. Tokens that truly expired
// (or are not valid yet) are minted by the same install running under libfaketime.
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  startServer, init, request, SANITIZED, rawTls, parseResponses, openssl, tmpDir, rmSync,
  writeFileSync, readFileSync, join, DOMAIN,
} from './lib/harness.mjs';
import {
  api, createSp, clientToken, fetchJwks, decodeJwt, signJwt, attackerKey, b64url, b64json,
  loginOrigin, auditRecords,
} from './lib/iam.mjs';

let srv;
let sp;
let valid; // a valid management token of sp
let jwks;
test.before(async () => {
  srv = await startServer();
  sp = await createSp(srv);
  valid = await clientToken(srv, sp.appId, sp.secret);
  jwks = await fetchJwks(srv);
});
test.after(async () => { if (srv) await srv.stop(); });

async function whoami(authorization, extra = {}) {
  const headers = authorization === undefined ? {} : { authorization };
  return api(srv, 'GET', extra.path || '/api/whoami', { token: null, headers });
}

function assertRefused(r, what, allowed = [401]) {
  assert.notEqual(r.status, 200, `${what}: ACCEPTED ${r.text}`);
  assert.ok(allowed.includes(r.status), `${what}: ${r.status} (want ${allowed.join('/')}) ${r.text.slice(0, 300)}`);
  if (r.status === 401) {
    assert.match(r.headers['content-type'] || '', /^application\/json/, what);
    assert.equal(typeof r.json?.error?.code, 'string', `${what}: JSON error body, got ${r.text.slice(0, 200)}`);
    assert.match(r.headers['www-authenticate'] || '', /^Bearer /, `${what}: WWW-Authenticate`);
    assert.equal(r.json.id, undefined, `${what}: no identity in a refusal`);
  }
}

test('baseline: the valid token is accepted', async () => {
  const r = await whoami(`Bearer ${valid}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.id, sp.id);
});

test('algorithm confusion: none, HS256 with the public key, ES256 r=s=0, other algorithms', async () => {
  const { header, payload } = decodeJwt(valid);
  const sig = valid.split('.')[2];
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  const pub = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  // Every spelling of the server's public key an HMAC confusion attack might use (the key is
  // EC P-256 now; the RSA-only spellings apply when an install still verifies an RSA key).
  const hmacKeys = {
    'spki PEM': pub.export({ type: 'spki', format: 'pem' }),
    'spki PEM without final newline': pub.export({ type: 'spki', format: 'pem' }).trimEnd(),
    'spki DER': pub.export({ type: 'spki', format: 'der' }),
    'JWK JSON': JSON.stringify(jwk),
    'empty key': '',
  };
  if (jwk.kty === 'RSA') {
    hmacKeys['pkcs1 PEM'] = pub.export({ type: 'pkcs1', format: 'pem' });
    hmacKeys['modulus bytes'] = Buffer.from(jwk.n, 'base64url');
  } else {
    hmacKeys['x coordinate'] = Buffer.from(jwk.x, 'base64url');
    hmacKeys['uncompressed point'] = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  }
  const cases = [];
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    cases.push([`alg ${alg}, no signature`, `${b64json({ ...header, alg })}.${b64json(payload)}.`]);
    cases.push([`alg ${alg}, the original signature kept`, `${b64json({ ...header, alg })}.${b64json(payload)}.${sig}`]);
    cases.push([`alg ${alg}, two segments`, `${b64json({ ...header, alg })}.${b64json(payload)}`]);
  }
  for (const [name, key] of Object.entries(hmacKeys))
    for (const alg of ['HS256', 'HS384', 'HS512'])
      if (alg === 'HS256') cases.push([`HS256 keyed with the server's ${name}`, signJwt({ ...header, alg }, payload, key, 'HS256')]);
      else cases.push([`${alg} keyed with the server's ${name}`, `${b64json({ ...header, alg })}.${b64json(payload)}.${b64url(crypto.createHmac(alg.replace('HS', 'sha'), key).update(`${b64json({ ...header, alg })}.${b64json(payload)}`).digest())}`]);
  const es = { ...header, alg: 'ES256' };
  cases.push(['ES256 with r = s = 0 (P1363)', `${b64json(es)}.${b64json(payload)}.${b64url(Buffer.alloc(64))}`]);
  cases.push(['ES256 with r = s = 0 (DER)', `${b64json(es)}.${b64json(payload)}.${b64url(Buffer.from('3006020100020100', 'hex'))}`]);
  cases.push(['ES256 signed by an attacker P-256 key', signJwt(es, payload, crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, 'ES256')]);
  const { privateKey } = attackerKey();
  cases.push(['PS256 signed by an attacker key, server kid', signJwt({ ...header, alg: 'PS256' }, payload, privateKey, 'PS256')]);
  cases.push(['RS256 signed by an attacker key, server kid', signJwt(header, payload, privateKey, 'RS256')]);
  cases.push(['RS512 header over the real signature', `${b64json({ ...header, alg: 'RS512' })}.${b64json(payload)}.${sig}`]);
  cases.push(['EdDSA header, attacker Ed25519 signature', `${b64json({ ...header, alg: 'EdDSA' })}.${b64json(payload)}.${b64url(crypto.sign(null, Buffer.from(`${b64json({ ...header, alg: 'EdDSA' })}.${b64json(payload)}`), crypto.generateKeyPairSync('ed25519').privateKey))}`]);
  cases.push(['no alg at all', `${b64json({ typ: 'JWT', kid: header.kid })}.${b64json(payload)}.${sig}`]);
  for (const [what, tok] of cases) assertRefused(await whoami(`Bearer ${tok}`), what);
});

test('key selection: unknown and injected kid, embedded jwk, jku, x5u, x5c', async () => {
  const { header, payload } = decodeJwt(valid);
  const { privateKey, publicKey } = attackerKey();
  const attackerJwk = { ...publicKey.export({ format: 'jwk' }), kid: 'attacker', use: 'sig', alg: 'RS256' };
  const cases = [];
  const kids = ['unknown-kid', '', '../../etc/passwd', '../../../../../../dev/null', "' OR 1=1 --", '" OR ""="', '/dev/null', '\u0000', '%00',
    `${header.kid}\u0000`, `${header.kid} `, header.kid.toUpperCase() === header.kid ? header.kid.toLowerCase() : header.kid.toUpperCase(),
    '${jndi:ldap://127.0.0.1/x}', '| id', 'x'.repeat(4096)];
  for (const kid of kids) {
    cases.push([`kid ${JSON.stringify(kid.slice(0, 40))} signed by the attacker`, signJwt({ ...header, kid }, payload, privateKey, 'RS256')]);
    cases.push([`kid ${JSON.stringify(kid.slice(0, 40))} HS256 with an empty key`, signJwt({ ...header, kid, alg: 'HS256' }, payload, '', 'HS256')]);
  }
  cases.push(['kid as a number', signJwt({ ...header, kid: 1 }, payload, privateKey, 'RS256')]);
  cases.push(['kid as an array', signJwt({ ...header, kid: [header.kid] }, payload, privateKey, 'RS256')]);
  cases.push(['no kid', signJwt({ alg: 'RS256', typ: 'JWT' }, payload, privateKey, 'RS256')]);
  cases.push(['real signature, kid removed', `${b64json({ alg: 'RS256', typ: 'JWT' })}.${valid.split('.')[1]}.${valid.split('.')[2]}`]);
  cases.push(['embedded jwk (attacker key), no kid', signJwt({ alg: 'RS256', typ: 'JWT', jwk: attackerJwk }, payload, privateKey, 'RS256')]);
  cases.push(['embedded jwk (attacker key), server kid', signJwt({ ...header, jwk: attackerJwk }, payload, privateKey, 'RS256')]);
  const jku = `${loginOrigin(srv)}/${srv.tenant}/discovery/v2.0/keys`;
  cases.push(['jku to the server\'s own JWKS, attacker signature', signJwt({ ...header, jku }, payload, privateKey, 'RS256')]);
  cases.push(['jku to an attacker URL', signJwt({ alg: 'RS256', typ: 'JWT', kid: 'attacker', jku: 'https://127.0.0.1:1/keys' }, payload, privateKey, 'RS256')]);
  cases.push(['x5u to an attacker URL', signJwt({ alg: 'RS256', typ: 'JWT', x5u: 'https://127.0.0.1:1/cert.pem' }, payload, privateKey, 'RS256')]);

  // x5c: a self-signed certificate for the attacker key, and its thumbprints.
  const dir = tmpDir('rp-jwt-');
  try {
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' });
    const kf = join(dir, 'k.pem');
    const cf = join(dir, 'c.pem');
    writeFileSync(kf, keyPem, { mode: 0o600 });
    const r = openssl(['req', '-x509', '-new', '-key', kf, '-out', cf, '-days', '2', '-subj', '/CN=attacker', '-sha256']);
    assert.equal(r.status, 0, r.stderr);
    const der = Buffer.from(readFileSync(cf, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const x5c = [der.toString('base64')];
    const x5tS256 = b64url(crypto.createHash('sha256').update(der).digest());
    const x5t = b64url(crypto.createHash('sha1').update(der).digest());
    cases.push(['x5c (attacker certificate), no kid', signJwt({ alg: 'RS256', typ: 'JWT', x5c }, payload, privateKey, 'RS256')]);
    cases.push(['x5c (attacker certificate), server kid', signJwt({ ...header, x5c }, payload, privateKey, 'RS256')]);
    cases.push(['x5t#S256 + x5c of the attacker', signJwt({ alg: 'RS256', typ: 'JWT', 'x5t#S256': x5tS256, x5t, x5c }, payload, privateKey, 'RS256')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const [what, tok] of cases) assertRefused(await whoami(`Bearer ${tok}`), what);
});

test('edited, truncated and malformed tokens', async () => {
  const [h, p, s] = valid.split('.');
  const { header, payload } = decodeJwt(valid);
  const edit = (changes) => `${h}.${b64json({ ...payload, ...changes })}.${s}`;
  const flip = (str, i) => str.slice(0, i) + (str[i] === 'A' ? 'B' : 'A') + str.slice(i + 1);
  const other = await createSp(srv);
  const cases = [
    ['payload: exp extended', edit({ exp: payload.exp + 86400 })],
    ['payload: another principal (oid/sub)', edit({ oid: other.id, sub: other.id })],
    ['payload: wrong issuer', edit({ iss: 'https://login.microsoftonline.com/common/v2.0' })],
    ['payload: issuer of another port', edit({ iss: payload.iss.replace(`:${srv.port}`, ':1') })],
    ['payload: another tenant', edit({ tid: crypto.randomUUID() })],
    ['payload: aud as an array with ours', edit({ aud: [payload.aud, 'https://evil.test'] })],
    ['header: typ changed', `${b64json({ ...header, typ: 'at+jwt' })}.${p}.${s}`],
    ['signature: one character changed', `${h}.${p}.${flip(s, 10)}`],
    ['signature: last character changed', `${h}.${p}.${flip(s, s.length - 1)}`],
    ['signature: truncated by one', `${h}.${p}.${s.slice(0, -1)}`],
    ['signature: truncated to half', `${h}.${p}.${s.slice(0, s.length >> 1)}`],
    ['signature: extended', `${h}.${p}.${s}AAAA`],
    ['signature: empty', `${h}.${p}.`],
    ['two segments', `${h}.${p}`],
    ['four segments', `${valid}.${s}`],
    ['one segment', h],
    ['token cut in the payload', valid.slice(0, h.length + 1 + (p.length >> 1))],
    ['the token twice', `${valid}${valid}`],
    ['dots only', '..'],
    ['header not JSON', `${b64url('{"alg":"RS256",')}.${p}.${s}`],
    ['payload not JSON', `${h}.${b64url('not json')}.${s}`],
    ['payload a JSON array', `${h}.${b64url('[]')}.${s}`],
    ['invalid base64url characters', `${h}.${p.slice(0, 5)}$%^${p.slice(5)}.${s}`],
    ['random bytes', b64url(crypto.randomBytes(300))],
    ['non-ASCII token', `${h}.${p}.${s}é`],
  ];
  for (const [what, tok] of cases) assertRefused(await whoami(`Bearer ${tok}`), what);
});

test('tokens for other audiences are refused by the management API', async () => {
  for (const res of ['vault', 'storage', 'events']) {
    const t = await clientToken(srv, sp.appId, sp.secret, res);
    const r = await whoami(`Bearer ${t}`);
    assertRefused(r, `${res} token`);
    assert.equal(r.json.error.code, 'InvalidAuthenticationTokenAudience', r.text);
  }
});

test('oversized tokens: refused (401 or 431), never accepted, and the server stays up', async (t) => {
  const { header, payload } = decodeJwt(valid);
  const { privateKey } = attackerKey();
  for (const size of [10 * 1024, 100 * 1024]) {
    const padded = signJwt(header, { ...payload, pad: 'x'.repeat(size) }, privateKey, 'RS256');
    let r;
    try {
      r = await whoami(`Bearer ${padded}`);
    } catch (e) {
      // A server may also close the connection on a header this large; that is a refusal too.
      assert.match(String(e.message), /ECONNRESET|socket hang up|EPIPE/, `${size}: ${e.message}`);
      continue;
    }
    assertRefused(r, `${size}-byte token`, [401, 431]);
    t.diagnostic(`${size}-byte token: ${r.status} ${r.text.slice(0, 100)}`);
    // The real token with the same padding appended as junk: same answer class.
    const junk = await whoami(`Bearer ${valid}${'A'.repeat(size)}`).catch((e) => ({ status: 0, text: e.message, headers: {} }));
    assert.notEqual(junk.status, 200, `${size}: valid token + junk accepted`);
    assert.equal((await request(srv, { path: '/health' })).status, 200, 'still up');
  }
  assert.equal((await whoami(`Bearer ${valid}`)).status, 200, 'a valid token still works');
});

test('Authorization header forms', async () => {
  const { header, payload } = decodeJwt(valid);
  const forged = signJwt(header, payload, attackerKey().privateKey, 'RS256');
  const cases = [
    ['Bearer with an empty token', 'Bearer '],
    ['Bearer with spaces only', 'Bearer    '],
    ['Bearer alone', 'Bearer'],
    ['scheme only, token glued', `Bearer${valid}`],
    ['lowercase bearer, forged token', `bearer ${forged}`],
    ['uppercase BEARER, forged token', `BEARER ${forged}`],
    ['Basic with the client id and secret', `Basic ${Buffer.from(`${sp.appId}:${sp.secret}`).toString('base64')}`],
    ['Basic with the token', `Basic ${valid}`],
    ['token without a scheme', valid],
    ['another scheme', `Token ${valid}`],
    ['Bearer twice', `Bearer Bearer ${valid}`],
    ['two tokens in one header', `Bearer ${valid}, Bearer ${forged}`],
    ['admin-token shape, wrong', 'Bearer rpa_AAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'],
    ['admin token with a character appended', `Bearer ${srv.token}x`],
    ['admin token truncated', `Bearer ${srv.token.slice(0, -1)}`],
    ['the client secret as a bearer token', `Bearer ${sp.secret}`],
  ];
  for (const [what, value] of cases) assertRefused(await whoami(value), what);
  // No header at all: 401, with the challenge.
  assertRefused(await whoami(undefined), 'no Authorization header');
  // The token in the query string or a cookie is not a credential.
  assertRefused(await whoami(undefined, { path: `/api/whoami?access_token=${valid}` }), 'token in the query');
  assertRefused(await api(srv, 'GET', '/api/whoami', { token: null, headers: { cookie: `access_token=${valid}` } }), 'token in a cookie');
  // The scheme is case-insensitive (RFC 7235 §2.1): a valid token with "bearer" is accepted.
  const lower = await whoami(`bearer ${valid}`);
  assert.equal(lower.status, 200, `lowercase scheme with a valid token: ${lower.text}`);

  // Two Authorization headers: ambiguous (RFC 9110 §5.3: not a list field), so refused
  // whichever comes first (400 or 401).
  const answers = [];
  for (const [label, first, second] of [['valid, forged', `Bearer ${valid}`, `Bearer ${forged}`], ['forged, valid', `Bearer ${forged}`, `Bearer ${valid}`], ['valid, valid', `Bearer ${valid}`, `Bearer ${valid}`]]) {
    const raw = `GET /api/whoami HTTP/1.1\r\nHost: ${DOMAIN}\r\nAuthorization: ${first}\r\nAuthorization: ${second}\r\nConnection: close\r\n\r\n`;
    const { data } = await rawTls(srv, raw, { idleMs: 1000 });
    const [resp] = parseResponses(data);
    answers.push(`${label}: ${resp ? `${resp.status} ${resp.body.slice(0, 120)}` : `no answer ${JSON.stringify(data.slice(0, 100))}`}`);
    if (resp && ![400, 401].includes(resp.status)) answers[answers.length - 1] += '  <-- ACCEPTED';
  }
  assert.ok(answers.every((a) => /^[^:]+: 40[01] /.test(a)), `two Authorization headers must be refused:\n${answers.join('\n')}`);
});

test('after the whole corpus: the valid token works, and no token reached the audit log', async () => {
  const r = await whoami(`Bearer ${valid}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.id, sp.id);
  assert.equal((await request(srv, { path: '/health' })).status, 200);
  const recs = await auditRecords(srv, 0);
  const failures = recs.filter((x) => x.kind === 'authn' && x.result === 'failure');
  assert.ok(failures.length >= 50, `authentication failures are audited (${failures.length})`);
  const text = JSON.stringify(recs);
  const [, , sig] = valid.split('.');
  assert.ok(!text.includes(sig), 'a token signature appears in the audit log');
  assert.ok(!text.includes(sp.secret), 'a client secret appears in the audit log');
  assert.ok(!text.includes(srv.token.split('.')[1]), 'the admin token appears in the audit log');
});

// ---------------------------------------------------------------- real expiry (libfaketime)

const FAKETIME_LIB = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/faketime/libfaketimeMT.so.1'].find((f) => existsSync(f));

test('genuinely expired and not-yet-valid tokens, signed by the server itself, are refused',
  { skip: !FAKETIME_LIB ? 'libfaketime is not installed (apt-get install faketime)' : SANITIZED ? 'libfaketime does not mix with sanitizer runtimes' : false }, async () => {
    const dataDir = tmpDir('rp-faketime-');
    let adminToken;
    const mint = async (offset) => {
      // The same install, started with its clock moved by offset seconds (monotonic clock real).
      const s = await startServer({
        dataDir, init: false,
        env: { LD_PRELOAD: FAKETIME_LIB, FAKETIME: `${offset >= 0 ? '+' : ''}${offset}`, FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_NO_CACHE: '1' },
      });
      s.token = adminToken;
      try {
        const who = await createSp(s);
        const tok = await clientToken(s, who.appId, who.secret);
        const c = decodeJwt(tok).payload;
        assert.ok(Math.abs(c.iat - (Date.now() / 1000 + offset)) < 120, `the faked clock took effect (iat ${c.iat})`);
        return { who, tok };
      } finally {
        await s.stop({ keepData: true });
      }
    };
    try {
      adminToken = init(dataDir).admin_token;
      const past = await mint(-7200); // exp = now - 1 h
      const future = await mint(+7200); // nbf = now + 2 h
      const real = await startServer({ dataDir, init: false });
      real.token = adminToken;
      try {
        const e = await api(real, 'GET', '/api/whoami', { token: past.tok });
        assert.equal(e.status, 401, `expired: ${e.text}`);
        assert.equal(e.json.error.code, 'ExpiredAuthenticationToken');
        const f = await api(real, 'GET', '/api/whoami', { token: future.tok });
        assert.equal(f.status, 401, `not yet valid: ${f.text}`);
        assert.equal(f.json.error.code, 'ExpiredAuthenticationToken');
        // Same key, same principal, a current token: accepted, so the refusals were about time.
        const now = await clientToken(real, past.who.appId, past.who.secret);
        assert.equal(decodeJwt(now).header.kid, decodeJwt(past.tok).header.kid, 'same signing key');
        const ok = await api(real, 'GET', '/api/whoami', { token: now });
        assert.equal(ok.status, 200, ok.text);
        assert.equal(ok.json.id, past.who.id);
      } finally {
        await real.stop({ keepData: true });
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
