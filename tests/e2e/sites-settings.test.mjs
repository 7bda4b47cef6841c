// sites-settings.test.mjs - app settings, connection strings, the app's managed identity and Key
// Vault references (docs/sites.md "App settings", "Managed identity"): the settings API and its
// refusals, encryption at rest, an app process that reads a secret with the unmodified
// @azure/identity ManagedIdentityCredential + @azure/keyvault-secrets, and the same secret
// arriving through a Key Vault reference - unresolved (the literal, with the reason) until the
// app's identity holds a role, resolved after, refreshed to a new version, and gone with the app.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, cpSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, request, DOMAIN, SCALE, sleep, assertNotOnDisk } from './lib/harness.mjs';
import { api, apiOk, uniq, cliAsync, cliEnv, assignRole, createSp, clientToken, E2E_DIR, LOOPBACK_DNS, auditAll } from './lib/iam.mjs';
import { createVault, vaultName, kv, kvPrincipal } from './lib/vault.mjs';

let srv;
let home;
let env;
let vault;
let writer; // a principal that writes secrets
let release; // the app's content: server.js, node_modules, the CA, the DNS preload
const apps = [];

const appName = (p) => uniq(p).replace(/[^a-z0-9-]/g, '').slice(0, 40);
const get = (name, path) => request(srv, { host: `${name}.${DOMAIN}`, path, timeout: 30000 * SCALE });

// The app: /env shows its environment; /secret?name=N reads N with the Azure SDKs and the app's
// managed identity (IDENTITY_ENDPOINT / IDENTITY_HEADER from the platform).
const SERVER_JS = `
import http from 'node:http';
import { ManagedIdentityCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
const port = process.env.PORT;
http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://app');
  res.setHeader('content-type', 'application/json');
  if (url.pathname === '/env') return res.end(JSON.stringify(process.env));
  if (url.pathname === '/pid') return res.end(JSON.stringify(process.pid));
  if (url.pathname === '/secret') {
    try {
      const client = new SecretClient(url.searchParams.get('vault'), new ManagedIdentityCredential());
      const s = await client.getSecret(url.searchParams.get('name'));
      return res.end(JSON.stringify({ value: s.value, version: s.properties.version }));
    } catch (e) {
      res.statusCode = 500;
      return res.end(JSON.stringify({ error: String(e && e.message), status: e && e.statusCode, code: e && e.code }));
    }
  }
  res.end('"ok"');
}).listen(port);
`;

async function waitFor(what, fn, ms = 30000 * SCALE) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

const appEnv = async (name) => {
  const r = await get(name, '/env');
  return r.status === 200 ? JSON.parse(r.text) : null;
};

async function createApp(prefix) {
  const name = appName(prefix);
  const r = await cliAsync(['app', 'create', name, '--command', 'node --import ./loopback-dns.mjs server.mjs', '--static', release], { env, timeoutMs: 120000 * SCALE });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  apps.push(name);
  await waitFor(`${name} to answer`, async () => (await get(name, '/')).status === 200);
  return name;
}

const identityOf = (name) => waitFor(`${name}'s identity`, async () => (await apiOk(srv, 'GET', `/api/apps/${name}`, {}, 200)).identity);

test.before(async () => {
  srv = await startServer();
  home = mkdtempSync(join(tmpdir(), 'rp-settings-home-'));
  env = cliEnv(srv, home);
  release = mkdtempSync(join(tmpdir(), 'rp-settings-app-'));
  writeFileSync(join(release, 'server.mjs'), SERVER_JS);
  cpSync(LOOPBACK_DNS, join(release, 'loopback-dns.mjs'));
  cpSync(join(srv.dataDir, 'tls', 'ca.crt'), join(release, 'ca.crt'));
  // The SDKs as npm installed them for the tests (no symlinks: a deploy refuses them).
  cpSync(join(E2E_DIR, 'node_modules'), join(release, 'node_modules'), {
    recursive: true, filter: (src) => !src.includes('/.bin') && !statSync(src, { throwIfNoEntry: false })?.isSymbolicLink(),
  });
  vault = await createVault(srv, vaultName('kvref'));
  writer = await kvPrincipal(srv, vault, 'Key Vault Secrets Officer');
});

test.after(async () => {
  if (srv) await srv.stop();
  rmSync(home, { recursive: true, force: true });
  rmSync(release, { recursive: true, force: true });
});

async function setSecret(name, value) {
  const r = await kv(srv, vault, 'PUT', `/secrets/${name}`, { token: writer.token, body: { value } });
  assert.equal(r.status, 200, r.text);
  return r.json.id.split('/').pop();
}

test('settings API: replace, list, connection strings; refusals in the management error format', async () => {
  const name = appName('cfg');
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: {} }, 201);
  apps.push(name);
  const base = `/api/apps/${name}/config`;
  let r = await apiOk(srv, 'PUT', `${base}/appsettings`, { body: { properties: { GREETING: 'hello', 'a.b': 'x' } } }, 200);
  assert.deepEqual(r.properties, { GREETING: 'hello', 'a.b': 'x' });
  r = await apiOk(srv, 'POST', `${base}/appsettings/list`, {}, 200);
  assert.deepEqual(r, { name: 'appsettings', properties: { GREETING: 'hello', 'a.b': 'x' } });
  await apiOk(srv, 'PUT', `${base}/connectionstrings`, { body: { properties: { db: { value: 'Server=db;Password=p', type: 'sqlazure' } } } }, 200);
  r = await apiOk(srv, 'POST', `${base}/connectionstrings/list`, {}, 200);
  assert.deepEqual(r.properties, { db: { value: 'Server=db;Password=p', type: 'SQLAzure' } });
  // The CLI changes one setting and keeps the others (it writes the whole set back).
  const cs = await cliAsync(['app', 'settings', 'set', name, 'EXTRA=1', 'GREETING=hey'], { env });
  assert.equal(cs.status, 0, cs.stderr);
  assert.deepEqual((await apiOk(srv, 'POST', `${base}/appsettings/list`, {}, 200)).properties, { GREETING: 'hey', 'a.b': 'x', EXTRA: '1' });
  assert.equal((await cliAsync(['app', 'settings', 'delete', name, 'EXTRA'], { env })).status, 0);
  assert.equal((await cliAsync(['app', 'settings', 'delete', name, 'NOPE'], { env })).status, 1);
  assert.equal((await cliAsync(['app', 'settings', 'set', name, 'NOEQUALS'], { env })).status, 2);
  // Replacing one set keeps the other; PUT replaces the whole set.
  await apiOk(srv, 'PUT', `${base}/appsettings`, { body: { properties: { ONLY: '1' } } }, 200);
  assert.deepEqual((await apiOk(srv, 'POST', `${base}/appsettings/list`, {}, 200)).properties, { ONLY: '1' });
  assert.equal((await apiOk(srv, 'POST', `${base}/connectionstrings/list`, {}, 200)).properties.db.type, 'SQLAzure');

  const bad = [
    [{ properties: { PORT: '1' } }, /platform sets PORT/],
    [{ properties: { 'a.b': '1', a_b: '2' } }, /already becomes/],
    [{ properties: { '1X': '1' } }, /digit/],
    [{ properties: { N: 1 } }, /string/],
    [{ properties: { N: 'x'.repeat(64 * 1024 + 1) } }, /at most/],
    [{ settings: {} }, /properties/],
    ['{"properties":', /properties/],
  ];
  for (const [body, msg] of bad) {
    const x = await api(srv, 'PUT', `${base}/appsettings`, { body });
    assert.equal(x.status, 400, `${JSON.stringify(body).slice(0, 80)} -> ${x.status} ${x.text}`);
    assert.equal(x.json.error.code, 'InvalidParameter');
    assert.match(x.json.error.message, msg);
  }
  // An app setting and a connection string may not become the same variable.
  await apiOk(srv, 'PUT', `${base}/appsettings`, { body: { properties: { ONLY: '1', CUSTOMCONNSTR_db: 'x' } } }, 200);
  const clash = await api(srv, 'PUT', `${base}/connectionstrings`, { body: { properties: { db: { value: 'y', type: 'Custom' } } } });
  assert.equal(clash.status, 400, clash.text);
  assert.match(clash.json.error.message, /CUSTOMCONNSTR_db/);
  await apiOk(srv, 'PUT', `${base}/appsettings`, { body: { properties: { ONLY: '1' } } }, 200);
  const c = await api(srv, 'PUT', `${base}/connectionstrings`, { body: { properties: { db: { value: 'x', type: 'Oracle' } } } });
  assert.equal(c.status, 400);
  assert.match(c.json.error.message, /type must be one of/);
  // Nothing of the refused bodies was stored.
  assert.deepEqual((await apiOk(srv, 'POST', `${base}/appsettings/list`, {}, 200)).properties, { ONLY: '1' });
  assert.equal((await api(srv, 'GET', `${base}/appsettings/list`)).status, 405);
  assert.equal((await api(srv, 'PUT', '/api/apps/no-such-app/config/appsettings', { body: { properties: {} } })).status, 404);
  assert.equal((await api(srv, 'POST', '/api/apps/no-such-app/config/appsettings/list')).status, 404);
  assert.equal((await api(srv, 'PUT', `${base}/appsettings`, { token: null, body: { properties: {} } })).status, 401);
});

test('settings are readable only with config/list: a Reader sees the app but not the values', async () => {
  const name = appName('rbac');
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: {} }, 201);
  apps.push(name);
  await apiOk(srv, 'PUT', `/api/apps/${name}/config/appsettings`, { body: { properties: { S: 'v' } } }, 200);
  const sp = await createSp(srv);
  await assignRole(srv, sp.id, 'Reader', `/apps/${name}`);
  const token = await clientToken(srv, sp.appId, sp.secret, 'management');
  assert.equal((await api(srv, 'GET', `/api/apps/${name}`, { token })).status, 200);
  const r = await api(srv, 'POST', `/api/apps/${name}/config/appsettings/list`, { token });
  assert.equal(r.status, 403);
  assert.equal(r.json.error.code, 'AuthorizationFailed');
  assert.equal((await api(srv, 'PUT', `/api/apps/${name}/config/appsettings`, { token, body: { properties: {} } })).status, 403);
  assert.equal((await api(srv, 'POST', `/api/apps/${name}/config/configreferences/appsettings/refresh`, { token })).status, 403);
  assert.equal((await api(srv, 'GET', `/api/apps/${name}/config/configreferences/appsettings`, { token })).status, 200);
  // Website Contributor may.
  await assignRole(srv, sp.id, 'Website Contributor', `/apps/${name}`);
  assert.equal((await api(srv, 'POST', `/api/apps/${name}/config/appsettings/list`, { token })).status, 200);
});

test('an app process: settings and connection strings in its environment, its identity reads a secret with the Azure SDKs', async () => {
  const secret = `s3cret-${uniq('v')}`;
  await setSecret('db-password', secret);
  const name = await createApp('sdk');
  const id = await identityOf(name);
  assert.equal(id.type, 'SystemAssigned');
  assert.match(id.principalId, /^[0-9a-f-]{36}$/);
  assert.equal(id.tenantId, srv.tenant);
  await apiOk(srv, 'PUT', `/api/apps/${name}/config/appsettings`, {
    body: { properties: { GREETING: 'hi there', 'Nested:Key': 'n', NODE_EXTRA_CA_CERTS: '/home/site/wwwroot/ca.crt' } },
  }, 200);
  await apiOk(srv, 'PUT', `/api/apps/${name}/config/connectionstrings`, { body: { properties: { main: { value: 'Server=x', type: 'Custom' } } } }, 200);
  // A settings change restarts the app with them.
  const e = await waitFor('the settings in the environment', async () => {
    const v = await appEnv(name);
    return v && v.GREETING === 'hi there' && v.CUSTOMCONNSTR_main ? v : null;
  });
  assert.equal(e.Nested__Key, 'n');
  assert.match(e.IDENTITY_ENDPOINT, /^http:\/\/127\.0\.0\.1:\d+\/msi\/token$/);
  assert.match(e.IDENTITY_HEADER, /^[A-Za-z0-9_-]{43}$/);
  // No role yet: the SDK's read is refused by the vault.
  const vurl = `https://${vault}.vault.${DOMAIN}:${srv.port}`;
  let r = await get(name, `/secret?vault=${encodeURIComponent(vurl)}&name=db-password`);
  assert.equal(r.status, 500, r.text);
  assert.equal(JSON.parse(r.text).status, 403, r.text);
  await assignRole(srv, id.principalId, 'Key Vault Secrets User', `/vaults/${vault}/secrets/db-password`);
  r = await get(name, `/secret?vault=${encodeURIComponent(vurl)}&name=db-password`);
  assert.equal(r.status, 200, r.text);
  assert.equal(JSON.parse(r.text).value, secret);
  // Least privilege: another secret of the same vault stays out of reach.
  await setSecret('other', 'nope');
  r = await get(name, `/secret?vault=${encodeURIComponent(vurl)}&name=other`);
  assert.equal(JSON.parse(r.text).status, 403, r.text);
});

test('Key Vault references: literal and status until allowed, then resolved, refreshed, and per app', async () => {
  const v1 = `ref-${uniq('a')}`;
  await setSecret('api-key', v1);
  const name = await createApp('ref');
  const id = await identityOf(name);
  const ref = `@Microsoft.KeyVault(VaultName=${vault};SecretName=api-key)`;
  const uriRef = `@Microsoft.KeyVault(SecretUri=https://${vault}.vault.${DOMAIN}:${srv.port}/secrets/api-key/)`;
  await apiOk(srv, 'PUT', `/api/apps/${name}/config/appsettings`, {
    body: { properties: { API_KEY: ref, API_KEY_URI: uriRef, BROKEN: '@Microsoft.KeyVault(VaultName=x)', MISSING: `@Microsoft.KeyVault(VaultName=${vault};SecretName=nope)` } },
  }, 200);
  const statuses = async () => Object.fromEntries((await apiOk(srv, 'GET', `/api/apps/${name}/config/configreferences/appsettings`, {}, 200)).value.map((x) => [x.name, x.properties]));
  let st = await waitFor('reference statuses', async () => { const s = await statuses(); return s.API_KEY ? s : null; });
  assert.equal(st.API_KEY.status, 'AccessToKeyVaultDenied');
  assert.equal(st.API_KEY.identityType, 'SystemAssigned');
  assert.equal(st.API_KEY.vaultName, vault);
  assert.equal(st.API_KEY.secretName, 'api-key');
  assert.equal(st.BROKEN.status, 'InvalidSyntax');
  // The app sees the literal, never an empty value.
  let e = await waitFor('the literal in the environment', async () => { const v = await appEnv(name); return v && v.API_KEY ? v : null; });
  assert.equal(e.API_KEY, ref);
  assert.equal(e.BROKEN, '@Microsoft.KeyVault(VaultName=x)');

  await assignRole(srv, id.principalId, 'Key Vault Secrets User', `/vaults/${vault}`);
  assert.equal((await api(srv, 'POST', `/api/apps/${name}/config/configreferences/appsettings/refresh`)).status, 202);
  e = await waitFor('the resolved value', async () => { const v = await appEnv(name); return v && v.API_KEY === v1 ? v : null; });
  assert.equal(e.API_KEY_URI, v1);
  assert.equal(e.MISSING, `@Microsoft.KeyVault(VaultName=${vault};SecretName=nope)`);
  st = await statuses();
  assert.equal(st.API_KEY.status, 'Resolved');
  // The CLI shows each reference's state and reason.
  const cl = await cliAsync(['app', 'settings', 'list', name], { env });
  assert.equal(cl.status, 0, cl.stderr);
  assert.match(cl.stdout, /API_KEY .*Resolved/);
  assert.match(cl.stdout, /MISSING .*SecretNotFound/);
  assert.doesNotMatch(cl.stdout, new RegExp(v1)); // the literal reference is shown, not the secret
  assert.match(st.API_KEY.activeVersion, /^[0-9a-f]{32}$/);
  assert.equal(st.MISSING.status, 'SecretNotFound');
  // The resolution read is audited as the app's identity.
  const audit = await auditAll(srv);
  assert.ok(audit.some((x) => x.principal === id.principalId && x.kind === 'read' && x.detail && x.detail.via === 'keyVaultReference'));

  // A refresh that changes nothing restarts nothing (and the identity header stays valid).
  const pid = (await get(name, '/pid')).text;
  assert.equal((await api(srv, 'POST', `/api/apps/${name}/config/configreferences/appsettings/refresh`)).status, 202);
  await sleep(1500 * SCALE);
  assert.equal((await get(name, '/pid')).text, pid);
  assert.equal((await appEnv(name)).IDENTITY_HEADER, e.IDENTITY_HEADER);
  // A new version: versionless references follow it on refresh.
  const v2 = `ref-${uniq('b')}`;
  const ver2 = await setSecret('api-key', v2);
  await api(srv, 'POST', `/api/apps/${name}/config/configreferences/appsettings/refresh`);
  await waitFor('the new version', async () => { const v = await appEnv(name); return v && v.API_KEY === v2; });
  assert.equal((await statuses()).API_KEY.activeVersion, ver2);

  // Another app with the same reference and no role gets the literal.
  const other = await createApp('noref');
  await apiOk(srv, 'PUT', `/api/apps/${other}/config/appsettings`, { body: { properties: { API_KEY: ref } } }, 200);
  const oe = await waitFor('the other app', async () => { const v = await appEnv(other); return v && v.API_KEY ? v : null; });
  assert.equal(oe.API_KEY, ref);

  // Deleting the app ends its identity: its header no longer gets tokens.
  const header = e.IDENTITY_HEADER;
  const endpoint = e.IDENTITY_ENDPOINT;
  await apiOk(srv, 'DELETE', `/api/apps/${name}`, {}, 204);
  await waitFor('the session to end', async () => {
    const r = await fetch(`${endpoint}?api-version=2019-08-01&resource=${encodeURIComponent(`https://vault.${DOMAIN}`)}`, { headers: { 'x-identity-header': header } });
    return r.status === 400;
  });
  const ids = (await apiOk(srv, 'GET', `/api/roleAssignments?principal=${id.principalId}`, {}, 200)).value;
  assert.equal(ids.length, 0);
});

test('a role on one secret reads no other through a reference, however alike the names', async () => {
  const long = 'p'.repeat(125);
  const v = vaultName('kvlong').padEnd(24, 'x').slice(0, 24);
  await createVault(srv, v);
  const w = await kvPrincipal(srv, v, 'Key Vault Secrets Officer');
  for (const n of [long, `${long}zz`]) {
    const r = await kv(srv, v, 'PUT', `/secrets/${n}`, { token: w.token, body: { value: `value-of-${n.length}` } });
    assert.equal(r.status, 200, r.text);
  }
  const name = await createApp('prefix');
  const id = await identityOf(name);
  await assignRole(srv, id.principalId, 'Key Vault Secrets User', `/vaults/${v}/secrets/${long}`);
  await apiOk(srv, 'PUT', `/api/apps/${name}/config/appsettings`, {
    body: { properties: { MINE: `@Microsoft.KeyVault(VaultName=${v};SecretName=${long})`, OTHER: `@Microsoft.KeyVault(VaultName=${v};SecretName=${long}zz)` } },
  }, 200);
  const e = await waitFor('the references', async () => { const x = await appEnv(name); return x && x.MINE === 'value-of-125' ? x : null; });
  assert.equal(e.OTHER, `@Microsoft.KeyVault(VaultName=${v};SecretName=${long}zz)`);
});

test('an app created again under a deleted one\'s name gets a new identity, without the old roles', async () => {
  const name = appName('again');
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: {} }, 201);
  const first = await identityOf(name);
  await assignRole(srv, first.principalId, 'Reader', '/');
  await apiOk(srv, 'DELETE', `/api/apps/${name}`, {}, 204);
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: {} }, 201);
  apps.push(name);
  const second = await identityOf(name);
  assert.notEqual(second.principalId, first.principalId);
  const held = (await apiOk(srv, 'GET', `/api/roleAssignments?principal=${second.principalId}`, {}, 200)).value;
  assert.equal(held.length, 0);
});

test('no setting value is on disk in plaintext', async () => {
  const name = appName('canary');
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: {} }, 201);
  apps.push(name);
  const canary = `CANARY-${uniq('c')}-${'z'.repeat(20)}`;
  await apiOk(srv, 'PUT', `/api/apps/${name}/config/appsettings`, { body: { PLAIN: canary } }, 400);
  await apiOk(srv, 'PUT', `/api/apps/${name}/config/appsettings`, { body: { properties: { PLAIN: canary } } }, 200);
  await apiOk(srv, 'PUT', `/api/apps/${name}/config/connectionstrings`, { body: { properties: { c: { value: `${canary}-conn`, type: 'Custom' } } } }, 200);
  assert.ok(assertNotOnDisk(srv.dataDir, [Buffer.from(canary)], 'a setting') > 5, 'the walk saw the data directory');
});
