// vault-crash.test.mjs - durability of Key Vault writes (docs/vault.md "Durability"): the SDK
// sets 1,000 secret versions 64 at a time; the server is killed with SIGKILL in the middle; after
// a restart every version the server acknowledged reads back with its value, and no version the
// lists show is half-written (each one opens).
import test from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, SCALE } from './lib/harness.mjs';
import { clientToken } from './lib/iam.mjs';
import { createVault, kvPrincipal, kv, runKv, vaultName } from './lib/vault.mjs';

test('kill -9 during 1,000 concurrent sets: every acknowledged version survives, nothing half-written', { timeout: 300000 * SCALE }, async () => {
  let srv = await startServer();
  const dataDir = srv.dataDir;
  const admin = srv.token;
  const vault = await createVault(srv, vaultName('crash'));
  const officer = await kvPrincipal(srv, vault, 'Key Vault Secrets Officer');
  const prefix = 'crash';
  let acks = 0;
  let killed = false;
  const out = await runKv(srv, vault, officer, 'secretsBulk',
    { prefix, n: 1000, parallel: 64, names: 40, log: true, tolerateErrors: true, valuePrefix: 'durable' },
    {
      timeoutMs: 240000 * SCALE,
      onStderr: (chunk, probe) => {
        acks += (chunk.match(/^ACK /gm) || []).length;
        if (!killed && acks >= 300) {
          killed = true;
          srv.proc.kill('SIGKILL');
          // The SDK would retry for a while against a dead server: end the client too.
          setTimeout(() => probe.kill('SIGKILL'), 300);
        }
      },
    });
  assert.ok(killed, `the server was never killed (acks ${acks}): ${JSON.stringify(out.error)}`);
  const acked = out.stderr.split('\n').filter((l) => l.startsWith('ACK ')).map((l) => JSON.parse(l.slice(4)));
  assert.ok(acked.length >= 300, `${acked.length} acknowledged`);
  await srv.exited;

  srv = await startServer({ dataDir, init: false });
  srv.token = admin;
  try {
    const tok = await clientToken(srv, officer.appId, officer.secret, 'vault');
    // Every acknowledged version reads back, byte for byte.
    for (const a of acked) {
      const r = await kv(srv, vault, 'GET', `/secrets/${a.name}/${a.version}`, { token: tok });
      assert.equal(r.status, 200, `${a.name}/${a.version}: ${r.status} ${r.text}`);
      assert.equal(r.json.value, a.value);
    }
    // Every version any list shows opens: nothing half-written is visible.
    let listed = 0;
    for (let i = 0; i < 40; i++) {
      let link = `/secrets/${prefix}-${i}/versions`;
      let query = 'api-version=2025-07-01&maxresults=25';
      for (;;) {
        const l = await kv(srv, vault, 'GET', link, { token: tok, query });
        if (l.status === 404) break;
        assert.equal(l.status, 200, l.text);
        for (const item of l.json.value) {
          const ver = item.id.split('/').pop();
          const g = await kv(srv, vault, 'GET', `/secrets/${prefix}-${i}/${ver}`, { token: tok });
          assert.equal(g.status, 200, `${prefix}-${i}/${ver}: ${g.text}`);
          assert.match(g.json.value, /^durable-/);
          listed++;
        }
        if (!l.json.nextLink) break;
        const u = new URL(l.json.nextLink);
        link = u.pathname;
        query = u.search.slice(1);
      }
    }
    assert.ok(listed >= acked.length, `${listed} listed < ${acked.length} acknowledged`);
    // And the vault still takes writes.
    assert.equal((await kv(srv, vault, 'PUT', '/secrets/after-crash', { token: tok, body: { value: 'ok' } })).status, 200);
  } finally {
    await srv.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a missing ciphertext store stops start-up and changes nothing', async () => {
  let srv = await startServer();
  const dataDir = srv.dataDir;
  const admin = srv.token;
  const vault = await createVault(srv, vaultName('lost'));
  const officer = await kvPrincipal(srv, vault, 'Key Vault Secrets Officer');
  for (let i = 0; i < 3; i++)
    assert.equal((await kv(srv, vault, 'PUT', `/secrets/s${i}`, { token: officer.token, body: { value: `v${i}` } })).status, 200);
  await srv.stop({ keepData: true });
  const { renameSync } = await import('node:fs');
  const { join } = await import('node:path');
  renameSync(join(dataDir, 'objects.db'), join(dataDir, 'objects.db.away'));
  const { run } = await import('./lib/harness.mjs');
  const r = run(['serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--http-listen', 'off'], { env: { ...process.env, RAMPART_IDENTITY_LISTEN: '127.0.0.1:0' } });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /no ciphertext in objects\.db/);
  // Put it back: everything is still there.
  rmSync(join(dataDir, 'objects.db'), { force: true });
  for (const ext of ['-wal', '-shm']) rmSync(join(dataDir, `objects.db${ext}`), { force: true });
  renameSync(join(dataDir, 'objects.db.away'), join(dataDir, 'objects.db'));
  srv = await startServer({ dataDir, init: false });
  srv.token = admin;
  try {
    const tok = await clientToken(srv, officer.appId, officer.secret, 'vault');
    for (let i = 0; i < 3; i++)
      assert.equal((await kv(srv, vault, 'GET', `/secrets/s${i}/`, { token: tok })).json.value, `v${i}`);
  } finally {
    await srv.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
