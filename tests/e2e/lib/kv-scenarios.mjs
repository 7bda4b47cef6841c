// kv-scenarios.mjs - Key Vault scenarios run by lib/kv-probe.mjs inside a child node with the
// real SDKs. Each takes ctx = { secrets, keys, CryptographyClient, cred, args } and returns
// plain data (the test asserts on it) or throws (the probe reports the error with its code and
// status). Pollers use a short interval: the SDK's default is 2 s.
import crypto from 'node:crypto';

const POLL = { updateIntervalInMs: 50 };

function errInfo(e) {
  return { name: e.name, code: e.code, statusCode: e.statusCode, message: String(e.message) };
}

async function attempt(fn) {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    return { ok: false, error: errInfo(e) };
  }
}

function props(p) {
  return {
    name: p.name, version: p.version, enabled: p.enabled, contentType: p.contentType,
    tags: p.tags, id: p.id, vaultUrl: p.vaultUrl, recoveryLevel: p.recoveryLevel,
    recoverableDays: p.recoverableDays,
    notBefore: p.notBefore ? p.notBefore.getTime() : null,
    expiresOn: p.expiresOn ? p.expiresOn.getTime() : null,
    createdOn: p.createdOn ? p.createdOn.getTime() : null,
  };
}

// Every secrets call of the SDK, in the order a user would make them.
export async function secretsTour({ secrets, args }) {
  const name = args.name;
  const r = {};
  const s1 = await secrets.setSecret(name, 'hunter2', { contentType: 'text/plain', tags: { env: 'e2e' } });
  r.set1 = { value: s1.value, ...props(s1.properties) };
  const s2 = await secrets.setSecret(name, 'hunter3', { enabled: true });
  r.set2 = { value: s2.value, ...props(s2.properties) };
  const latest = await secrets.getSecret(name);
  r.latest = { value: latest.value, ...props(latest.properties) };
  const old = await secrets.getSecret(name, { version: s1.properties.version });
  r.old = { value: old.value, ...props(old.properties) };
  const upd = await secrets.updateSecretProperties(name, s1.properties.version, {
    enabled: false, contentType: 'application/x-old', tags: { env: 'retired' },
  });
  r.updated = props(upd);
  r.getDisabled = await attempt(() => secrets.getSecret(name, { version: s1.properties.version }));
  r.versions = [];
  for await (const p of secrets.listPropertiesOfSecretVersions(name)) r.versions.push(props(p));
  r.list = [];
  for await (const p of secrets.listPropertiesOfSecrets()) r.list.push(props(p));
  const backup = await secrets.backupSecret(name);
  r.backupLength = backup.length;
  const delPoller = await secrets.beginDeleteSecret(name, POLL);
  const deleted = await delPoller.pollUntilDone();
  r.deleted = {
    name: deleted.name, recoveryId: deleted.recoveryId,
    deletedOn: deleted.deletedOn ? deleted.deletedOn.getTime() : null,
    scheduledPurgeDate: deleted.scheduledPurgeDate ? deleted.scheduledPurgeDate.getTime() : null,
  };
  r.getAfterDelete = await attempt(() => secrets.getSecret(name));
  r.setWhileDeleted = await attempt(() => secrets.setSecret(name, 'nope'));
  const gd = await secrets.getDeletedSecret(name);
  r.getDeleted = { name: gd.name, recoveryId: gd.recoveryId };
  r.listDeleted = [];
  for await (const d of secrets.listDeletedSecrets()) r.listDeleted.push(d.name);
  const recPoller = await secrets.beginRecoverDeletedSecret(name, POLL);
  const rec = await recPoller.pollUntilDone();
  r.recovered = props(rec);
  const again = await secrets.getSecret(name);
  r.afterRecover = again.value;
  // Purge, then restore from the backup taken before.
  await (await secrets.beginDeleteSecret(name, POLL)).pollUntilDone();
  await secrets.purgeDeletedSecret(name);
  r.getDeletedAfterPurge = await attempt(() => secrets.getDeletedSecret(name));
  const restored = await secrets.restoreSecretBackup(backup);
  r.restored = props(restored);
  r.afterRestore = (await secrets.getSecret(name)).value;
  r.restoreAgain = await attempt(() => secrets.restoreSecretBackup(backup));
  return r;
}

// Paging: n secrets listed with pages of size, and n versions of one secret.
export async function secretsPaging({ secrets, args }) {
  const { prefix, n, size } = args;
  await Promise.all(Array.from({ length: n }, (_, i) => secrets.setSecret(`${prefix}-${i}`, `v${i}`)));
  for (let i = 0; i < n; i++) await secrets.setSecret(`${prefix}-versions`, `v${i}`);
  const pages = [];
  for await (const page of secrets.listPropertiesOfSecrets().byPage({ maxPageSize: size })) {
    pages.push(page.filter((p) => p.name.startsWith(prefix)).map((p) => p.name));
  }
  const versions = [];
  for await (const page of secrets.listPropertiesOfSecretVersions(`${prefix}-versions`).byPage({ maxPageSize: size }))
    versions.push(page.length);
  return { pages, versions };
}

// One call whose error the test inspects.
export async function secretsCall({ secrets, args }) {
  const r = await attempt(() => secrets[args.method](...args.params));
  if (r.ok && r.value && r.value.properties) r.value = { value: r.value.value, ...props(r.value.properties) };
  else if (r.ok && r.value && r.value.name) r.value = props(r.value);
  return r;
}

// Sets many secrets concurrently and reports which versions the server acknowledged.
export async function secretsBulk({ secrets, args }) {
  const { prefix, n, parallel } = args;
  const acked = [];
  let next = 0;
  async function worker() {
    while (next < n) {
      const i = next++;
      const value = `${args.valuePrefix || 'bulk'}-${i}-${crypto.randomBytes(8).toString('hex')}`;
      try {
        const s = await secrets.setSecret(`${prefix}-${i % (args.names || n)}`, value);
        acked.push({ name: s.name, version: s.properties.version, value });
        if (args.log) process.stderr.write(`ACK ${JSON.stringify({ name: s.name, version: s.properties.version, value })}\n`);
      } catch (e) {
        if (!args.tolerateErrors) throw e;
      }
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker));
  return { acked };
}

// Reads back given versions.
export async function secretsReadBack({ secrets, args }) {
  const out = [];
  for (const a of args.items) {
    const r = await attempt(() => secrets.getSecret(a.name, { version: a.version }));
    out.push({ name: a.name, version: a.version, ok: r.ok, value: r.ok ? r.value.value : null, error: r.ok ? null : r.error });
  }
  return out;
}

function keyProps(k) {
  return {
    name: k.name, id: k.id, kty: k.keyType, keyOps: k.keyOperations,
    version: k.properties.version, enabled: k.properties.enabled,
    exportable: k.properties.exportable, recoveryLevel: k.properties.recoveryLevel,
    tags: k.properties.tags, n: k.key?.n ? Buffer.from(k.key.n).length : undefined,
    crv: k.key?.crv,
  };
}

// Every keys call of the SDK, and CryptographyClient round trips (local wrap, remote unwrap).
export async function keysTour({ keys, cred, CryptographyClient, args }) {
  const { rsa, ec, imp } = args;
  const r = {};
  const k1 = await keys.createRsaKey(rsa, { keySize: 2048, tags: { t: '1' } });
  r.created = keyProps(k1);
  const e1 = await keys.createEcKey(ec, { curve: 'P-256' });
  r.ec = keyProps(e1);
  r.get = keyProps(await keys.getKey(rsa));
  r.getVersion = keyProps(await keys.getKey(rsa, { version: k1.properties.version }));
  const rot = await keys.rotateKey(rsa);
  r.rotated = keyProps(rot);
  r.versions = [];
  for await (const p of keys.listPropertiesOfKeyVersions(rsa)) r.versions.push(p.version);
  r.list = [];
  for await (const p of keys.listPropertiesOfKeys()) r.list.push(p.name);
  const upd = await keys.updateKeyProperties(rsa, k1.properties.version, { enabled: false, tags: { t: 'old' } });
  r.updated = keyProps(upd);

  // Crypto with the latest version through a client made without a version: "/keys/k//op".
  const cc = keys.getCryptographyClient(rsa);
  const secret = crypto.randomBytes(32);
  const w1 = await cc.wrapKey('RSA-OAEP', secret);
  r.unwrapOaep = Buffer.from((await cc.unwrapKey('RSA-OAEP', w1.result)).result).equals(secret);
  const w2 = await cc.wrapKey('RSA-OAEP-256', secret);
  r.unwrapOaep256 = Buffer.from((await cc.unwrapKey('RSA-OAEP-256', w2.result)).result).equals(secret);
  const enc = await cc.encrypt({ algorithm: 'RSA-OAEP-256', plaintext: Buffer.from('hello') });
  r.decrypt = Buffer.from((await cc.decrypt({ algorithm: 'RSA-OAEP-256', ciphertext: enc.result })).result).toString();
  const enc15 = await cc.encrypt({ algorithm: 'RSA1_5', plaintext: Buffer.from('legacy') });
  r.decrypt15 = Buffer.from((await cc.decrypt({ algorithm: 'RSA1_5', ciphertext: enc15.result })).result).toString();
  const digest = crypto.createHash('sha256').update('message').digest();
  for (const alg of ['RS256', 'PS256']) {
    const s = await cc.sign(alg, digest);
    r[`verify${alg}`] = (await cc.verify(alg, digest, s.result)).result;
    const bad = Buffer.from(s.result);
    bad[0] ^= 1;
    r[`verifyBad${alg}`] = (await cc.verify(alg, digest, bad)).result;
  }
  const sd = await cc.signData('RS256', Buffer.from('data'));
  r.verifyData = (await cc.verifyData('RS256', Buffer.from('data'), sd.result)).result;
  // Node verifies an RS256 signature made by the vault with the public key.
  const pub = crypto.createPublicKey({ key: { kty: 'RSA', n: Buffer.from(rot.key.n).toString('base64url'), e: Buffer.from(rot.key.e).toString('base64url') }, format: 'jwk' });
  r.nodeVerifies = crypto.verify('sha256', Buffer.from('data'), pub, Buffer.from(sd.result));
  const ecc = new CryptographyClient(e1.id, cred);
  const es = await ecc.sign('ES256', digest);
  r.es256Length = es.result.length;
  r.verifyES256 = (await ecc.verify('ES256', digest, es.result)).result;
  r.es384OnP256 = await attempt(() => ecc.sign('ES384', crypto.createHash('sha384').update('x').digest()));
  r.disabledUse = await attempt(() => new CryptographyClient(k1.id, cred).sign('RS256', digest));

  // Import a key made by Node, then use it remotely.
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const toBuf = (s) => Buffer.from(s, 'base64url');
  const imported = await keys.importKey(imp, {
    kty: 'RSA', n: toBuf(jwk.n), e: toBuf(jwk.e), d: toBuf(jwk.d), p: toBuf(jwk.p), q: toBuf(jwk.q),
    dp: toBuf(jwk.dp), dq: toBuf(jwk.dq), qi: toBuf(jwk.qi),
  });
  r.imported = keyProps(imported);
  const icc = new CryptographyClient(imported.id, cred);
  const ct = crypto.publicEncrypt({ key: privateKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING }, secret);
  r.importedUnwrap = Buffer.from((await icc.unwrapKey('RSA-OAEP', ct)).result).equals(secret);

  // Delete / recover / purge / backup / restore.
  const backup = await keys.backupKey(ec);
  await (await keys.beginDeleteKey(ec, POLL)).pollUntilDone();
  r.getDeletedKey = (await keys.getDeletedKey(ec)).name;
  r.deletedList = [];
  for await (const d of keys.listDeletedKeys()) r.deletedList.push(d.name);
  await (await keys.beginRecoverDeletedKey(ec, POLL)).pollUntilDone();
  r.afterRecover = (await keys.getKey(ec)).name;
  await (await keys.beginDeleteKey(ec, POLL)).pollUntilDone();
  await keys.purgeDeletedKey(ec);
  const restored = await keys.restoreKeyBackup(backup);
  r.restored = keyProps(restored);
  r.restoredVerifies = (await new CryptographyClient(restored.id, cred).verify('ES256', digest, es.result)).result;
  return r;
}

// A key whose key_ops allow sign/verify only.
export async function keysOps({ keys, cred, CryptographyClient, args }) {
  const k = await keys.createRsaKey(args.name, { keySize: 2048, keyOps: ['sign', 'verify'] });
  const cc = new CryptographyClient(k.id, cred);
  const digest = crypto.createHash('sha256').update('m').digest();
  return {
    keyOps: k.keyOperations,
    sign: await attempt(async () => (await cc.sign('RS256', digest)).result.length),
    unwrap: await attempt(() => cc.unwrapKey('RSA-OAEP-256', crypto.randomBytes(256))),
  };
}

// -HSM keys: created in the PKCS#11 token, used through CryptographyClient.
export async function keysHsm({ keys, cred, CryptographyClient, args }) {
  const r = {};
  const rsa = await keys.createRsaKey(args.rsa, { keySize: 2048, hsm: true });
  const ec = await keys.createEcKey(args.ec, { curve: 'P-256', hsm: true });
  r.rsaKty = rsa.keyType;
  r.ecKty = ec.keyType;
  r.rsaName = rsa.name;
  const cc = new CryptographyClient(rsa.id, cred);
  const secret = crypto.randomBytes(32);
  const w1 = await cc.wrapKey('RSA-OAEP', secret);
  r.unwrapOaep = Buffer.from((await cc.unwrapKey('RSA-OAEP', w1.result)).result).equals(secret);
  const w2 = await cc.wrapKey('RSA-OAEP-256', secret);
  r.unwrapOaep256 = Buffer.from((await cc.unwrapKey('RSA-OAEP-256', w2.result)).result).equals(secret);
  const digest = crypto.createHash('sha256').update('hsm').digest();
  const s = await cc.sign('RS256', digest);
  r.verifyRS256 = (await cc.verify('RS256', digest, s.result)).result;
  const ecc = new CryptographyClient(ec.id, cred);
  const es = await ecc.sign('ES256', digest);
  r.verifyES256 = (await ecc.verify('ES256', digest, es.result)).result;
  const e15 = await cc.encrypt({ algorithm: 'RSA1_5', plaintext: Buffer.from('x') });
  r.rsa15 = await attempt(() => cc.decrypt({ algorithm: 'RSA1_5', ciphertext: e15.result }));
  return r;
}
