// iam-races.test.mjs - regressions from the security review of the identity service:
//   - readers on every loop keep using a snapshot while writers on other loops publish new ones
//     (a use-after-free before retired snapshots were released only after the loop iteration);
//   - clients that abort while their change waits for the store writer (the bound values lived in
//     the request arena);
//   - a PIM approval after the eligibility ended, and an activation capped at the eligibility's end.
// Run under ASan+UBSan by `make e2e-asan`, which is what catches the memory errors.
import test from 'node:test';
import assert from 'node:assert/strict';
import { startServer, DOMAIN, openTls, sleep, SCALE } from './lib/harness.mjs';
import { api, apiOk, uniq, createSp, assignRole, clientToken } from './lib/iam.mjs';

let srv;
test.before(async () => { srv = await startServer(); });
test.after(async () => { await srv.stop(); });

test('snapshots swapped under concurrent readers and aborted writes', async () => {
  const reader = await createSp(srv);
  await assignRole(srv, reader.appId, 'Reader', '/');
  const token = await clientToken(srv, reader.appId, reader.secret);
  const target = await apiOk(srv, 'POST', '/api/identities', { body: { name: uniq('race') } }, 201);
  const until = Date.now() + 3000 * SCALE;
  const statuses = new Map();
  const count = (s) => statuses.set(s, (statuses.get(s) || 0) + 1);
  const readers = Array.from({ length: 6 }, async () => {
    while (Date.now() < until) {
      const r = await api(srv, 'GET', `/api/identities/${target.id}`, { token });
      count(r.status);
      const l = await api(srv, 'GET', '/api/roleAssignments', { token });
      count(l.status);
    }
  });
  const writers = Array.from({ length: 2 }, async () => {
    while (Date.now() < until) {
      const name = uniq('churn');
      await apiOk(srv, 'POST', '/api/identities', { body: { name } }, 201);
      await apiOk(srv, 'DELETE', `/api/identities/${name}`, {}, 204);
    }
  });
  // Writers that vanish while their change is queued behind the others.
  const aborters = (async () => {
    while (Date.now() < until) {
      const c = await openTls(srv);
      const body = JSON.stringify({ principal: reader.appId, role: 'Reader', scope: `/vaults/${uniq('v')}` });
      await c.write(`POST /api/roleAssignments?${'p=' + 'A'.repeat(200) + '&'}x=1 HTTP/1.1\r\nHost: ${DOMAIN}\r\n` +
        `Authorization: Bearer ${srv.token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      c.destroy();
      await sleep(5);
    }
  })();
  await Promise.all([...readers, ...writers, aborters]);
  // Only the answers the API gives: 200 for reads. Anything else (a reset, a 500) is a failure.
  assert.deepEqual([...statuses.keys()].sort(), [200]);
  const alive = await api(srv, 'GET', '/api/whoami');
  assert.equal(alive.status, 200);
});

test('PIM: no approval after the eligibility ended; activations end with their eligibility', async () => {
  const alice = await createSp(srv, uniq('alice'));
  const bob = await createSp(srv, uniq('bob'));
  const soon = new Date(Date.now() + 3000).toISOString().replace(/\.\d+Z$/, 'Z');
  const e = await apiOk(srv, 'POST', '/api/roleEligibilities',
    { body: { principal: alice.appId, role: 'Reader', scope: '/', approvers: [bob.appId], expiresAt: soon } }, 201);
  const at = await clientToken(srv, alice.appId, alice.secret);
  const bt = await clientToken(srv, bob.appId, bob.secret);
  const req = await apiOk(srv, 'POST', '/api/roleActivations',
    { token: at, body: { eligibility: e.id, justification: 'incident 42', duration: 'PT1H' } }, 201);
  assert.equal(req.status, 'PendingApproval');
  await sleep(4000);
  const late = await api(srv, 'POST', `/api/roleActivations/${req.id}/approve`, { token: bt, body: {} });
  assert.equal(late.status, 409, late.text);
  assert.equal(late.json.error.code, 'RequestExpired');
  const denied = await api(srv, 'GET', '/api/servicePrincipals', { token: at });
  assert.equal(denied.status, 403);

  // Without approval: the activation asked for 1 h ends when the eligibility does.
  const end = Math.floor(Date.now() / 1000) + 600;
  const e2 = await apiOk(srv, 'POST', '/api/roleEligibilities',
    { body: { principal: alice.appId, role: 'Reader', scope: '/', expiresAt: end } }, 201);
  const act = await apiOk(srv, 'POST', '/api/roleActivations',
    { token: at, body: { eligibility: e2.id, justification: 'incident 43', duration: 'PT1H' } }, 201);
  assert.equal(act.status, 'Active');
  assert.ok(Date.parse(act.expiresAt) / 1000 <= end, `${act.expiresAt} is after ${new Date(end * 1000).toISOString()}`);
});
