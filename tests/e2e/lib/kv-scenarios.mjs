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
