// vault-providers.test.mjs - root key providers end to end (docs/encryption.md): a root key held
// in a PKCS#11 token (SoftHSM2) that never reaches the disk, with -HSM vault keys generated and
// used inside the same token, rotated online and destroyed on purge; and a passphrase-sealed
// root key: `serve` starts sealed, answers only health and unseal on loopback, `rampart unseal`
// opens it (a wrong passphrase does not), and an unattended start reads a 0600 passphrase file.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import { startServer, tmpDir, BIN, SCALE, SERVICE_UID } from './lib/harness.mjs';
import { uniq, cliAsync, clientToken } from './lib/iam.mjs';
import { createVault, kvPrincipal, kv, runKv, vaultName } from './lib/vault.mjs';

const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
const PIN = '1234';

function softhsmToken(dir, label) {
  mkdirSync(join(dir, 'tokens'), { recursive: true });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const r = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', PIN, '--so-pin', '5678'],
    { env: { ...process.env, SOFTHSM2_CONF: conf }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`softhsm2-util: ${r.stderr}`);
  return conf;
}

function hsmObjects(conf, label) {
  const r = spawnSync('pkcs11-tool', ['--module', SOFTHSM, '--token-label', label, '--login', '--pin', PIN, '--list-objects', '--type', 'privkey'],
    { env: { ...process.env, SOFTHSM2_CONF: conf }, encoding: 'utf8' });
  return (r.stdout.match(/label:\s+(\S+)/g) || []).map((l) => l.replace(/label:\s+/, ''));
}

test('PKCS#11 root key and -HSM keys in SoftHSM2: no root key file, online rotation, purge destroys', { skip: !existsSync(SOFTHSM) && 'SoftHSM2 is not installed' }, async () => {
  const dir = tmpDir('rp-hsm-');
  const label = `rp-${process.pid}`;
  const conf = softhsmToken(dir, label);
  const dataDir = join(dir, 'data');
  const env = { ...process.env, SOFTHSM2_CONF: conf, RAMPART_PKCS11_PIN: PIN, RAMPART_IDENTITY_LISTEN: '127.0.0.1:0' };
  const r = spawnSync(BIN, ['init', '--data', dataDir, '--output', 'json', '--key-provider', 'pkcs11', '--pkcs11-module', SOFTHSM, '--pkcs11-token', label],
    { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  // No key file: the root key is an object in the token.
  assert.deepEqual(readdirSync(join(dataDir, 'keys')).filter((f) => f.startsWith('root')), []);
  // serve uses the token as the service user (init ran as root): SoftHSM2's files become its.
  if (process.getuid() === 0) {
    const c = spawnSync('chown', ['-R', `${SERVICE_UID}:${SERVICE_UID}`, join(dir, 'tokens')], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
  }
  const srvEnv = { SOFTHSM2_CONF: conf, RAMPART_PKCS11_PIN: PIN, RAMPART_KEYS_PKCS11_MODULE: SOFTHSM, RAMPART_KEYS_PKCS11_TOKEN: label };
  let srv = await startServer({ dataDir, init: false, env: srvEnv });
  srv.token = report.admin_token;
  try {
    const { apiOk } = await import('./lib/iam.mjs');
    const st = await apiOk(srv, 'GET', '/api/keys', {}, 200);
    assert.equal(st.provider, 'pkcs11');
    const v = await createVault(srv, vaultName('hsm'));
    const officer = await kvPrincipal(srv, v, 'Key Vault Administrator');
    await kv(srv, v, 'PUT', '/secrets/s', { token: officer.token, body: { value: 'under-hsm' } });
    const out = await runKv(srv, v, officer, 'keysHsm', { rsa: `hr-${uniq('k')}`, ec: `he-${uniq('k')}` });
    assert.ok(out.ok, JSON.stringify(out.error) + out.stderr);
    const x = out.result;
    assert.equal(x.rsaKty, 'RSA-HSM');
    assert.equal(x.ecKty, 'EC-HSM');
    assert.equal(x.unwrapOaep, true);
    assert.equal(x.unwrapOaep256, true);
    assert.equal(x.verifyRS256, true);
    assert.equal(x.verifyES256, true);
    assert.equal(x.rsa15.ok, false);
    assert.equal(x.rsa15.error.statusCode, 400);
    assert.ok(hsmObjects(conf, label).some((l) => l.startsWith(`rampart-kv/${v}/`)), 'the keys are token objects');
    // A backup would carry only the token reference: refused.
    const b = await kv(srv, v, 'POST', `/keys/${out.result.rsaName}/backup`, { token: officer.token });
    assert.equal(b.status, 400, b.text);
    // Rotation of the HSM root while serving; data stays readable.
    const rot = await apiOk(srv, 'POST', '/api/keys/rotate-root', {}, 200);
    assert.equal(rot.generation, st.generation + 1);
    assert.equal((await kv(srv, v, 'GET', '/secrets/s/', { token: officer.token })).json.value, 'under-hsm');
    // Purge destroys the key's objects in the token.
    const before = hsmObjects(conf, label).filter((l) => l === `rampart-kv/${v}/${out.result.rsaName}`).length;
    assert.ok(before >= 1);
    assert.equal((await kv(srv, v, 'DELETE', `/keys/${out.result.rsaName}`, { token: officer.token })).status, 200);
    assert.equal((await kv(srv, v, 'DELETE', `/deletedkeys/${out.result.rsaName}`, { token: officer.token })).status, 204);
    assert.equal(hsmObjects(conf, label).filter((l) => l === `rampart-kv/${v}/${out.result.rsaName}`).length, 0);
    // A restart finds the rotated root in the token.
    await srv.stop({ keepData: true });
    srv = await startServer({ dataDir, init: false, env: srvEnv });
    srv.token = report.admin_token;
    const tok = await clientToken(srv, officer.appId, officer.secret, 'vault');
    assert.equal((await kv(srv, v, 'GET', '/secrets/s/', { token: tok })).json.value, 'under-hsm');
    // A wrong PIN: start-up fails with a clear error, the PIN not in it.
    await srv.stop({ keepData: true });
    srv = null;
    const bad = spawnSync(BIN, ['serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--http-listen', 'off'],
      { env: { ...process.env, ...srvEnv, RAMPART_PKCS11_PIN: '9999', RAMPART_IDENTITY_LISTEN: '127.0.0.1:0' }, encoding: 'utf8', timeout: 30000 });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /PIN|pin/);
    assert.doesNotMatch(bad.stderr, /9999/);
  } finally {
    if (srv) await srv.stop({ keepData: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

// Reads stdout lines of a child as they come.
function lines(proc) {
  const queue = [];
  const waiters = [];
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (waiters.length) waiters.shift()(line); else queue.push(line);
    }
  });
  return () => new Promise((resolve, reject) => {
    if (queue.length) { resolve(queue.shift()); return; }
    const t = setTimeout(() => reject(new Error('no line from serve')), 30000 * SCALE);
    waiters.push((l) => { clearTimeout(t); resolve(l); });
  });
}

function httpJson(url, method = 'GET', body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      let d = '';
      res.on('data', (c) => { d += c; });
      res.on('end', () => { let j; try { j = JSON.parse(d); } catch { j = undefined; } resolve({ status: res.statusCode, json: j }); });
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

test('passphrase: serve starts sealed, unseal opens it, a 0600 passphrase file starts it unattended', async () => {
  const dir = tmpDir('rp-seal-');
  const dataDir = join(dir, 'data');
  const pass = `correct horse ${uniq('p')} battery staple`;
  const r = spawnSync(BIN, ['init', '--data', dataDir, '--output', 'json', '--key-provider', 'passphrase'],
    { env: { ...process.env, RAMPART_PASSPHRASE: pass }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.ok(readdirSync(join(dataDir, 'keys')).includes('root-1.sealed'));
  // The sealed file does not hold the root key in clear, nor the passphrase.
  const env = { ...process.env, RAMPART_IDENTITY_LISTEN: '127.0.0.1:0' };
  delete env.RAMPART_PASSPHRASE;
  const proc = spawn(BIN, ['serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--http-listen', 'off'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const next = lines(proc);
  try {
    const sealed = JSON.parse(await next());
    assert.equal(sealed.event, 'sealed');
    const base = sealed.unseal.replace(/\/unseal$/, '');
    assert.deepEqual((await httpJson(`${base}/health`)).json, { status: 'sealed' });
    assert.equal((await httpJson(`${base}/api/vaults`)).status, 404);
    assert.equal((await httpJson(`${base}/unseal`, 'POST', {})).status, 400);
    const cliEnvBase = { PATH: process.env.PATH, HOME: dir };
    const wrong = await cliAsync(['unseal', '--url', base], { env: { ...cliEnvBase, RAMPART_PASSPHRASE: 'not the passphrase' } });
    assert.equal(wrong.status, 6, `${wrong.stderr} / server: ${stderr}`);
    const remote = await cliAsync(['unseal', '--url', 'http://192.0.2.1:8459'], { env: { ...cliEnvBase, RAMPART_PASSPHRASE: pass } });
    assert.equal(remote.status, 2, 'the passphrase never leaves loopback');
    const ok = await cliAsync(['unseal', '--url', base], { env: { ...cliEnvBase, RAMPART_PASSPHRASE: pass } });
    assert.equal(ok.status, 0, ok.stderr);
    const ready = JSON.parse(await next());
    assert.equal(ready.event, 'ready');
    assert.doesNotMatch(stderr, new RegExp(pass));
    const port = Number(ready.https.split(':').pop());
    const srv = { port, dataDir, token: report.admin_token, tenant: ready.tenant, ca: null };
    const { readFileSync } = await import('node:fs');
    srv.ca = readFileSync(join(dataDir, 'tls', 'ca.crt'));
    const v = await createVault(srv, vaultName('sealed'));
    const officer = await kvPrincipal(srv, v, 'Key Vault Secrets Officer');
    assert.equal((await kv(srv, v, 'PUT', '/secrets/s', { token: officer.token, body: { value: 'sealed-data' } })).status, 200);
    proc.kill('SIGTERM');
    await new Promise((res) => proc.on('exit', res));

    // Unattended: a passphrase file, refused unless 0600.
    const pf = join(dir, 'passphrase');
    writeFileSync(pf, `${pass}\n`, { mode: 0o644 });
    chmodSync(pf, 0o644);
    const loose = spawnSync(BIN, ['serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--http-listen', 'off'],
      { env: { ...env, RAMPART_KEYS_PASSPHRASE_FILE: pf }, encoding: 'utf8', timeout: 30000 });
    assert.notEqual(loose.status, 0);
    assert.match(loose.stderr, /passphrase file/);
    chmodSync(pf, 0o600);
    const srv2 = await startServer({ dataDir, init: false, env: { RAMPART_KEYS_PASSPHRASE_FILE: pf } });
    srv2.token = report.admin_token;
    const tok = await clientToken(srv2, officer.appId, officer.secret, 'vault');
    assert.equal((await kv(srv2, v, 'GET', '/secrets/s/', { token: tok })).json.value, 'sealed-data');
    await srv2.stop({ keepData: true });
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
