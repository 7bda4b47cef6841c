// vault-secrets.test.mjs - Key Vault secrets end to end (docs/vault.md): the unmodified
// @azure/keyvault-secrets SDK with tokens from ClientSecretCredential, every call of the spec's
// table including the delete and recover pollers and paging past one page; the 401 challenge
// exactly as the SDK parses it; RBAC with the Key Vault roles; bad input answered in Key
// Vault's error format with nothing stored; and a canary scan of the data directory.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, DOMAIN } from './lib/harness.mjs';
import { apiOk, api, createSp, uniq, auditRecords, clientToken } from './lib/iam.mjs';
import {
  createVault, kvPrincipal, kv, runKv, vaultName, kvErrorCode, API_VERSION,
} from './lib/vault.mjs';

let srv;
let vault;
let officer;
const CANARY = `canary-${Date.now().toString(36)}-S3cr3t-${Math.random().toString(36).slice(2)}`;

test.before(async () => {
  srv = await startServer();
  vault = await createVault(srv, vaultName('sec'));
  officer = await kvPrincipal(srv, vault, 'Key Vault Secrets Officer');
});
test.after(async () => { if (srv) await srv.stop(); });

test('management: a vault is a resource with Azure-shaped properties; bad names and settings are refused', async () => {
  const v = await apiOk(srv, 'GET', `/api/vaults/${vault}`, {}, 200);
  assert.equal(v.name, vault);
  assert.equal(v.id, `/vaults/${vault}`);
  assert.equal(v.properties.vaultUri, `https://${vault}.vault.${DOMAIN}:${srv.port}/`);
  assert.equal(v.properties.enableSoftDelete, true);
  assert.equal(v.properties.enableRbacAuthorization, true);
  assert.equal(v.properties.enablePurgeProtection, false);
  assert.equal(v.properties.softDeleteRetentionInDays, 90);
  const list = await apiOk(srv, 'GET', '/api/vaults', {}, 200);
  assert.ok(list.value.some((x) => x.name === vault));
  for (const bad of ['ab', 'Upper', '1abc', 'a--b', 'abc-', 'a'.repeat(25), 'a_b'])
    assert.equal((await api(srv, 'PUT', `/api/vaults/${bad}`, { body: {} })).status, 400, bad);
  for (const body of [{ retentionDays: 6 }, { retentionDays: 91 }, { retentionDays: '30' }, { purgeProtection: 'yes' }])
    assert.equal((await api(srv, 'PUT', `/api/vaults/${vaultName('bad')}`, { body })).status, 400, JSON.stringify(body));
  // Retention is fixed at creation; purge protection can be enabled but never disabled.
  const pp = await createVault(srv, vaultName('pp'), { retentionDays: 7 });
  assert.equal((await api(srv, 'PUT', `/api/vaults/${pp}`, { body: { retentionDays: 30 } })).status, 409);
  assert.equal((await api(srv, 'PUT', `/api/vaults/${pp}`, { body: { retentionDays: 7, purgeProtection: true } })).status, 200);
  assert.equal((await api(srv, 'PUT', `/api/vaults/${pp}`, { body: { retentionDays: 7, purgeProtection: false } })).status, 409);
  // Deleting a vault destroys it and its objects; purge protection holding data refuses it.
  const gone = await createVault(srv, vaultName('gone'));
  const go = await kvPrincipal(srv, gone, 'Key Vault Secrets Officer');
  assert.equal((await kv(srv, gone, 'PUT', '/secrets/s', { token: go.token, body: { value: 'v' } })).status, 200);
  assert.equal((await api(srv, 'DELETE', `/api/vaults/${gone}`)).status, 204);
  assert.equal((await api(srv, 'GET', `/api/vaults/${gone}`)).status, 404);
  assert.equal((await api(srv, 'DELETE', `/api/vaults/${gone}`)).status, 404);
  assert.equal(kvErrorCode(await kv(srv, gone, 'GET', '/secrets/s/', { token: go.token })), 'VaultNotFound');
  const kept = await createVault(srv, vaultName('kept'), { purgeProtection: true });
  const ko = await kvPrincipal(srv, kept, 'Key Vault Secrets Officer');
  await kv(srv, kept, 'PUT', '/secrets/s', { token: ko.token, body: { value: 'v' } });
  assert.equal((await api(srv, 'DELETE', `/api/vaults/${kept}`)).status, 409);
  assert.equal((await kv(srv, kept, 'GET', '/secrets/s/', { token: ko.token })).json.value, 'v');
  // Anonymous callers learn nothing; a principal without a role cannot create.
  assert.equal((await api(srv, 'GET', '/api/vaults', { token: null })).status, 401);
  const nobody = await createSp(srv);
  const mt = await clientToken(srv, nobody.appId, nobody.secret, 'management');
  assert.equal((await api(srv, 'PUT', `/api/vaults/${vaultName('no')}`, { token: mt, body: {} })).status, 403);
});

test('challenge: a request without a token gets the 401 the SDK parses, before the body is read', async () => {
  const r = await kv(srv, vault, 'PUT', '/secrets/x', { body: '' });
  assert.equal(r.status, 401);
  assert.equal(kvErrorCode(r), 'Unauthorized');
  const h = r.headers['www-authenticate'];
  assert.equal(h, `Bearer authorization="https://login.${DOMAIN}:${srv.port}/${srv.tenant}", resource="https://vault.${DOMAIN}"`);
  // A token for another audience is refused with the challenge again.
  const mgmt = await clientToken(srv, officer.appId, officer.secret, 'management');
  const r2 = await kv(srv, vault, 'GET', '/secrets', { token: mgmt });
  assert.equal(r2.status, 401);
  assert.match(r2.headers['www-authenticate'], /error="invalid_token"/);
  // An unknown vault is a 404 in Key Vault's format (after authentication).
  const r3 = await kv(srv, 'no-such-vault', 'GET', '/secrets', { token: officer.token });
  assert.equal(r3.status, 404);
  assert.equal(kvErrorCode(r3), 'VaultNotFound');
});

test('SDK: every secrets call, pollers, backup/restore, with the exact bundles', async () => {
  const name = `tour-${uniq('s')}`;
  const out = await runKv(srv, vault, officer, 'secretsTour', { name });
  assert.ok(out.ok, JSON.stringify(out.error) + out.stderr);
  const r = out.result;
  assert.equal(r.set1.value, 'hunter2');
  assert.equal(r.set1.contentType, 'text/plain');
  assert.deepEqual(r.set1.tags, { env: 'e2e' });
  assert.match(r.set1.version, /^[0-9a-f]{32}$/);
  assert.equal(r.set1.vaultUrl, `https://${vault}.vault.${DOMAIN}:${srv.port}`);
  assert.equal(r.set1.recoveryLevel, 'Recoverable+Purgeable');
  assert.equal(r.set1.recoverableDays, 90);
  assert.notEqual(r.set2.version, r.set1.version);
  assert.equal(r.latest.value, 'hunter3');
  assert.equal(r.latest.version, r.set2.version);
  assert.equal(r.old.value, 'hunter2');
  assert.equal(r.updated.enabled, false);
  assert.equal(r.updated.contentType, 'application/x-old');
  assert.deepEqual(r.updated.tags, { env: 'retired' });
  assert.equal(r.getDisabled.ok, false);
  assert.equal(r.getDisabled.error.statusCode, 403);
  assert.equal(r.getDisabled.error.code, 'Forbidden');
  assert.equal(r.versions.length, 2);
  assert.ok(r.list.some((p) => p.name === name && p.version === undefined));
  assert.ok(r.backupLength > 32);
  assert.equal(r.deleted.name, name);
  assert.equal(r.deleted.recoveryId, `https://${vault}.vault.${DOMAIN}:${srv.port}/deletedsecrets/${name}`);
  assert.ok(r.deleted.scheduledPurgeDate - r.deleted.deletedOn === 90 * 86400 * 1000);
  assert.equal(r.getAfterDelete.error.statusCode, 404);
  assert.equal(r.getAfterDelete.error.code, 'SecretNotFound');
  assert.equal(r.setWhileDeleted.error.statusCode, 409);
  assert.equal(r.setWhileDeleted.error.code, 'Conflict');
  assert.equal(r.getDeleted.name, name);
  assert.ok(r.listDeleted.includes(name));
  assert.equal(r.recovered.name, name);
  assert.equal(r.afterRecover, 'hunter3');
  assert.equal(r.getDeletedAfterPurge.error.statusCode, 404);
  assert.equal(r.restored.name, name);
  assert.equal(r.afterRestore, 'hunter3');
  assert.equal(r.restoreAgain.error.statusCode, 409);
  // The SDK went through the challenge once, then carried its token.
  const unauth = out.requests.filter((x) => x.startsWith('PUT ')).length;
  assert.ok(unauth >= 2);
});

test('SDK: paging past one page, for secrets and for versions', async () => {
  const prefix = uniq('page');
  const out = await runKv(srv, vault, officer, 'secretsPaging', { prefix, n: 12, size: 5 });
  assert.ok(out.ok, JSON.stringify(out.error));
  const names = out.result.pages.flat();
  // 12 numbered secrets plus the versions one, each exactly once, over more than one page.
  assert.equal(names.length, 13);
  assert.equal(new Set(names).size, 13);
  assert.ok(out.result.pages.length >= 3, JSON.stringify(out.result.pages));
  assert.deepEqual(out.result.versions, [5, 5, 2]);
  assert.ok(out.requests.some((x) => x.includes('$skiptoken')), 'nextLink was followed');
});

test('RBAC: Secrets User reads but cannot set; Reader sees metadata, no values; no role is 403', async () => {
  const name = `rbac-${uniq('s')}`;
  assert.equal((await kv(srv, vault, 'PUT', `/secrets/${name}`, { token: officer.token, body: { value: 'v1' } })).status, 200);
  const user = await kvPrincipal(srv, vault, 'Key Vault Secrets User');
  const reader = await kvPrincipal(srv, vault, 'Key Vault Reader');
  const none = await kvPrincipal(srv, vault, null);
  const g = await kv(srv, vault, 'GET', `/secrets/${name}/`, { token: user.token });
  assert.equal(g.status, 200);
  assert.equal(g.json.value, 'v1');
  const s = await kv(srv, vault, 'PUT', `/secrets/${name}`, { token: user.token, body: { value: 'x' } });
  assert.equal(s.status, 403);
  assert.equal(kvErrorCode(s), 'Forbidden');
  assert.equal(s.json.error.innererror.code, 'ForbiddenByRbac');
  const l = await kv(srv, vault, 'GET', '/secrets', { token: reader.token });
  assert.equal(l.status, 200);
  assert.ok(l.json.value.some((x) => x.id.endsWith(`/secrets/${name}`)));
  assert.ok(l.json.value.every((x) => x.value === undefined));
  assert.equal((await kv(srv, vault, 'GET', `/secrets/${name}/`, { token: reader.token })).status, 403);
  for (const [m, p, body] of [['GET', `/secrets/${name}/`], ['GET', '/secrets'], ['PUT', `/secrets/${name}`, { value: 'x' }], ['DELETE', `/secrets/${name}`]]) {
    const r = await kv(srv, vault, m, p, { token: none.token, body });
    assert.equal(r.status, 403, `${m} ${p}`);
  }
  // A role on one secret covers that secret only.
  const scoped = await kvPrincipal(srv, vault, 'Key Vault Secrets User', `/vaults/${vault}/secrets/${name}`);
  assert.equal((await kv(srv, vault, 'GET', `/secrets/${name}/`, { token: scoped.token })).status, 200);
  const other = `other-${uniq('s')}`;
  await kv(srv, vault, 'PUT', `/secrets/${other}`, { token: officer.token, body: { value: 'o' } });
  assert.equal((await kv(srv, vault, 'GET', `/secrets/${other}/`, { token: scoped.token })).status, 403);
  // Through the SDK the denial surfaces as the SDK's RestError.
  const out = await runKv(srv, vault, user, 'secretsCall', { method: 'setSecret', params: [name, 'nope'] });
  assert.ok(out.ok);
  assert.equal(out.result.ok, false);
  assert.equal(out.result.error.statusCode, 403);
  assert.equal(out.result.error.code, 'Forbidden');
});

test('bad input: names, sizes, JSON, types - a clear BadParameter and nothing stored', async () => {
  const name = `bad-${uniq('s')}`;
  const cases = [
    ['PUT', '/secrets/a_b', { value: 'x' }],
    ['PUT', `/secrets/${'a'.repeat(128)}`, { value: 'x' }],
    ['PUT', `/secrets/${name}`, { value: 'x'.repeat(25601) }],
    ['PUT', `/secrets/${name}`, '{"value":'],
    ['PUT', `/secrets/${name}`, '{"value":"a","value":"b"}'],
    ['PUT', `/secrets/${name}`, { value: 42 }],
    ['PUT', `/secrets/${name}`, { value: 'x', attributes: { enabled: 'yes' } }],
    ['PUT', `/secrets/${name}`, { value: 'x', tags: { a: 1 } }],
    ['PUT', `/secrets/${name}`, { value: 'x', attributes: { exp: 'tomorrow' } }],
    ['PUT', `/secrets/${name}`, []],
    ['PUT', `/secrets/${name}`, {}],
    ['PATCH', `/secrets/${name}/`, { attributes: { enabled: 1 } }],
    ['GET', '/secrets?maxresults=0'],
    ['GET', '/secrets?maxresults=26'],
  ];
  for (const [m, p, body] of cases) {
    const [path, q] = p.split('?');
    const r = await kv(srv, vault, m, path, { token: officer.token, body, query: q ? `api-version=${API_VERSION}&${q}` : undefined });
    assert.ok([400, 404].includes(r.status), `${m} ${p.slice(0, 60)} ${JSON.stringify(body)?.slice(0, 60)}: ${r.status} ${r.text}`);
    assert.equal(typeof r.json?.error?.code, 'string', `${m} ${p}: Key Vault error format`);
    assert.equal(typeof r.json.error.message, 'string');
  }
  const v = await kv(srv, vault, 'GET', `/secrets/${name}/versions`, { token: officer.token });
  assert.equal(v.status, 200);
  assert.deepEqual(v.json.value, []);
  // The largest allowed value is accepted and comes back whole.
  const big = 'y'.repeat(25600);
  assert.equal((await kv(srv, vault, 'PUT', `/secrets/${name}`, { token: officer.token, body: { value: big } })).status, 200);
  assert.equal((await kv(srv, vault, 'GET', `/secrets/${name}/`, { token: officer.token })).json.value, big);
});

test('attributes: enabled, nbf and exp are enforced; a version of another secret is not found', async () => {
  const now = Math.floor(Date.now() / 1000);
  const future = `nbf-${uniq('s')}`;
  const expired = `exp-${uniq('s')}`;
  const ok1 = await kv(srv, vault, 'PUT', `/secrets/${future}`, { token: officer.token, body: { value: 'f', attributes: { nbf: now + 3600 } } });
  assert.equal(ok1.status, 200);
  assert.equal(ok1.json.attributes.nbf, now + 3600);
  const g1 = await kv(srv, vault, 'GET', `/secrets/${future}/`, { token: officer.token });
  assert.equal(g1.status, 403);
  assert.equal(g1.json.error.innererror.code, 'SecretNotYetValid');
  await kv(srv, vault, 'PUT', `/secrets/${expired}`, { token: officer.token, body: { value: 'e', attributes: { exp: now - 10 } } });
  const g2 = await kv(srv, vault, 'GET', `/secrets/${expired}/`, { token: officer.token });
  assert.equal(g2.status, 403);
  assert.equal(g2.json.error.innererror.code, 'SecretExpired');
  // PATCH can lift the expiry (null unsets).
  const p = await kv(srv, vault, 'PATCH', `/secrets/${expired}/`, { token: officer.token, body: { attributes: { exp: null } } });
  assert.equal(p.status, 200, p.text);
  assert.equal((await kv(srv, vault, 'GET', `/secrets/${expired}/`, { token: officer.token })).json.value, 'e');
  const ver = ok1.json.id.split('/').pop();
  assert.equal((await kv(srv, vault, 'GET', `/secrets/${expired}/${ver}`, { token: officer.token })).status, 404);
});

test('audit: every read of a secret value is on record before the answer', async () => {
  const name = `aud-${uniq('s')}`;
  await kv(srv, vault, 'PUT', `/secrets/${name}`, { token: officer.token, body: { value: 'audited' } });
  const r = await kv(srv, vault, 'GET', `/secrets/${name}/`, { token: officer.token });
  assert.equal(r.status, 200);
  // The read was answered only after its record was durable: it is there at once.
  const recs = await auditRecords(srv);
  const read = recs.filter((x) => x.kind === 'read' && x.action === 'Microsoft.KeyVault/vaults/secrets/getSecret/action' && x.detail?.name === name);
  assert.equal(read.length, 1, JSON.stringify(recs.slice(-5)));
  assert.equal(read[0].principal, officer.id);
  assert.equal(read[0].result, 'success');
  const set = recs.filter((x) => x.kind === 'change' && x.action === 'Microsoft.KeyVault/vaults/secrets/setSecret/action' && x.detail?.name === name);
  assert.equal(set.length, 1);
  // No record holds the value.
  assert.ok(!JSON.stringify(recs).includes('audited"'));
});

test('canary: no secret value appears anywhere under the data directory', async () => {
  const names = [];
  for (let i = 0; i < 5; i++) {
    const name = `canary-${i}-${uniq('s')}`;
    names.push(name);
    const r = await kv(srv, vault, 'PUT', `/secrets/${name}`, { token: officer.token, body: { value: `${CANARY}-${i}` } });
    assert.equal(r.status, 200);
  }
  // An update and a delete/recover cycle must not leave copies either.
  await kv(srv, vault, 'PATCH', `/secrets/${names[0]}/`, { token: officer.token, body: { contentType: 'x' } });
  await kv(srv, vault, 'DELETE', `/secrets/${names[1]}`, { token: officer.token });
  await kv(srv, vault, 'POST', `/deletedsecrets/${names[1]}/recover`, { token: officer.token });
  const needle = Buffer.from(CANARY);
  const hits = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && statSync(p).size > 0 && readFileSync(p).includes(needle)) hits.push(p);
    }
  };
  walk(srv.dataDir);
  assert.deepEqual(hits, [], `the canary is stored in plaintext in ${hits.join(', ')}`);
  // And the values are still readable (the scan did not just miss them).
  assert.equal((await kv(srv, vault, 'GET', `/secrets/${names[2]}/`, { token: officer.token })).json.value, `${CANARY}-2`);
});
