// iam.test.mjs - identity end to end (docs/iam.md): the token service as the real
// @azure/identity SDK uses it (ClientSecretCredential with a custom authority, its token cache,
// its AADSTS errors), the token contract (claims, signature against the JWKS), the managed
// identity endpoint through ManagedIdentityCredential (system- and user-assigned, expires_on,
// fast 400 errors), bearer tokens on the management API, revocation by deletion, and
// `rampart identity exec`.
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { startServer, request, DOMAIN, tmpDir, rmSync } from './lib/harness.mjs';
import {
  api, apiOk, createSp, assignRole, tokenRequest, clientToken, fetchJwks, decodeJwt, resource,
  loginOrigin, issuer, runProbe, probeArgv, cliAsync, cliEnv, cliHas, uniq, waitAudit, UUID_RE,
  sdkEnv,
} from './lib/iam.mjs';

// GET on the managed identity endpoint (plain HTTP on loopback). Returns { status, json, ms }.
function msiGet(srv, query, headers = {}) {
  const u = new URL(srv.identityEndpoint);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: `${u.pathname}?${new URLSearchParams(query)}`, headers, timeout: 10000 }, (res) => {
      let d = '';
      res.on('data', (c) => { d += c; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(d); } catch { /* not JSON: the assertion names it */ }
        resolve({ status: res.statusCode, headers: res.headers, text: d, json, ms: performance.now() - t0 });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function assertMsiError(r, what) {
  assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json?.statusCode, 400, `${what}: App Service error body, got ${r.text}`);
  assert.equal(typeof r.json.message, 'string', what);
  assert.ok(r.json.message.length > 0, what);
  assert.equal(r.json.access_token, undefined, what);
}

const MGMT_SCOPE = `${resource('management')}/.default`;
const VAULT_SCOPE = `${resource('vault')}/.default`;

let srv;
test.before(async () => { srv = await startServer(); });
test.after(async () => { if (srv) await srv.stop(); });

test('token service: OIDC discovery and JWKS as Entra ID publishes them', async () => {
  assert.match(srv.tenant, UUID_RE);
  const d = await request(srv, { host: `login.${DOMAIN}`, path: `/${srv.tenant}/v2.0/.well-known/openid-configuration` });
  assert.equal(d.status, 200, d.text);
  assert.match(d.headers['content-type'], /^application\/json/);
  const oidc = JSON.parse(d.text);
  // msal-common 16 checks that the issuer shares scheme, host and port with the authority.
  assert.equal(oidc.issuer, issuer(srv));
  assert.equal(oidc.token_endpoint, `${loginOrigin(srv)}/${srv.tenant}/oauth2/v2.0/token`);
  assert.equal(oidc.jwks_uri, `${loginOrigin(srv)}/${srv.tenant}/discovery/v2.0/keys`);
  assert.equal(typeof oidc.authorization_endpoint, 'string');
  assert.deepEqual(oidc.id_token_signing_alg_values_supported, ['ES256']);
  assert.ok(Array.isArray(oidc.response_types_supported));
  assert.ok(Array.isArray(oidc.token_endpoint_auth_methods_supported));

  const jwks = await fetchJwks(srv);
  assert.ok(jwks.keys.length >= 1);
  for (const k of jwks.keys) {
    // Access tokens are ES256 (docs/benchmarks.md has the measurement behind the choice).
    assert.equal(k.kty, 'EC');
    assert.equal(k.crv, 'P-256');
    assert.equal(k.alg, 'ES256');
    assert.equal(typeof k.kid, 'string');
    assert.equal(k.d, undefined, 'no private part in the JWKS');
    const pub = crypto.createPublicKey({ key: k, format: 'jwk' });
    assert.equal(pub.asymmetricKeyDetails.namedCurve, 'prime256v1');
  }
  // Only our tenant: the multi-tenant aliases and other ids are refused, AAD-style.
  for (const t of ['common', 'organizations', crypto.randomUUID()]) {
    const r = await request(srv, { host: `login.${DOMAIN}`, path: `/${t}/v2.0/.well-known/openid-configuration` });
    assert.equal(r.status, 400, `${t}: ${r.text}`);
    assert.deepEqual(JSON.parse(r.text).error_codes, [90002]);
  }
});

test('token service: access token claims and signature; AADSTS errors for every refusal', async () => {
  const sp = await createSp(srv);
  assert.match(sp.secret, /^[A-Za-z0-9_-]{43}$/, 'a secret is 32 random bytes in base64url');
  assert.match(sp.appId, UUID_RE);
  assert.match(sp.id, UUID_RE);
  const shown = await apiOk(srv, 'GET', `/api/servicePrincipals/${sp.name}`, {}, 200);
  assert.equal(shown.credentials.length, 1);
  assert.equal(shown.credentials[0].keyId, sp.keyId);
  assert.ok(!JSON.stringify(shown).includes(sp.secret), 'a secret is shown once, at creation');
  const mi = await apiOk(srv, 'POST', '/api/identities', { body: { name: uniq('mi') } }, 201);
  const ok = await tokenRequest(srv, { grant_type: 'client_credentials', client_id: sp.appId, client_secret: sp.secret, scope: `${resource('vault')}/.default` });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.token_type, 'Bearer');
  assert.ok(ok.json.expires_in >= 3590 && ok.json.expires_in <= 3600, `expires_in ${ok.json.expires_in}`);
  assert.match(ok.headers['cache-control'] || '', /no-store/);
  const { header, payload, signingInput, signature } = decodeJwt(ok.json.access_token);
  assert.equal(header.alg, 'ES256');
  assert.equal(header.typ, 'JWT');
  const now = Math.floor(Date.now() / 1000);
  assert.equal(payload.aud, resource('vault'), 'the /.default suffix is removed');
  assert.equal(payload.iss, issuer(srv));
  assert.equal(payload.sub, sp.id);
  assert.equal(payload.oid, sp.id);
  assert.equal(payload.tid, srv.tenant);
  assert.equal(payload.appid, sp.appId);
  assert.equal(payload.azp, sp.appId);
  assert.equal(payload.idtyp, 'app');
  assert.equal(payload.ver, '2.0');
  assert.equal(typeof payload.uti, 'string');
  assert.ok(Math.abs(payload.iat - now) < 60, `iat ${payload.iat} vs ${now}`);
  assert.equal(payload.exp - payload.iat, 3600);
  assert.ok(payload.nbf <= now + 1);
  // The signature verifies with the published key named by kid.
  const jwk = (await fetchJwks(srv)).keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} is in the JWKS`);
  // JWS ES256 signatures are raw r||s (IEEE P1363), not DER.
  assert.equal(Buffer.from(signature, 'base64url').length, 64);
  assert.ok(crypto.verify('sha256', Buffer.from(signingInput), { key: crypto.createPublicKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url')));
  // Every token is new (uti differs) and the secret appears nowhere in it.
  const again = await clientToken(srv, sp.appId, sp.secret, 'vault');
  assert.notEqual(decodeJwt(again).payload.uti, payload.uti);
  assert.ok(!ok.json.access_token.includes(sp.secret));

  const base = { grant_type: 'client_credentials', client_id: sp.appId, client_secret: sp.secret, scope: MGMT_SCOPE };
  const cases = [
    ['unknown tenant', base, 400, 'invalid_request', 90002, { tenant: crypto.randomUUID() }],
    ['tenant "common"', base, 400, 'invalid_request', 90002, { tenant: 'common' }],
    ['missing client_id', { grant_type: 'client_credentials', client_secret: sp.secret, scope: MGMT_SCOPE }, 400, 'invalid_request', 900144],
    ['missing scope', { grant_type: 'client_credentials', client_id: sp.appId, client_secret: sp.secret }, 400, 'invalid_request', 900144],
    ['missing grant_type', { client_id: sp.appId, client_secret: sp.secret, scope: MGMT_SCOPE }, 400, 'invalid_request', 900144],
    ['password grant', { ...base, grant_type: 'password' }, 400, 'unsupported_grant_type', 70003],
    ['scope without /.default', { ...base, scope: resource('management') }, 400, 'invalid_scope', 1002012],
    ['two scopes', { ...base, scope: `${MGMT_SCOPE} ${VAULT_SCOPE}` }, 400, 'invalid_scope', 1002012],
    ['unknown resource', { ...base, scope: 'https://graph.microsoft.com/.default' }, 400, 'invalid_resource', 500011],
    ['look-alike resource', { ...base, scope: `https://management.${DOMAIN}.evil.test/.default` }, 400, 'invalid_resource', 500011],
    ['unknown client id', { ...base, client_id: crypto.randomUUID() }, 400, 'unauthorized_client', 700016],
    ['managed identity as a client', { ...base, client_id: mi.appId }, 400, 'unauthorized_client', 700016],
    ['wrong secret', { ...base, client_secret: `${sp.secret.slice(0, -1)}${sp.secret.endsWith('A') ? 'B' : 'A'}` }, 401, 'invalid_client', 7000215],
    ['empty secret', { ...base, client_secret: '' }, 401, 'invalid_client', 7000215],
    ['secret of another principal', { ...base, client_secret: (await createSp(srv)).secret }, 401, 'invalid_client', 7000215],
  ];
  for (const [what, form, status, error, code, opts = {}] of cases) {
    const r = await tokenRequest(srv, form, opts);
    assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
    assert.equal(r.json?.error, error, `${what}: ${r.text}`);
    assert.deepEqual(r.json.error_codes, [code], what);
    assert.ok(r.json.error_description.startsWith(`AADSTS${code}:`), `${what}: ${r.json.error_description}`);
    for (const k of ['timestamp', 'trace_id', 'correlation_id']) assert.equal(typeof r.json[k], 'string', `${what}: ${k}`);
    assert.equal(r.json.access_token, undefined, what);
    assert.ok(!r.text.includes(sp.secret), `${what}: the secret is not echoed`);
  }
  // Unknown form fields are ignored (MSAL sends telemetry fields and claims).
  const extra = await tokenRequest(srv, { ...base, 'x-client-SKU': 'msal.js.node', claims: '{"access_token":{"xms_cc":{"values":["cp1"]}}}', 'client-request-id': crypto.randomUUID() });
  assert.equal(extra.status, 200, extra.text);
  // "The /.default suffix and one trailing / are removed": the resource URI with its trailing
  // slash, as in Azure's "https://storage.azure.com//.default", names the same audience.
  const slash = await tokenRequest(srv, { grant_type: 'client_credentials', client_id: sp.appId, client_secret: sp.secret, scope: `${resource('storage')}//.default` });
  assert.equal(slash.status, 200, `scope ${resource('storage')}//.default: ${slash.text}`);
  assert.equal(decodeJwt(slash.json.access_token).payload.aud, resource('storage'));
});

test('ClientSecretCredential: token from the SDK, second call from its cache, bearer on the management API', async () => {
  const sp = await createSp(srv);
  const spec = { kind: 'secret', tenant: srv.tenant, clientId: sp.appId, secret: sp.secret, authorityHost: loginOrigin(srv), scope: MGMT_SCOPE, calls: 2 };
  const out = await runProbe(srv, spec);
  assert.ok(out.ok, `SDK failed: ${JSON.stringify(out.error)}\n${out.stderr}`);
  assert.equal(out.results.length, 2);
  const [first, second] = out.results;
  assert.equal(second.token, first.token, 'the second getToken returns the cached token');
  const posts = out.requests.filter((r) => r.method === 'POST');
  assert.equal(posts.length, 1, `one token request on the wire: ${JSON.stringify(out.requests)}`);
  assert.match(posts[0].path, new RegExp(`^/${srv.tenant}/oauth2/v2.0/token`));
  assert.equal(posts[0].host, `login.${DOMAIN}`);
  assert.ok(out.requests.every((r) => r.host === `login.${DOMAIN}`), `no request leaves the install (no instance discovery): ${JSON.stringify(out.requests)}`);
  const exp = first.expiresOnTimestamp;
  assert.ok(Math.abs(exp - (Date.now() + 3600e3)) < 120e3, `expiresOnTimestamp ${new Date(exp).toISOString()}`);
  const claims = decodeJwt(first.token).payload;
  assert.equal(claims.aud, resource('management'));
  assert.equal(claims.oid, sp.id);

  // The server issued exactly one token for this client (its audit trail agrees with the wire).
  const recs = await waitAudit(srv, (rs) => rs.some((r) => r.action === 'token.issue' && r.principal === sp.id), { what: 'token.issue record' });
  assert.equal(recs.filter((r) => r.action === 'token.issue' && r.principal === sp.id && r.result === 'success').length, 1);

  // The token authenticates on the management API as that principal.
  const who = await api(srv, 'GET', '/api/whoami', { token: first.token });
  assert.equal(who.status, 200, who.text);
  assert.equal(who.json.id, sp.id);
  assert.equal(who.json.clientId, sp.appId);
  assert.equal(who.json.name, sp.name);
  assert.equal(who.json.type, 'servicePrincipal');
  assert.equal(who.json.via, 'bearer');
  // Authenticated is not authorized: without a role the SP reads nothing.
  const list = await api(srv, 'GET', '/api/servicePrincipals', { token: first.token });
  assert.equal(list.status, 403, list.text);
  assert.equal(list.json.error.code, 'AuthorizationFailed');
  await assignRole(srv, sp.appId, 'Reader');
  const list2 = await api(srv, 'GET', '/api/servicePrincipals', { token: first.token });
  assert.equal(list2.status, 200, list2.text);
  assert.ok(list2.json.value.some((p) => p.id === sp.id));
  assert.ok(list2.json.value.every((p) => !('secret' in p)), 'listings never carry secrets');
});

// @azure/identity 4.13.1 turns every MSAL ServerError from the token endpoint into an
// AuthenticationRequiredError (msal/utils.js handleMsalError); against Entra ID it is the same.
test('ClientSecretCredential: a wrong secret fails with AADSTS7000215 (AuthenticationRequiredError)', async () => {
  const sp = await createSp(srv);
  const spec = { kind: 'secret', tenant: srv.tenant, clientId: sp.appId, secret: 'not-the-secret-0123456789abcdefghijklmnopq', authorityHost: loginOrigin(srv), scope: MGMT_SCOPE, calls: 1 };
  const out = await runProbe(srv, spec);
  assert.equal(out.ok, false, 'getToken must fail');
  assert.equal(out.error.name, 'AuthenticationRequiredError', JSON.stringify(out.error));
  assert.match(out.error.message, /invalid_client/);
  assert.match(out.error.message, /AADSTS7000215/);
  assert.doesNotMatch(out.error.message, /not-the-secret/, 'the secret is not echoed');
  // An unknown client id fails too (AADSTS700016), and the tenant must be ours.
  const out2 = await runProbe(srv, { ...spec, clientId: crypto.randomUUID() });
  assert.equal(out2.ok, false);
  assert.match(out2.error.message, /AADSTS700016/);
  const out3 = await runProbe(srv, { ...spec, secret: sp.secret, tenant: crypto.randomUUID() });
  assert.equal(out3.ok, false, 'another tenant id gets no token');
});

test('a deleted service principal\'s tokens stop working at once', async () => {
  const sp = await createSp(srv);
  const tok = await clientToken(srv, sp.appId, sp.secret);
  const a = await api(srv, 'GET', '/api/whoami', { token: tok });
  assert.equal(a.status, 200, a.text);
  await apiOk(srv, 'DELETE', `/api/servicePrincipals/${sp.name}`, {}, 204);
  for (let i = 0; i < 3; i++) { // the verified-token cache must not keep it alive
    const b = await api(srv, 'GET', '/api/whoami', { token: tok });
    assert.equal(b.status, 401, b.text);
    assert.equal(typeof b.json?.error?.code, 'string');
  }
  const t = await tokenRequest(srv, { grant_type: 'client_credentials', client_id: sp.appId, client_secret: sp.secret, scope: MGMT_SCOPE });
  assert.equal(t.status, 400, t.text);
  assert.deepEqual(t.json.error_codes, [700016]);
});

test('ManagedIdentityCredential: system and user-assigned identities through a workload session', async () => {
  assert.match(srv.identityEndpoint, /^http:\/\/127\.0\.0\.1:\d+\/msi\/token$/, 'the endpoint is loopback only');
  const a = await apiOk(srv, 'POST', '/api/identities', { body: { name: uniq('mi-a') } }, 201);
  const b = await apiOk(srv, 'POST', '/api/identities', { body: { name: uniq('mi-b') } }, 201);
  const c = await apiOk(srv, 'POST', '/api/identities', { body: { name: uniq('mi-c') } }, 201);
  assert.equal(a.type, 'managedIdentity');
  const sess = await apiOk(srv, 'POST', `/api/identities/${a.name}/sessions`, { body: { identities: [b.name] } }, 201);
  assert.equal(sess.endpoint, srv.identityEndpoint);
  assert.ok(typeof sess.header === 'string' && sess.header.length >= 32);
  assert.match(sess.id, UUID_RE);
  const env = { IDENTITY_ENDPOINT: sess.endpoint, IDENTITY_HEADER: sess.header };

  // System-assigned (no id): the session's default identity.
  const sys = await runProbe(srv, { kind: 'mi', scope: VAULT_SCOPE, calls: 2 }, { env });
  assert.ok(sys.ok, `SDK failed: ${JSON.stringify(sys.error)}\n${sys.stderr}`);
  const [t1, t2] = sys.results;
  const c1 = decodeJwt(t1.token).payload;
  assert.equal(c1.oid, a.id);
  assert.equal(c1.appid, a.appId);
  assert.equal(c1.aud, resource('vault'));
  assert.equal(c1.iss, issuer(srv));
  // expires_on was read as Unix seconds (a bad format would make the token "already expired").
  assert.ok(Math.abs(t1.expiresOnTimestamp - (Date.now() + 3600e3)) < 120e3, `expiresOnTimestamp ${t1.expiresOnTimestamp}`);
  assert.equal(t2.token, t1.token, 'second getToken from the cache');
  const msiCalls = sys.requests.filter((r) => r.path.startsWith('/msi/token'));
  assert.equal(msiCalls.length, 1, `one MI request: ${JSON.stringify(sys.requests)}`);
  assert.match(msiCalls[0].path, /api-version=2019-08-01/);

  // User-assigned by client id, object id and resource id: the second identity of the session.
  for (const [sel, value] of [['clientId', b.appId], ['objectId', b.id], ['resourceId', `/identities/${b.name}`]]) {
    const u = await runProbe(srv, { kind: 'mi', scope: MGMT_SCOPE, calls: 2, [sel]: value }, { env });
    assert.ok(u.ok, `${sel}: ${JSON.stringify(u.error)}\n${u.stderr}`);
    assert.equal(decodeJwt(u.results[0].token).payload.oid, b.id, sel);
    assert.equal(u.results[1].token, u.results[0].token, `${sel}: cached`);
    // A management token from the MI endpoint authenticates as the identity.
    const who = await api(srv, 'GET', '/api/whoami', { token: u.results[0].token });
    assert.equal(who.status, 200, who.text);
    assert.equal(who.json.id, b.id);
    assert.equal(who.json.type, 'managedIdentity');
  }

  // Errors are fast: 400 is not retried by the SDK (404 would be, for ~25 s).
  const badHeader = await runProbe(srv, { kind: 'mi', scope: VAULT_SCOPE, calls: 1 }, { env: { ...env, IDENTITY_HEADER: crypto.randomBytes(32).toString('base64url') } });
  assert.equal(badHeader.ok, false, 'a wrong header gets no token');
  assert.equal(badHeader.error.name, 'CredentialUnavailableError', JSON.stringify(badHeader.error));
  assert.ok(badHeader.error.ms < 5000, `failed in ${badHeader.error.ms} ms (no retries)`);
  assert.equal(badHeader.requests.filter((r) => r.path.startsWith('/msi/token')).length, 1, 'no retry');
  for (const [sel, value] of [['clientId', crypto.randomUUID()], ['clientId', c.appId]]) {
    const u = await runProbe(srv, { kind: 'mi', scope: VAULT_SCOPE, calls: 1, [sel]: value }, { env });
    assert.equal(u.ok, false, `${value}: an identity outside the session gets no token`);
    assert.equal(u.error.name, 'CredentialUnavailableError', JSON.stringify(u.error));
    assert.ok(u.error.ms < 5000, `failed in ${u.error.ms} ms`);
  }
});

test('managed identity endpoint: the wire contract, every error a 400 in App Service shape', async () => {
  const a = await apiOk(srv, 'POST', '/api/identities', { body: { name: uniq('mi-w') } }, 201);
  const other = await apiOk(srv, 'POST', '/api/identities', { body: { name: uniq('mi-o') } }, 201);
  const sp = await createSp(srv);
  const sess = await apiOk(srv, 'POST', `/api/identities/${a.name}/sessions`, { body: { ttlSeconds: 600 } }, 201);
  const H = { 'x-identity-header': sess.header };
  const q = { 'api-version': '2019-08-01', resource: resource('vault') };

  const ok = await msiGet(srv, q, H);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.token_type, 'Bearer');
  assert.equal(ok.json.resource, resource('vault'));
  assert.equal(ok.json.client_id, a.appId);
  assert.equal(typeof ok.json.expires_on, 'number', 'expires_on is Unix seconds');
  assert.ok(Math.abs(ok.json.expires_on - (Date.now() / 1000 + 3600)) < 120);
  assert.equal(decodeJwt(ok.json.access_token).payload.exp, ok.json.expires_on);
  assert.equal((await msiGet(srv, { ...q, resource: `${resource('vault')}/.default` }, H)).status, 200, 'a /.default suffix is tolerated');
  assert.equal((await msiGet(srv, q, { 'X-IDENTITY-HEADER': sess.header })).status, 200, 'header name is case-insensitive');

  const cases = [
    ['no header', q, {}],
    ['empty header', q, { 'x-identity-header': '' }],
    ['wrong header', q, { 'x-identity-header': crypto.randomBytes(32).toString('base64url') }],
    ['header with one character changed', q, { 'x-identity-header': sess.header.slice(0, -1) + (sess.header.endsWith('A') ? 'B' : 'A') }],
    ['Metadata header instead (IMDS style)', q, { Metadata: 'true' }],
    ['old api-version', { ...q, 'api-version': '2017-09-01' }, H],
    ['no api-version', { resource: resource('vault') }, H],
    ['no resource', { 'api-version': '2019-08-01' }, H],
    ['unknown resource', { ...q, resource: 'https://vault.azure.net' }, H],
    ['unknown client_id', { ...q, client_id: crypto.randomUUID() }, H],
    ['identity not in the session', { ...q, client_id: other.appId }, H],
    ['identity not in the session (object_id)', { ...q, object_id: other.id }, H],
    ['identity not in the session (mi_res_id)', { ...q, mi_res_id: `/identities/${other.name}` }, H],
    ['a service principal is not a managed identity', { ...q, client_id: sp.appId }, H],
    ['two selectors', { ...q, client_id: a.appId, object_id: a.id }, H],
  ];
  for (const [what, query, headers] of cases) {
    const r = await msiGet(srv, query, headers);
    assertMsiError(r, what);
    assert.ok(r.ms < 2000, `${what}: answered in ${r.ms} ms`);
  }

  // Ending the session ends the header at once.
  await apiOk(srv, 'DELETE', `/api/identities/sessions/${sess.id}`, {}, 204);
  assertMsiError(await msiGet(srv, q, H), 'after the session was deleted');
  // A principal that may assign the identity starts a session and ends its own.
  const op = await createSp(srv);
  await assignRole(srv, op.appId, 'Contributor', `/identities/${a.name}`);
  const opTok = await clientToken(srv, op.appId, op.secret);
  const own = await api(srv, 'POST', `/api/identities/${a.name}/sessions`, { token: opTok, body: { ttlSeconds: 120 } });
  assert.equal(own.status, 201, own.text);
  assert.equal((await msiGet(srv, q, { 'x-identity-header': own.json.header })).status, 200);
  assert.equal((await api(srv, 'DELETE', `/api/identities/sessions/${own.json.id}`, { token: opTok })).status, 204, 'the creator ends its session');
  assertMsiError(await msiGet(srv, q, { 'x-identity-header': own.json.header }), 'after its creator ended it');
  // Deleting an identity also ends what it could get: a new session's header stops for it.
  const s2 = await apiOk(srv, 'POST', `/api/identities/${other.name}/sessions`, { body: {} }, 201);
  assert.equal((await msiGet(srv, q, { 'x-identity-header': s2.header })).status, 200);
  await apiOk(srv, 'DELETE', `/api/identities/${other.name}`, {}, 204);
  assertMsiError(await msiGet(srv, q, { 'x-identity-header': s2.header }), 'identity deleted');
  // Sessions take ttlSeconds in [60, 86400] and only existing identities.
  for (const body of [{ ttlSeconds: 59 }, { ttlSeconds: 86401 }, { ttlSeconds: '600' }, { identities: 'x' }, { identities: [uniq('nope')] }]) {
    const r = await api(srv, 'POST', `/api/identities/${a.name}/sessions`, { body });
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
  }
  // The MI endpoint is not reachable through the public listener.
  const pub = await request(srv, { path: `/msi/token?${new URLSearchParams(q)}`, headers: H });
  assert.notEqual(pub.status, 200, 'no managed identity tokens on the public port');
});

const HAS_EXEC = cliHas(['identity', 'exec']);

test('rampart identity exec runs a workload with a session and ends the session when it exits',
  { todo: HAS_EXEC ? false : 'rampart identity exec is not in this build of the CLI yet' }, async () => {
    const home = tmpDir('rp-iam-home-');
    try {
      const a = await apiOk(srv, 'POST', '/api/identities', { body: { name: uniq('mi-x') } }, 201);
      const b = await apiOk(srv, 'POST', '/api/identities', { body: { name: uniq('mi-y') } }, 201);
      const probe = probeArgv({ kind: 'mi', scope: VAULT_SCOPE, calls: 2, echoEnv: true });
      const env = { ...cliEnv(srv, home), NODE_EXTRA_CA_CERTS: sdkEnv(srv).NODE_EXTRA_CA_CERTS };
      const r = await cliAsync(['identity', 'exec', '--identity', a.name, '--identity', b.name, '--', ...probe], { env });
      assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split('\n').pop());
      assert.ok(out.ok, JSON.stringify(out.error));
      assert.equal(decodeJwt(out.results[0].token).payload.oid, a.id, 'the first --identity is the default');
      assert.equal(out.results[1].token, out.results[0].token);
      assert.equal(out.env.IDENTITY_ENDPOINT, srv.identityEndpoint);
      assert.ok(out.env.IDENTITY_HEADER);
      assert.equal(out.env.IDENTITY_SERVER_THUMBPRINT, undefined, 'would turn App Service mode into Service Fabric');
      // The workload's session ended with it.
      assertMsiError(await msiGet(srv, { 'api-version': '2019-08-01', resource: resource('vault') }, { 'x-identity-header': out.env.IDENTITY_HEADER }), 'after exec returned');
      // The second identity was usable by client id while it ran.
      const r2 = await cliAsync(['identity', 'exec', '--identity', a.name, '--identity', b.name, '--',
        ...probeArgv({ kind: 'mi', scope: VAULT_SCOPE, calls: 1, clientId: b.appId })], { env });
      assert.equal(r2.status, 0, r2.stderr);
      assert.equal(decodeJwt(JSON.parse(r2.stdout.trim().split('\n').pop()).results[0].token).payload.oid, b.id);
      // An unknown identity: no command runs, a non-zero exit.
      const r3 = await cliAsync(['identity', 'exec', '--identity', uniq('nope'), '--', process.execPath, '-e', 'console.log("RAN")'], { env });
      assert.notEqual(r3.status, 0);
      assert.doesNotMatch(r3.stdout, /RAN/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
