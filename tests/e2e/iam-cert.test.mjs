// iam-cert.test.mjs - certificate credentials: a service principal's registered certificate
// authenticates (1) as a TLS client certificate on the management API (tls.client_certificates
// = optional) and (2) as a private_key_jwt client assertion at the token service, driven by the
// unmodified @azure/identity ClientCertificateCredential. Unregistered certificates, replayed
// and re-targeted assertions are refused.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, tmpDir, DOMAIN, rmSync } from './lib/harness.mjs';
import { api, apiOk, uniq, sdkEnv, LOOPBACK_DNS, E2E_DIR, resource, tokenRequest, b64json, decodeJwt } from './lib/iam.mjs';

const CERT_PROBE = new URL('./lib/cert-probe.mjs', import.meta.url).pathname;

// A self-signed RSA certificate; returns { key, cert, pem (key + cert), der, thumbprint }.
function makeCert(dir, cn) {
  const key = join(dir, `${cn}.key`);
  const cert = join(dir, `${cn}.crt`);
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key,
    '-out', cert, '-days', '30', '-subj', `/CN=${cn}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const pemPath = join(dir, `${cn}.pem`);
  writeFileSync(pemPath, readFileSync(key, 'utf8') + readFileSync(cert, 'utf8'));
  const x = new crypto.X509Certificate(readFileSync(cert));
  return { key, cert, pemPath, certPem: readFileSync(cert, 'utf8'), x, keyObj: crypto.createPrivateKey(readFileSync(key)) };
}

function curl(srv, args) {
  return spawnSync('curl', ['-sS', '--cacert', join(srv.dataDir, 'tls', 'ca.crt'), '--resolve',
    `${DOMAIN}:${srv.port}:127.0.0.1`, '-w', '\n%{http_code}', ...args], { encoding: 'utf8', timeout: 20000 });
}

function probe(srv, spec) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', LOOPBACK_DNS, CERT_PROBE, JSON.stringify(spec)],
      { cwd: E2E_DIR, env: sdkEnv(srv), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', () => {
      try { resolve(JSON.parse(out.trim().split('\n').pop())); } catch { reject(new Error(`cert-probe: ${out} ${err}`)); }
    });
  });
}

test('certificate credentials: mTLS to the API and ClientCertificateCredential at the token service', async () => {
  const dir = tmpDir('rp-cert-');
  const srv = await startServer({ env: { RAMPART_TLS_CLIENT_CERTIFICATES: 'optional' } });
  try {
    const good = makeCert(dir, 'deployer');
    const stranger = makeCert(dir, 'stranger');
    const name = uniq('certsp');
    const sp = await apiOk(srv, 'POST', '/api/servicePrincipals', { body: { name } }, 201);
    const cred = await apiOk(srv, 'POST', `/api/servicePrincipals/${name}/credentials`,
      { body: { type: 'certificate', certificate: good.certPem } }, 201);
    assert.equal(cred.thumbprint, good.x.fingerprint256.replaceAll(':', ''));
    // Not a certificate, or a weak key: refused, nothing stored.
    const bad = await api(srv, 'POST', `/api/servicePrincipals/${name}/credentials`,
      { body: { type: 'certificate', certificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' } });
    assert.equal(bad.status, 400);
    const listed = await apiOk(srv, 'GET', `/api/servicePrincipals/${name}`);
    assert.equal(listed.credentials.length, 1);

    // (1) mTLS: the registered certificate is the principal; no bearer token at all.
    let r = curl(srv, ['--cert', good.cert, '--key', good.key, `https://${DOMAIN}:${srv.port}/api/whoami`]);
    let [body, code] = r.stdout.split('\n');
    assert.equal(code, '200', r.stdout + r.stderr);
    assert.equal(JSON.parse(body).id, sp.id);
    assert.equal(JSON.parse(body).via, 'client-certificate');
    r = curl(srv, ['--cert', stranger.cert, '--key', stranger.key, `https://${DOMAIN}:${srv.port}/api/whoami`]);
    [body, code] = r.stdout.split('\n');
    assert.equal(code, '401');
    assert.equal(JSON.parse(body).error.code, 'InvalidAuthenticationToken');
    r = curl(srv, [`https://${DOMAIN}:${srv.port}/api/whoami`]);
    assert.equal(r.stdout.split('\n')[1], '401');
    // Authenticated is not authorized: no role yet.
    r = curl(srv, ['--cert', good.cert, '--key', good.key, `https://${DOMAIN}:${srv.port}/api/servicePrincipals`]);
    assert.equal(r.stdout.split('\n')[1], '403');

    // (2) the unmodified SDK signs a client assertion with the certificate's key.
    const spec = { tenant: srv.tenant, clientId: sp.appId, pemPath: good.pemPath, calls: 2,
      authorityHost: `https://login.${DOMAIN}:${srv.port}`, scope: `${resource('management')}/.default` };
    const ok = await probe(srv, spec);
    assert.equal(ok.ok, true, JSON.stringify(ok.error));
    assert.equal(ok.results[1].token, ok.results[0].token); // second call from the SDK cache
    assert.equal(ok.requests.filter((q) => q.method === 'POST').length, 1);
    assert.equal(decodeJwt(ok.results[0].token).payload.oid, sp.id);
    const who = await api(srv, 'GET', '/api/whoami', { token: ok.results[0].token });
    assert.equal(who.status, 200);
    assert.equal(who.json.id, sp.id);
    // The same SDK with a certificate nobody registered: refused with AADSTS700027.
    const no = await probe(srv, { ...spec, pemPath: stranger.pemPath, calls: 1 });
    assert.equal(no.ok, false);
    assert.match(no.error.message, /700027/);

    // Hand-made assertions: replay, wrong audience, too long a lifetime.
    const tokenUrl = `https://login.${DOMAIN}:${srv.port}/${srv.tenant}/oauth2/v2.0/token`;
    const x5t = Buffer.from(good.x.fingerprint256.replaceAll(':', ''), 'hex').toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const assertion = (claims) => {
      const h = b64json({ alg: 'RS256', typ: 'JWT', 'x5t#S256': x5t });
      const p = b64json({ aud: tokenUrl, iss: sp.appId, sub: sp.appId, jti: crypto.randomUUID(), nbf: now, iat: now, exp: now + 600, ...claims });
      const sig = crypto.sign('sha256', Buffer.from(`${h}.${p}`), good.keyObj).toString('base64url');
      return `${h}.${p}.${sig}`;
    };
    const form = (a) => ({ grant_type: 'client_credentials', client_id: sp.appId, scope: `${resource('vault')}/.default`,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: a });
    const a1 = assertion({});
    let t = await tokenRequest(srv, form(a1));
    assert.equal(t.status, 200, t.text);
    t = await tokenRequest(srv, form(a1));
    assert.equal(t.status, 401);
    assert.match(t.json.error_description, /AADSTS700027/);
    assert.match(t.json.error_description, /replay|used before/i);
    t = await tokenRequest(srv, form(assertion({ aud: 'https://login.example.com/x/oauth2/v2.0/token' })));
    assert.equal(t.status, 401);
    t = await tokenRequest(srv, form(assertion({ exp: now + 7200 })));
    assert.equal(t.status, 401);
    t = await tokenRequest(srv, form(assertion({ iss: 'someone-else' })));
    assert.equal(t.status, 401);
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
