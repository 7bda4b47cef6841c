// vault-keys.test.mjs - Key Vault keys end to end (docs/vault.md "Keys"): the unmodified
// @azure/keyvault-keys SDK creates, imports, reads, lists, rotates, updates, deletes, recovers,
// purges, backs up and restores keys; CryptographyClient wraps locally and unwraps remotely
// (RSA-OAEP, RSA-OAEP-256), encrypts/decrypts, signs and verifies (RS256, PS256, ES256) through
// "/keys/k//op"; key_ops, enabled and the algorithm/key-type rules are enforced; bad input is a
// Key Vault error and stores nothing; RBAC with the crypto roles.
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from './lib/harness.mjs';
import { uniq } from './lib/iam.mjs';
import { createVault, kvPrincipal, kv, runKv, vaultName, kvErrorCode } from './lib/vault.mjs';

let srv;
let vault;
let officer;

test.before(async () => {
  srv = await startServer();
  vault = await createVault(srv, vaultName('keys'));
  officer = await kvPrincipal(srv, vault, 'Key Vault Crypto Officer');
});
test.after(async () => { if (srv) await srv.stop(); });

test('SDK: every keys call and CryptographyClient round trips', async () => {
  const args = { rsa: `rsa-${uniq('k')}`, ec: `ec-${uniq('k')}`, imp: `imp-${uniq('k')}` };
  const out = await runKv(srv, vault, officer, 'keysTour', args);
  assert.ok(out.ok, JSON.stringify(out.error) + out.stderr);
  const r = out.result;
  assert.equal(r.created.kty, 'RSA');
  assert.equal(r.created.n, 256);
  assert.deepEqual(r.created.keyOps, ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey']);
  assert.deepEqual(r.created.tags, { t: '1' });
  assert.equal(r.created.exportable, false);
  assert.equal(r.ec.kty, 'EC');
  assert.equal(r.ec.crv, 'P-256');
  assert.deepEqual(r.ec.keyOps, ['sign', 'verify']);
  assert.equal(r.get.version, r.created.version);
  assert.equal(r.getVersion.version, r.created.version);
  assert.notEqual(r.rotated.version, r.created.version);
  assert.equal(r.rotated.n, 256);
  assert.deepEqual(r.rotated.tags, { t: '1' });
  assert.equal(r.versions.length, 2);
  assert.ok(r.list.includes(args.rsa) && r.list.includes(args.ec));
  assert.equal(r.updated.enabled, false);
  assert.equal(r.unwrapOaep, true);
  assert.equal(r.unwrapOaep256, true);
  assert.equal(r.decrypt, 'hello');
  assert.equal(r.decrypt15, 'legacy');
  assert.equal(r.verifyRS256, true);
  assert.equal(r.verifyBadRS256, false);
  assert.equal(r.verifyPS256, true);
  assert.equal(r.verifyBadPS256, false);
  assert.equal(r.verifyData, true);
  assert.equal(r.nodeVerifies, true);
  assert.equal(r.es256Length, 64);
  assert.equal(r.verifyES256, true);
  assert.equal(r.es384OnP256.ok, false);
  assert.equal(r.es384OnP256.error.statusCode, 400);
  assert.equal(r.disabledUse.ok, false);
  assert.equal(r.imported.kty, 'RSA');
  assert.equal(r.importedUnwrap, true);
  assert.equal(r.getDeletedKey, args.ec);
  assert.ok(r.deletedList.includes(args.ec));
  assert.equal(r.afterRecover, args.ec);
  assert.equal(r.restored.name, args.ec);
  assert.equal(r.restoredVerifies, true);
  // The unversioned client used the empty version segment; wrapKey RSA-OAEP never reached us.
  assert.ok(out.requests.some((x) => x.includes(`/keys/${args.rsa}//unwrapkey`)), out.requests.join('\n'));
  assert.ok(!out.requests.some((x) => x.includes('/wrapkey') && !x.includes('unwrapkey') && x.includes('RSA-OAEP?')));
});

test('key_ops, enabled and exp are enforced by the server, not only by the SDK', async () => {
  const name = `ops-${uniq('k')}`;
  const out = await runKv(srv, vault, officer, 'keysOps', { name });
  assert.ok(out.ok, JSON.stringify(out.error));
  assert.deepEqual(out.result.keyOps, ['sign', 'verify']);
  assert.equal(out.result.sign.ok, true);
  assert.equal(out.result.unwrap.ok, false);
  // Raw request straight to the server: 403 with the Key Vault error shape.
  const r = await kv(srv, vault, 'POST', `/keys/${name}//unwrapkey`, { token: officer.token, body: { alg: 'RSA-OAEP-256', value: Buffer.alloc(256, 1).toString('base64url') } });
  assert.equal(r.status, 403);
  assert.equal(r.json.error.innererror.code, 'KeyOperationForbidden');
  // Expired: no new signatures, but verification of old ones still works.
  const now = Math.floor(Date.now() / 1000);
  const digest = crypto.createHash('sha256').update('m').digest().toString('base64url');
  const sig = await kv(srv, vault, 'POST', `/keys/${name}//sign`, { token: officer.token, body: { alg: 'RS256', value: digest } });
  assert.equal(sig.status, 200);
  assert.equal((await kv(srv, vault, 'PATCH', `/keys/${name}/`, { token: officer.token, body: { attributes: { exp: now - 1 } } })).status, 200);
  const s2 = await kv(srv, vault, 'POST', `/keys/${name}//sign`, { token: officer.token, body: { alg: 'RS256', value: digest } });
  assert.equal(s2.status, 403);
  assert.equal(s2.json.error.innererror.code, 'KeyExpired');
  const v = await kv(srv, vault, 'POST', `/keys/${name}//verify`, { token: officer.token, body: { alg: 'RS256', digest, value: sig.json.value } });
  assert.equal(v.status, 200);
  assert.equal(v.json.value, true);
});

test('bad input: unknown algorithms, wrong key type, malformed bodies, bad sizes - nothing stored', async () => {
  const rsa = `bad-${uniq('k')}`;
  const ec = `bade-${uniq('k')}`;
  assert.equal((await kv(srv, vault, 'POST', `/keys/${rsa}/create`, { token: officer.token, body: { kty: 'RSA' } })).status, 200);
  assert.equal((await kv(srv, vault, 'POST', `/keys/${ec}/create`, { token: officer.token, body: { kty: 'EC', crv: 'P-384' } })).status, 200);
  const v = Buffer.alloc(32, 7).toString('base64url');
  const cases = [
    ['POST', `/keys/${rsa}//sign`, { alg: 'HS256', value: v }],
    ['POST', `/keys/${rsa}//sign`, { alg: 'RS256', value: Buffer.alloc(20).toString('base64url') }],
    ['POST', `/keys/${rsa}//encrypt`, { alg: 'A256KW', value: v }],
    ['POST', `/keys/${ec}//sign`, { alg: 'ES256', value: v }],
    ['POST', `/keys/${rsa}//decrypt`, { alg: 'RSA-OAEP', value: Buffer.alloc(10).toString('base64url') }],
    ['POST', `/keys/${rsa}//sign`, { alg: 'RS256', value: '***' }],
    ['POST', `/keys/${rsa}//sign`, '{"alg":"RS256"'],
    ['POST', `/keys/${rsa}//verify`, { alg: 'RS256', digest: v }],
    ['POST', `/keys/bnew-${uniq('k')}/create`, { kty: 'RSA', key_size: 1024 }],
    ['POST', `/keys/bnew-${uniq('k')}/create`, { kty: 'EC', crv: 'P-192' }],
    ['POST', `/keys/bnew-${uniq('k')}/create`, { kty: 'oct' }],
    ['POST', `/keys/bnew-${uniq('k')}/create`, { kty: 'RSA', key_ops: ['launch'] }],
    ['POST', '/keys/a_b/create', { kty: 'RSA' }],
    ['PUT', `/keys/bimp-${uniq('k')}`, { key: { kty: 'RSA', n: 'AQAB', e: 'AQAB' } }],
  ];
  for (const [m, p, body] of cases) {
    const r = await kv(srv, vault, m, p, { token: officer.token, body });
    assert.equal(r.status, 400, `${m} ${p} ${JSON.stringify(body)}: ${r.status} ${r.text}`);
    assert.equal(kvErrorCode(r), 'BadParameter', r.text);
  }
  const list = await kv(srv, vault, 'GET', '/keys', { token: officer.token });
  assert.ok(!list.json.value.some((x) => x.kid.includes('/keys/bnew-') || x.kid.includes('/keys/bimp-')));
  assert.equal((await kv(srv, vault, 'GET', `/keys/${rsa}/versions`, { token: officer.token })).json.value.length, 1);
});

test('RBAC: Crypto User uses but cannot create or delete; Reader reads the public key only; none is 403', async () => {
  const name = `rb-${uniq('k')}`;
  await kv(srv, vault, 'POST', `/keys/${name}/create`, { token: officer.token, body: { kty: 'RSA' } });
  const user = await kvPrincipal(srv, vault, 'Key Vault Crypto User');
  const enc = await kvPrincipal(srv, vault, 'Key Vault Crypto Service Encryption User');
  const reader = await kvPrincipal(srv, vault, 'Key Vault Reader');
  const none = await kvPrincipal(srv, vault, null);
  const digest = crypto.createHash('sha256').update('m').digest().toString('base64url');
  const sign = (t) => kv(srv, vault, 'POST', `/keys/${name}//sign`, { token: t, body: { alg: 'RS256', value: digest } });
  assert.equal((await sign(user.token)).status, 200);
  assert.equal((await kv(srv, vault, 'POST', `/keys/x-${uniq('k')}/create`, { token: user.token, body: { kty: 'RSA' } })).status, 403);
  assert.equal((await kv(srv, vault, 'DELETE', `/keys/${name}`, { token: user.token })).status, 403);
  assert.equal((await sign(enc.token)).status, 403);
  const g = await kv(srv, vault, 'GET', `/keys/${name}/`, { token: reader.token });
  assert.equal(g.status, 200);
  assert.equal(g.json.key.d, undefined);
  assert.equal((await sign(reader.token)).status, 403);
  for (const t of [none.token]) {
    assert.equal((await kv(srv, vault, 'GET', `/keys/${name}/`, { token: t })).status, 403);
    assert.equal((await sign(t)).status, 403);
  }
});

test('canary: no private key bytes appear anywhere under the data directory', async () => {
  const name = `can-${uniq('k')}`;
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const r = await kv(srv, vault, 'PUT', `/keys/${name}`, { token: officer.token, body: { key: jwk } });
  assert.equal(r.status, 200, r.text);
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  const needles = [Buffer.from(jwk.d, 'base64url').subarray(0, 64), Buffer.from(jwk.p, 'base64url').subarray(0, 64), der.subarray(der.length - 64)];
  const hits = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const b = readFileSync(p);
        if (needles.some((n) => b.includes(n))) hits.push(p);
      }
    }
  };
  walk(srv.dataDir);
  assert.deepEqual(hits, []);
  // Used after the scan: the key is really stored and works.
  const ct = crypto.publicEncrypt({ key: privateKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from('x'));
  const u = await kv(srv, vault, 'POST', `/keys/${name}//unwrapkey`, { token: officer.token, body: { alg: 'RSA-OAEP-256', value: ct.toString('base64url') } });
  assert.equal(u.status, 200, u.text);
  assert.equal(Buffer.from(u.json.value, 'base64url').toString(), 'x');
});
