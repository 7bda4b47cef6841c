// sites-auth.test.mjs - built-in authentication ("Easy Auth", docs/sites.md "Authentication"):
// authsettingsV2 through the management API and its refusals; tokens from rampart's token
// service for the app's own audience pass with X-MS-CLIENT-PRINCIPAL* injected (client-sent
// copies replaced); no token, a token for another audience, a tampered or an expired token take
// the unauthenticated action (401 / 403 / redirect, XHR 401); the authorization policies
// (allowed applications, identities) answer 403; excluded paths; /.auth/me.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, request, DOMAIN, SCALE, sleep, SANITIZED, tmpDir, init } from './lib/harness.mjs';
import { api, apiOk, uniq, cliAsync, cliEnv, createSp, clientToken, decodeJwt, assignRole, issuer, auditAll } from './lib/iam.mjs';

const EXAMPLE = new URL('../../examples/app-node', import.meta.url).pathname;
let srv;
let home;
let env;
let name; // a process app (examples/app-node) with Easy Auth on
let sp; // a client of the app
let token; // sp's token for https://NAME.D

const appName = (p) => uniq(p).replace(/[^a-z0-9-]/g, '').slice(0, 40);
const get = (path, headers = {}, host = `${name}.${DOMAIN}`) => request(srv, { host, path, headers, timeout: 30000 * SCALE });
const bearer = (t) => ({ authorization: `Bearer ${t}` });
const setAuth = (app, properties, expect = 200) => apiOk(srv, 'PUT', `/api/apps/${app}/config/authsettingsV2`, { body: { properties } }, expect);

test.before(async () => {
  srv = await startServer();
  home = mkdtempSync(join(tmpdir(), 'rp-auth-home-'));
  env = cliEnv(srv, home);
  name = appName('auth');
  const r = await cliAsync(['app', 'create', name, '--command', 'node server.js', '--static', EXAMPLE], { env });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const t0 = Date.now();
  while ((await get('/')).status !== 200) {
    if (Date.now() - t0 > 20000 * SCALE) throw new Error('the app did not come up');
    await sleep(100);
  }
  sp = await createSp(srv);
  token = await clientToken(srv, sp.appId, sp.secret, name);
});

test.after(async () => {
  if (srv) await srv.stop();
  rmSync(home, { recursive: true, force: true });
});

test('the token service issues tokens for an app origin, and only for apps that exist', async () => {
  const c = decodeJwt(token).payload;
  assert.equal(c.aud, `https://${name}.${DOMAIN}`);
  assert.equal(c.oid, sp.id);
  await assert.rejects(clientToken(srv, sp.appId, sp.secret, 'no-such-app-here'), /invalid_resource|500011/);
});

test('authsettingsV2: defaults, a round trip, and refusals in the management error format', async () => {
  const base = `/api/apps/${name}/config/authsettingsV2`;
  let r = await apiOk(srv, 'GET', base, {}, 200);
  assert.equal(r.name, 'authsettingsV2');
  assert.equal(r.properties.platform.enabled, false);
  const bad = [
    [{ identityProviders: { azureActiveDirectory: { registration: { clientSecret: 'p@ss' } } } }, /clientSecret/],
    [{ httpSettings: { requireHttps: false } }, /requireHttps/],
    [{ identityProviders: { azureActiveDirectory: { registration: { openIdIssuer: 'https://login.microsoftonline.com/common/v2.0' } } } }, /openIdIssuer/],
    [{ identityProviders: { azureActiveDirectory: { registration: { openIdIssuer: 'http://login.example.com/t/v2.0' } } } }, /openIdIssuer/],
    [{ globalValidation: { unauthenticatedClientAction: 'Maybe' } }, /unauthenticatedClientAction/],
    [{ globalValidation: { excludedPaths: ['health'] } }, /excludedPaths/],
    [{ somethingElse: true }, /somethingElse/],
    // The platform's own audiences would hand the app tokens that work elsewhere.
    [{ identityProviders: { azureActiveDirectory: { validation: { allowedAudiences: [`https://management.${DOMAIN}`] } } } }, /audience of the platform/],
    [{ identityProviders: { azureActiveDirectory: { registration: { clientId: `https://vault.${DOMAIN}/` } } } }, /audience of the platform/],
  ];
  for (const [properties, msg] of bad) {
    const x = await api(srv, 'PUT', base, { body: { properties } });
    assert.equal(x.status, 400, `${JSON.stringify(properties)} -> ${x.status} ${x.text}`);
    assert.equal(x.json.error.code, 'InvalidParameter');
    assert.match(x.json.error.message, msg);
  }
  assert.equal((await api(srv, 'PUT', base, { body: '{"properties":' })).status, 400);
  // Nothing was stored: the app still answers anonymously.
  assert.equal((await get('/')).status, 200);
  // A reader sees the settings but cannot change them.
  const reader = await createSp(srv);
  await assignRole(srv, reader.id, 'Reader', `/apps/${name}`);
  const rt = await clientToken(srv, reader.appId, reader.secret, 'management');
  assert.equal((await api(srv, 'GET', base, { token: rt })).status, 200);
  assert.equal((await api(srv, 'PUT', base, { token: rt, body: { properties: { platform: { enabled: false } } } })).status, 403);
});

test('Return401: tokens for the app pass with the principal headers; everything else is 401', async () => {
  await setAuth(name, { platform: { enabled: true }, globalValidation: { requireAuthentication: true, unauthenticatedClientAction: 'Return401', excludedPaths: ['/health'] } });
  const none = await get('/headers');
  assert.equal(none.status, 401);
  assert.match(none.headers['www-authenticate'], /^Bearer realm=/);
  // Spoofing the principal without a token gets nowhere.
  assert.equal((await get('/headers', { 'x-ms-client-principal-id': sp.id, 'x-ms-client-principal': 'e30=' })).status, 401);
  // A valid token for another audience (the management API) is not a token for the app.
  const mgmt = await clientToken(srv, sp.appId, sp.secret, 'management');
  assert.equal((await get('/headers', bearer(mgmt))).status, 401);
  // Tampered: the payload says another principal.
  const [h, , sig] = token.split('.');
  const forged = `${h}.${Buffer.from(JSON.stringify({ ...decodeJwt(token).payload, oid: 'x' })).toString('base64url')}.${sig}`;
  assert.equal((await get('/headers', bearer(forged))).status, 401);
  assert.equal((await get('/headers', { authorization: 'Basic dXNlcjpwYXNz' })).status, 401);

  const ok = await get('/headers', { ...bearer(token), 'x-ms-client-principal-id': 'spoofed', 'x-ms-client-principal-name': 'admin', 'x-ms-token-aad-access-token': 'forged' });
  assert.equal(ok.status, 200, ok.text);
  const seen = JSON.parse(ok.text);
  assert.equal(seen['x-ms-client-principal-id'], sp.id);
  assert.equal(seen['x-ms-client-principal-idp'], 'aad');
  assert.notEqual(seen['x-ms-client-principal-name'], 'admin');
  assert.equal(seen['x-ms-token-aad-access-token'], undefined);
  const principal = JSON.parse(Buffer.from(seen['x-ms-client-principal'], 'base64').toString());
  assert.equal(principal.auth_typ, 'aad');
  const claim = (typ) => principal.claims.find((c) => c.typ === typ)?.val;
  assert.equal(claim('http://schemas.microsoft.com/identity/claims/objectidentifier'), sp.id);
  assert.equal(claim('aud'), `https://${name}.${DOMAIN}`);
  assert.equal(claim('http://schemas.microsoft.com/identity/claims/tenantid'), srv.tenant);
  // Excluded paths need no token (the app answers /health itself: 404 from the app, not 401).
  assert.notEqual((await get('/health')).status, 401);
  assert.equal((await get('/healthz')).status, 401);
  // The refusals are audited.
  const audit = await auditAll(srv);
  assert.ok(audit.some((x) => x.action === 'Microsoft.Web/sites/easyAuth' && x.result === 'denied' && x.scope === `/apps/${name}`));
});

test('/.auth/me answers the caller its claims; /.auth/login starts the browser sign-in', async () => {
  const me = await get('/.auth/me', bearer(token));
  assert.equal(me.status, 200, me.text);
  const [entry] = JSON.parse(me.text);
  assert.equal(entry.provider_name, 'aad');
  assert.equal(entry.access_token, token);
  assert.ok(entry.user_claims.some((c) => c.val === sp.id));
  assert.equal(me.headers['cache-control'], 'no-store');
  assert.equal((await get('/.auth/me')).status, 401);
  // The interactive flow itself is sites-signin.test.mjs's.
  const login = await get('/.auth/login/aad');
  assert.equal(login.status, 302);
  assert.match(login.headers.location, /\/oauth2\/v2\.0\/authorize\?client_id=/);
});

test('unauthenticated actions: Return403, RedirectToLoginPage (XHR gets 401), AllowAnonymous', async () => {
  await setAuth(name, { platform: { enabled: true }, globalValidation: { unauthenticatedClientAction: 'Return403' } });
  assert.equal((await get('/headers')).status, 403);
  await setAuth(name, { platform: { enabled: true }, globalValidation: { unauthenticatedClientAction: 'RedirectToLoginPage' } });
  const r = await get('/headers?x=1');
  assert.equal(r.status, 302);
  assert.match(r.headers.location, /^\/\.auth\/login\/aad\?post_login_redirect_uri=%2Fheaders%3Fx%3D1$/);
  assert.equal((await get('/headers', { 'x-requested-with': 'XMLHttpRequest' })).status, 401);
  await setAuth(name, { platform: { enabled: true }, globalValidation: { requireAuthentication: false, unauthenticatedClientAction: 'AllowAnonymous' } });
  const anon = JSON.parse((await get('/headers', { 'x-ms-client-principal-id': 'spoofed' })).text);
  assert.equal(anon['x-ms-client-principal-id'], undefined);
  const signed = JSON.parse((await get('/headers', bearer(token))).text);
  assert.equal(signed['x-ms-client-principal-id'], sp.id);
});

test('authorization policies: allowed applications and identities answer 403 to others', async () => {
  const other = await createSp(srv);
  const otherToken = await clientToken(srv, other.appId, other.secret, name);
  await setAuth(name, {
    platform: { enabled: true },
    identityProviders: { azureActiveDirectory: { validation: { defaultAuthorizationPolicy: { allowedApplications: [sp.appId] } } } },
  });
  assert.equal((await get('/headers', bearer(token))).status, 200);
  assert.equal((await get('/headers', bearer(otherToken))).status, 403);
  await setAuth(name, {
    platform: { enabled: true },
    identityProviders: { azureActiveDirectory: { validation: { defaultAuthorizationPolicy: { allowedPrincipals: { identities: [other.id] } } } } },
  });
  assert.equal((await get('/headers', bearer(token))).status, 403);
  assert.equal((await get('/headers', bearer(otherToken))).status, 200);
  // Switched off: anonymous again, and client-sent principal headers are still stripped.
  await setAuth(name, { platform: { enabled: false } });
  const anon = JSON.parse((await get('/headers', { 'x-ms-client-principal': 'e30=' })).text);
  assert.equal(anon['x-ms-client-principal'], undefined);
});

test('a deleted principal\'s token stops working at once', async () => {
  const gone = await createSp(srv);
  const t = await clientToken(srv, gone.appId, gone.secret, name);
  await setAuth(name, { platform: { enabled: true } });
  assert.equal((await get('/headers', bearer(t))).status, 200);
  await apiOk(srv, 'DELETE', `/api/servicePrincipals/${gone.name}`, {}, 204);
  assert.equal((await get('/headers', bearer(t))).status, 401);
  await setAuth(name, { platform: { enabled: false } });
});

const FAKETIME_LIB = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/faketime/libfaketimeMT.so.1'].find((f) => existsSync(f));

test('an expired token for the app is refused', { skip: !FAKETIME_LIB ? 'libfaketime is not installed' : SANITIZED ? 'libfaketime does not mix with sanitizer runtimes' : false }, async () => {
  const dataDir = tmpDir('rp-auth-faketime-');
  const admin = init(dataDir).admin_token;
  const app = 'expiry-app';
  const site = mkdtempSync(join(tmpdir(), 'rp-auth-site-'));
  writeFileSync(join(site, 'index.html'), 'private\n');
  let who;
  let old;
  // Two hours ago: the app, its settings and a client's token (valid for one hour).
  let s = await startServer({ dataDir, init: false, env: { LD_PRELOAD: FAKETIME_LIB, FAKETIME: '-7200', FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_NO_CACHE: '1' } });
  s.token = admin;
  try {
    await apiOk(s, 'PUT', `/api/apps/${app}`, { body: {} }, 201);
    await apiOk(s, 'PUT', `/api/apps/${app}/config/authsettingsV2`, { body: { properties: { platform: { enabled: true } } } }, 200);
    who = await createSp(s);
    old = await clientToken(s, who.appId, who.secret, app);
  } finally {
    await s.stop({ keepData: true });
  }
  s = await startServer({ dataDir, init: false });
  s.token = admin;
  try {
    const r = await request(s, { host: `${app}.${DOMAIN}`, path: '/', headers: bearer(old) });
    assert.equal(r.status, 401, r.text);
    // The same client now: accepted (nothing deployed yet: 404 NoContent, past the auth check).
    const fresh = await clientToken(s, who.appId, who.secret, app);
    const f = await request(s, { host: `${app}.${DOMAIN}`, path: '/', headers: bearer(fresh) });
    assert.equal(f.status, 404, f.text);
    assert.match(f.text, /NoContent/);
  } finally {
    await s.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(site, { recursive: true, force: true });
  }
});

test('an external OpenID issuer: its tokens pass with keys fetched over verified TLS, others do not', async () => {
  // The issuer is a second rampart; this server trusts its CA for outbound TLS only.
  const idp = await startServer();
  const b = await startServer({ env: { RAMPART_OUTBOUND_CA: join(idp.dataDir, 'tls', 'ca.crt') } });
  try {
    const app = 'extapi';
    await apiOk(idp, 'PUT', `/api/apps/${app}`, { body: {} }, 201); // so the issuer mints for its origin
    const client = await createSp(idp);
    const ext = await clientToken(idp, client.appId, client.secret, app);
    assert.equal(decodeJwt(ext).payload.iss, issuer(idp));
    await apiOk(b, 'PUT', `/api/apps/${app}`, { body: {} }, 201);
    await apiOk(b, 'PUT', `/api/apps/${app}/config/authsettingsV2`, {
      body: { properties: { platform: { enabled: true }, identityProviders: { azureActiveDirectory: { registration: { openIdIssuer: issuer(idp) } } } } },
    }, 200);
    const at = (t) => request(b, { host: `${app}.${DOMAIN}`, path: '/', headers: t ? bearer(t) : {} });
    // Past the authentication once the keys are in: 404 NoContent (nothing deployed).
    const t0 = Date.now();
    let r;
    for (;;) {
      r = await at(ext);
      if (r.status !== 401 || Date.now() - t0 > 20000 * SCALE) break;
      await sleep(200);
    }
    assert.equal(r.status, 404, r.text);
    assert.match(r.text, /NoContent/);
    // This server's own token for the app is from another issuer now.
    const local = await createSp(b);
    assert.equal((await at(await clientToken(b, local.appId, local.secret, app))).status, 401);
    // The issuer's token for another audience, a tampered one, and none.
    assert.equal((await at(await clientToken(idp, client.appId, client.secret, 'management'))).status, 401);
    const [h, p, sig] = ext.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url')), oid: 'x' })).toString('base64url')}.${sig}`;
    assert.equal((await at(forged)).status, 401);
    assert.equal((await at(null)).status, 401);
  } finally {
    await b.stop();
    await idp.stop();
  }
});
