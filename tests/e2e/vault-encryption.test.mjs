// vault-encryption.test.mjs - the key hierarchy end to end (docs/encryption.md): a vault whose
// KEK is wrapped by a customer-managed key in another vault - disabling, deleting or expiring
// that key makes the data unreadable with a clear error and restoring it brings the data back;
// rotating the key re-wraps; the root key rotates online while requests are served and across
// a restart; the rules that keep customer keys safe (purge protection, no chains).
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, DOMAIN } from './lib/harness.mjs';
import { api, apiOk, uniq, createSp, assignRole, clientToken } from './lib/iam.mjs';
import { createVault, kvPrincipal, kv, vaultName } from './lib/vault.mjs';

let srv;
test.after(async () => { if (srv) await srv.stop(); });

test('customer-managed key: revoke makes the vault unreadable, restore brings it back', async () => {
  srv = await startServer();
  const keyVault = await createVault(srv, vaultName('cmkkeys'), { purgeProtection: true });
  const kOfficer = await kvPrincipal(srv, keyVault, 'Key Vault Crypto Officer');
  const keyName = `cmk-${uniq('k')}`;
  assert.equal((await kv(srv, keyVault, 'POST', `/keys/${keyName}/create`, { token: kOfficer.token, body: { kty: 'RSA', key_size: 3072 } })).status, 200);

  // The rules: the key's vault must have purge protection; a vault cannot use its own key.
  const loose = await createVault(srv, vaultName('loose'));
  const lo = await kvPrincipal(srv, loose, 'Key Vault Crypto Officer');
  await kv(srv, loose, 'POST', '/keys/k/create', { token: lo.token, body: { kty: 'RSA' } });
  let r = await api(srv, 'PUT', `/api/vaults/${vaultName('x')}`, { body: { customerManagedKey: `${loose}/keys/k` } });
  assert.equal(r.status, 400, r.text);
  assert.match(r.json.error.message, /purge protection/);
  r = await api(srv, 'PUT', `/api/vaults/${keyVault}`, { body: { purgeProtection: true, customerManagedKey: `${keyVault}/keys/${keyName}` } });
  assert.equal(r.status, 400);
  for (const bad of ['nonsense', `${keyVault}/secrets/${keyName}`, `https://evil.example/keys/${keyName}`, 42])
    assert.equal((await api(srv, 'PUT', `/api/vaults/${vaultName('bad')}`, { body: { customerManagedKey: bad } })).status, 400, String(bad));

  // The operator who protects a vault with a key must be allowed to use that key (Owner has no
  // data actions, as in Azure): an Owner who also holds Crypto Service Encryption User on it.
  const op = await createSp(srv);
  await assignRole(srv, op.id, 'Owner', '/');
  await assignRole(srv, op.id, 'Key Vault Crypto Service Encryption User', `/vaults/${keyVault}/keys/${keyName}`);
  const opToken = await clientToken(srv, op.appId, op.secret, 'management');
  // The administrator alone may not: 403.
  const data = vaultName('cmkdata');
  // Spelled in another case (names are case-insensitive): revocation must still match it.
  const kidUrl = `https://${keyVault.toUpperCase()}.vault.${DOMAIN}:${srv.port}/keys/${keyName.toUpperCase()}`;
  assert.equal((await api(srv, 'PUT', `/api/vaults/${data}`, { body: { customerManagedKey: kidUrl } })).status, 403);
  // A data vault under the key, given as the full key URL (port included) as Azure users do.
  const created = await apiOk(srv, 'PUT', `/api/vaults/${data}`, { token: opToken, body: { customerManagedKey: kidUrl } }, 201);
  assert.equal(created.properties.encryption.keySource, 'Microsoft.Keyvault');
  assert.equal(created.properties.encryption.keyId, `${keyVault}/keys/${keyName}`.toLowerCase());
  const status = await apiOk(srv, 'GET', '/api/keys', {}, 200);
  assert.ok(status.cmkKeks >= 1);
  const officer = await kvPrincipal(srv, data, 'Key Vault Secrets Officer');
  assert.equal((await kv(srv, data, 'PUT', '/secrets/s1', { token: officer.token, body: { value: 'protected' } })).status, 200);
  const get = () => kv(srv, data, 'GET', '/secrets/s1/', { token: officer.token });
  assert.equal((await get()).json.value, 'protected');
  // A key inside the protected vault, used once so that its private key is cached.
  const crypto = await import('node:crypto');
  const dOfficer = await kvPrincipal(srv, data, 'Key Vault Crypto Officer');
  await kv(srv, data, 'POST', '/keys/inner/create', { token: dOfficer.token, body: { kty: 'RSA' } });
  const digest = crypto.createHash('sha256').update('x').digest().toString('base64url');
  const sign = () => kv(srv, data, 'POST', '/keys/inner//sign', { token: dOfficer.token, body: { alg: 'RS256', value: digest } });
  assert.equal((await sign()).status, 200);

  // Disable the key: every read and write of the data vault fails at once, with the reason.
  assert.equal((await kv(srv, keyVault, 'PATCH', `/keys/${keyName}/`, { token: kOfficer.token, body: { attributes: { enabled: false } } })).status, 200);
  r = await get();
  assert.equal(r.status, 403, r.text);
  assert.equal(r.json.error.innererror.code, 'KeyVaultEncryptionKeyUnavailable');
  assert.match(r.json.error.message, /disabled/);
  r = await kv(srv, data, 'PUT', '/secrets/s2', { token: officer.token, body: { value: 'x' } });
  assert.equal(r.status, 403);
  // Key operations stop too, though the private key was parsed and cached before.
  r = await sign();
  assert.equal(r.status, 403, r.text);
  assert.equal(r.json.error.innererror.code, 'KeyVaultEncryptionKeyUnavailable');
  // Listing metadata still works (as with Azure Storage CMK revocation).
  assert.equal((await kv(srv, data, 'GET', '/secrets', { token: officer.token })).status, 200);
  // Re-enable: readable again, nothing lost.
  await kv(srv, keyVault, 'PATCH', `/keys/${keyName}/`, { token: kOfficer.token, body: { attributes: { enabled: true } } });
  assert.equal((await get()).json.value, 'protected');
  assert.equal((await sign()).status, 200);

  // Rotating the customer key re-wraps; the data stays readable, old and new.
  assert.equal((await kv(srv, keyVault, 'POST', `/keys/${keyName}/rotate`, { token: kOfficer.token })).status, 200);
  assert.equal((await get()).json.value, 'protected');
  assert.equal((await kv(srv, data, 'PUT', '/secrets/s3', { token: officer.token, body: { value: 'after-rotate' } })).status, 200);

  // Soft-delete the key: unreadable; recover: readable.
  assert.equal((await kv(srv, keyVault, 'DELETE', `/keys/${keyName}`, { token: kOfficer.token })).status, 200);
  r = await get();
  assert.equal(r.status, 403);
  assert.match(r.json.error.message, /deleted|does not exist/);
  assert.equal((await kv(srv, keyVault, 'POST', `/deletedkeys/${keyName}/recover`, { token: kOfficer.token })).status, 200);
  assert.equal((await get()).json.value, 'protected');
  // Purge protection: the key cannot be purged from under the data.
  await kv(srv, keyVault, 'DELETE', `/keys/${keyName}`, { token: kOfficer.token });
  assert.equal((await kv(srv, keyVault, 'DELETE', `/deletedkeys/${keyName}`, { token: kOfficer.token })).status, 403);
  await kv(srv, keyVault, 'POST', `/deletedkeys/${keyName}/recover`, { token: kOfficer.token });

  // No chains: the key's vault cannot itself be put under a customer key now.
  const third = await createVault(srv, vaultName('third'), { purgeProtection: true });
  const to = await kvPrincipal(srv, third, 'Key Vault Crypto Officer');
  await kv(srv, third, 'POST', '/keys/k3/create', { token: to.token, body: { kty: 'RSA' } });
  await assignRole(srv, op.id, 'Key Vault Crypto Service Encryption User', `/vaults/${third}`);
  const opToken2 = await clientToken(srv, op.appId, op.secret, 'management');
  r = await api(srv, 'PUT', `/api/vaults/${keyVault}`, { token: opToken2, body: { purgeProtection: true, customerManagedKey: `${third}/keys/k3` } });
  assert.equal(r.status, 409, r.text);

  // Back to the root key: the customer key no longer matters.
  await apiOk(srv, 'PUT', `/api/vaults/${data}`, { token: opToken2, body: { customerManagedKey: null } }, 200);
  await kv(srv, keyVault, 'PATCH', `/keys/${keyName}/`, { token: kOfficer.token, body: { attributes: { enabled: false } } });
  assert.equal((await get()).json.value, 'protected');
  assert.equal((await kv(srv, data, 'GET', '/secrets/s3/', { token: officer.token })).json.value, 'after-rotate');

  // A caller who may not unwrap with a key cannot put a vault under it.
  const stranger = await kvPrincipal(srv, third, 'Key Vault Secrets Officer');
  await assignRole(srv, stranger.id, 'Contributor', '/');
  const mt = await clientToken(srv, stranger.appId, stranger.secret, 'management');
  r = await api(srv, 'PUT', `/api/vaults/${vaultName('strg')}`, { token: mt, body: { customerManagedKey: `${third}/keys/k3` } });
  assert.equal(r.status, 403, r.text);
});

test('root key rotation: online, every KEK re-wrapped, data untouched, survives a restart', async () => {
  if (srv) { await srv.stop(); srv = null; }
  srv = await startServer();
  const v = await createVault(srv, vaultName('rot'));
  const officer = await kvPrincipal(srv, v, 'Key Vault Secrets Officer');
  for (let i = 0; i < 10; i++)
    assert.equal((await kv(srv, v, 'PUT', `/secrets/r${i}`, { token: officer.token, body: { value: `value-${i}` } })).status, 200);
  const before = await apiOk(srv, 'GET', '/api/keys', {}, 200);
  assert.equal(before.provider, 'file');
  const keysDir = join(srv.dataDir, 'keys');
  const filesBefore = readdirSync(keysDir).filter((f) => /^root/.test(f));

  // Reads keep flowing while the root rotates.
  let stop = false;
  let reads = 0;
  const failures = [];
  const reader = (async () => {
    while (!stop) {
      const i = reads % 10;
      const r = await kv(srv, v, 'GET', `/secrets/r${i}/`, { token: officer.token });
      if (r.status !== 200 || r.json.value !== `value-${i}`) failures.push(r.status);
      reads++;
    }
  })();
  const rot = await apiOk(srv, 'POST', '/api/keys/rotate-root', {}, 200);
  const rot2 = await apiOk(srv, 'POST', '/api/keys/rotate-root', {}, 200);
  stop = true;
  await reader;
  assert.deepEqual(failures, []);
  assert.ok(reads > 0);
  assert.equal(rot.generation, before.generation + 1);
  assert.equal(rot2.generation, before.generation + 2);
  assert.ok(rot2.keys >= 1 || rot2.keks >= 1, JSON.stringify(rot2)); // the vault's KEK (and the system key)
  const filesAfter = readdirSync(keysDir).filter((f) => /^root/.test(f));
  assert.deepEqual(filesAfter, [`root-${rot2.generation}.key`], `${filesBefore} -> ${filesAfter}`);
  assert.ok(!existsSync(join(keysDir, 'root-1.key')));
  // Anonymous and unauthorized callers cannot rotate.
  assert.equal((await api(srv, 'POST', '/api/keys/rotate-root', { token: null })).status, 401);
  const mt = await clientToken(srv, officer.appId, officer.secret, 'management');
  assert.equal((await api(srv, 'POST', '/api/keys/rotate-root', { token: mt })).status, 403);

  // A restart opens the new generation; everything reads back; writes work.
  const dataDir = srv.dataDir;
  await srv.stop({ keepData: true });
  srv = await startServer({ dataDir, init: false });
  // The principal and its secret survive (the new listener port changes the issuer, so a new
  // token is needed); the token service's signing key, sealed under the system key, still opens.
  srv.token = before.adminToken;
  const tok = await clientToken(srv, officer.appId, officer.secret, 'vault');
  for (let i = 0; i < 10; i++) {
    const r = await kv(srv, v, 'GET', `/secrets/r${i}/`, { token: tok });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.value, `value-${i}`);
  }
  assert.equal((await kv(srv, v, 'PUT', '/secrets/after-restart', { token: tok, body: { value: 'w' } })).status, 200);
  await srv.stop();
  srv = null;
  rmSync(dataDir, { recursive: true, force: true });
});
