// authz-matrix.test.mjs - every management endpoint of docs/iam.md x every kind of caller:
// no credential, credentials that must not authenticate (an attacker-signed token that expired
// two hours ago, a real token for another audience, a real token with its payload edited, the
// server's claims signed by another RSA key, alg "none"), and authenticated principals holding
// no role, Reader, Contributor, User Access Administrator or Owner at "/", the administrator
// token, and Owner at one identity's scope (scope containment).
//
// The expected answer of each cell comes from the role semantics (Azure's built-in action
// lists: Reader */read; Contributor * except Microsoft.Authorization/*/Write|Delete and
// elevateAccess; UAA */read + Microsoft.Authorization/*; Owner *; '*' matches across '/'),
// not from the server. A cell "allows" when the request passed authorization: any 2xx, or a
// 4xx other than 401/403 (400/404/409 mean the request was judged on its merits). Every
// request that needs an object gets a fresh one, made with the administrator token, so no
// cell depends on another, and every body is valid: an allowed request must also be carried
// out (2xx). The test fails on any unexpected allow, unexpected deny, wrong refusal code (401
// for unauthenticated callers, 403 for authenticated ones), allowed-but-not-done or 5xx, and
// prints the whole matrix.
import test from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request } from './lib/harness.mjs';
import {
  api, apiOk, createSp, assignRole, clientToken, decodeJwt, signJwt, attackerKey, uniq,
} from './lib/iam.mjs';

// ---------------------------------------------------------------- role semantics (the oracle)

const ROLES = {
  Owner: { actions: ['*'], notActions: [] },
  Contributor: {
    actions: ['*'],
    notActions: ['Microsoft.Authorization/*/Delete', 'Microsoft.Authorization/*/Write', 'Microsoft.Authorization/elevateAccess/Action'],
  },
  Reader: { actions: ['*/read'], notActions: [] },
  'User Access Administrator': { actions: ['*/read', 'Microsoft.Authorization/*', 'Microsoft.Support/*'], notActions: [] },
};

function patternMatches(pattern, action) {
  const re = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
  return re.test(action);
}

function roleAllows(role, action) {
  const r = ROLES[role];
  return r.actions.some((p) => patternMatches(p, action)) && !r.notActions.some((p) => patternMatches(p, action));
}

function scopeWithin(assigned, scope) {
  const a = assigned.toLowerCase();
  const s = scope.toLowerCase();
  return a === '/' || s === a || s.startsWith(`${a}/`);
}

// Does caller (with .roles [[role, scope]]) hold action at scope?
function can(caller, action, scope) {
  return (caller.roles || []).some(([role, at]) => roleAllows(role, action) && scopeWithin(at, scope));
}

// Self-check of the oracle against the facts the brief and Azure's docs state.
test('the oracle: role semantics as Azure defines them', () => {
  const c = (roles) => ({ roles });
  assert.ok(can(c([['Reader', '/']]), 'Microsoft.Authorization/users/read', '/'));
  assert.ok(!can(c([['Reader', '/']]), 'Microsoft.Authorization/users/write', '/'));
  assert.ok(!can(c([['Contributor', '/']]), 'Microsoft.Authorization/servicePrincipals/credentials/write', '/'));
  assert.ok(!can(c([['Contributor', '/']]), 'Microsoft.Authorization/roleAssignments/delete', '/'));
  assert.ok(can(c([['Contributor', '/']]), 'Microsoft.ManagedIdentity/userAssignedIdentities/write', '/identities/x'));
  assert.ok(can(c([['Contributor', '/']]), 'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action', '/identities/x'));
  assert.ok(can(c([['User Access Administrator', '/']]), 'Microsoft.Authorization/roleAssignments/write', '/'));
  assert.ok(!can(c([['User Access Administrator', '/']]), 'Microsoft.ManagedIdentity/userAssignedIdentities/write', '/identities/x'));
  assert.ok(can(c([['User Access Administrator', '/']]), 'Microsoft.Insights/auditLogs/read', '/'));
  assert.ok(can(c([['Owner', '/identities/a']]), 'Microsoft.ManagedIdentity/userAssignedIdentities/read', '/identities/A'));
  assert.ok(!can(c([['Owner', '/identities/a']]), 'Microsoft.ManagedIdentity/userAssignedIdentities/read', '/identities/ab'));
  assert.ok(!can(c([['Owner', '/identities/a']]), 'Microsoft.ManagedIdentity/userAssignedIdentities/read', '/identities'));
  assert.ok(!can(c([]), 'Microsoft.Authorization/users/read', '/'));
});

// ---------------------------------------------------------------- endpoints

const A = 'Microsoft.Authorization';
const MI = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const SCOPED = 'zz-scoped'; // the one identity the scoped Owner holds; fixtures share its prefix

// Fixture builders (administrator token).
const mkUser = async (srv) => { const name = uniq('u'); await apiOk(srv, 'POST', '/api/users', { body: { name } }, 201); return name; };
const mkSp = async (srv) => createSp(srv, uniq('sp'));
// Identity fixtures start with the scoped identity's name: a prefix comparison of scopes
// would wrongly let its Owner in.
const mkMi = async (srv) => apiOk(srv, 'POST', '/api/identities', { body: { name: uniq(SCOPED) } }, 201);
const customRole = () => ({
  properties: {
    roleName: uniq('role'), description: 'matrix test role', type: 'CustomRole',
    permissions: [{ actions: ['Microsoft.ManagedIdentity/userAssignedIdentities/read'], notActions: [], dataActions: [], notDataActions: [] }],
    assignableScopes: ['/'],
  },
});
// An eligibility of a fresh SP (optionally with approvers) and, if activate, its activation.
async function mkActivation(srv, { approvers } = {}) {
  const sp = await mkSp(srv);
  const body = { principal: `sp:${sp.name}`, role: 'Reader', scope: '/', maxDuration: 'PT1H' };
  if (approvers) body.approvers = approvers;
  const e = await apiOk(srv, 'POST', '/api/roleEligibilities', { body }, 201);
  const tok = await clientToken(srv, sp.appId, sp.secret);
  const act = await apiOk(srv, 'POST', '/api/roleActivations', { token: tok, body: { eligibility: e.id, justification: 'matrix fixture', duration: 'PT5M' } }, 201);
  return { sp, eligibility: e, activation: act };
}

// Each endpoint: id, method, prepare(srv, shared) -> { path, body, scope(s) }, allow(caller, fx),
// optionally check(resp, caller, fx, shared) for endpoints that answer every caller but filter,
// and done: the statuses of a request that was carried out (default: any 2xx; every fixture
// exists and every body is valid, so an allowed caller must get its request done).
const ENDPOINTS = [
  { id: 'GET /api/version', method: 'GET', prepare: () => ({ path: '/api/version' }), allow: () => true },
  { id: 'GET /api/whoami', method: 'GET', prepare: () => ({ path: '/api/whoami' }), allow: () => true },
  { id: 'GET /api/nonexistent', method: 'GET', prepare: () => ({ path: '/api/nonexistent/x' }), allow: () => true, done: [404] },

  { id: 'GET /api/users', method: 'GET', prepare: () => ({ path: '/api/users' }), allow: (c) => can(c, `${A}/users/read`, '/') },
  { id: 'POST /api/users', method: 'POST', prepare: () => ({ path: '/api/users', body: { name: uniq('u') } }), allow: (c) => can(c, `${A}/users/write`, '/') },
  { id: 'GET /api/users/{name}', method: 'GET', prepare: async (srv, sh) => ({ path: `/api/users/${sh.user}` }), allow: (c) => can(c, `${A}/users/read`, '/') },
  { id: 'DELETE /api/users/{name}', method: 'DELETE', prepare: async (srv) => ({ path: `/api/users/${await mkUser(srv)}` }), allow: (c) => can(c, `${A}/users/delete`, '/') },

  { id: 'GET /api/servicePrincipals', method: 'GET', prepare: () => ({ path: '/api/servicePrincipals' }), allow: (c) => can(c, `${A}/servicePrincipals/read`, '/') },
  { id: 'POST /api/servicePrincipals', method: 'POST', prepare: () => ({ path: '/api/servicePrincipals', body: { name: uniq('sp') } }), allow: (c) => can(c, `${A}/servicePrincipals/write`, '/') },
  { id: 'GET /api/servicePrincipals/{name}', method: 'GET', prepare: async (srv, sh) => ({ path: `/api/servicePrincipals/${sh.sp.name}` }), allow: (c) => can(c, `${A}/servicePrincipals/read`, '/') },
  { id: 'GET /api/servicePrincipals/{appId}', method: 'GET', prepare: async (srv, sh) => ({ path: `/api/servicePrincipals/${sh.sp.appId}` }), allow: (c) => can(c, `${A}/servicePrincipals/read`, '/') },
  { id: 'DELETE /api/servicePrincipals/{name}', method: 'DELETE', prepare: async (srv) => ({ path: `/api/servicePrincipals/${(await mkSp(srv)).name}` }), allow: (c) => can(c, `${A}/servicePrincipals/delete`, '/') },
  {
    id: 'POST /api/servicePrincipals/{name}/credentials', method: 'POST',
    prepare: async (srv) => ({ path: `/api/servicePrincipals/${(await mkSp(srv)).name}/credentials`, body: { type: 'secret', expiresInDays: 30 } }),
    allow: (c) => can(c, `${A}/servicePrincipals/credentials/write`, '/'),
  },
  {
    id: 'DELETE /api/servicePrincipals/{name}/credentials/{keyId}', method: 'DELETE',
    prepare: async (srv) => { const sp = await mkSp(srv); return { path: `/api/servicePrincipals/${sp.name}/credentials/${sp.keyId}` }; },
    allow: (c) => can(c, `${A}/servicePrincipals/credentials/write`, '/'),
  },

  { id: 'GET /api/identities', method: 'GET', prepare: () => ({ path: '/api/identities' }), allow: (c) => can(c, `${MI}/read`, '/identities') },
  {
    id: 'POST /api/identities', method: 'POST',
    prepare: () => { const name = uniq(SCOPED); return { path: '/api/identities', body: { name }, scope: `/identities/${name}` }; },
    allow: (c, fx) => can(c, `${MI}/write`, fx.scope),
  },
  {
    id: 'GET /api/identities/{name}', method: 'GET',
    prepare: async (srv, sh) => ({ path: `/api/identities/${sh.mi.name}`, scope: `/identities/${sh.mi.name}` }),
    allow: (c, fx) => can(c, `${MI}/read`, fx.scope),
  },
  {
    id: 'GET /api/identities/{scoped identity}', method: 'GET',
    prepare: () => ({ path: `/api/identities/${SCOPED}`, scope: `/identities/${SCOPED}` }),
    allow: (c, fx) => can(c, `${MI}/read`, fx.scope),
  },
  {
    id: 'DELETE /api/identities/{name}', method: 'DELETE',
    prepare: async (srv) => { const mi = await mkMi(srv); return { path: `/api/identities/${mi.name}`, scope: `/identities/${mi.name}` }; },
    allow: (c, fx) => can(c, `${MI}/delete`, fx.scope),
  },
  {
    id: 'POST /api/identities/{name}/sessions (+1 identity)', method: 'POST',
    prepare: async (srv) => {
      const a = await mkMi(srv);
      const b = await mkMi(srv);
      return { path: `/api/identities/${a.name}/sessions`, body: { identities: [b.name], ttlSeconds: 300 }, scopes: [`/identities/${a.name}`, `/identities/${b.name}`] };
    },
    allow: (c, fx) => fx.scopes.every((s) => can(c, `${MI}/assign/action`, s)),
  },
  {
    id: 'POST /api/identities/{scoped identity}/sessions', method: 'POST',
    prepare: () => ({ path: `/api/identities/${SCOPED}/sessions`, body: { ttlSeconds: 300 }, scope: `/identities/${SCOPED}` }),
    allow: (c, fx) => can(c, `${MI}/assign/action`, fx.scope),
  },
  {
    // Made by the administrator, so no matrix caller is its creator.
    id: 'DELETE /api/identities/sessions/{id}', method: 'DELETE',
    prepare: async (srv) => {
      const mi = await mkMi(srv);
      const s = await apiOk(srv, 'POST', `/api/identities/${mi.name}/sessions`, { body: {} }, 201);
      return { path: `/api/identities/sessions/${s.id}`, scope: `/identities/${mi.name}` };
    },
    allow: (c, fx) => can(c, `${MI}/assign/action`, fx.scope),
  },

  { id: 'GET /api/roleDefinitions', method: 'GET', prepare: () => ({ path: '/api/roleDefinitions' }), allow: (c) => can(c, `${A}/roleDefinitions/read`, '/') },
  { id: 'GET /api/roleDefinitions/{name}', method: 'GET', prepare: () => ({ path: '/api/roleDefinitions/Reader' }), allow: (c) => can(c, `${A}/roleDefinitions/read`, '/') },
  { id: 'POST /api/roleDefinitions', method: 'POST', prepare: () => ({ path: '/api/roleDefinitions', body: customRole() }), allow: (c) => can(c, `${A}/roleDefinitions/write`, '/') },
  {
    id: 'DELETE /api/roleDefinitions/{id}', method: 'DELETE',
    prepare: async (srv) => { const r = await apiOk(srv, 'POST', '/api/roleDefinitions', { body: customRole() }, 201); return { path: `/api/roleDefinitions/${r.name || r.id.split('/').pop()}` }; },
    allow: (c) => can(c, `${A}/roleDefinitions/delete`, '/'),
  },

  { id: 'GET /api/roleAssignments', method: 'GET', prepare: () => ({ path: '/api/roleAssignments' }), allow: (c) => can(c, `${A}/roleAssignments/read`, '/') },
  {
    id: 'POST /api/roleAssignments', method: 'POST',
    prepare: async (srv) => ({ path: '/api/roleAssignments', body: { principal: `sp:${(await mkSp(srv)).name}`, role: 'Reader', scope: '/' } }),
    allow: (c) => can(c, `${A}/roleAssignments/write`, '/'),
  },
  {
    id: 'POST /api/roleAssignments (Owner, scope /identities/x)', method: 'POST',
    prepare: async (srv) => { const mi = await mkMi(srv); return { path: '/api/roleAssignments', body: { principal: `identity:${mi.name}`, role: 'Owner', scope: `/identities/${mi.name}` }, scope: `/identities/${mi.name}` }; },
    allow: (c, fx) => can(c, `${A}/roleAssignments/write`, fx.scope),
  },
  {
    id: 'DELETE /api/roleAssignments/{id}', method: 'DELETE',
    prepare: async (srv) => { const sp = await mkSp(srv); const ra = await assignRole(srv, sp.appId, 'Reader'); return { path: `/api/roleAssignments/${ra.id.split('/').pop()}` }; },
    allow: (c) => can(c, `${A}/roleAssignments/delete`, '/'),
  },

  {
    // Everyone may list; only holders of the read action see other principals' eligibilities.
    id: 'GET /api/roleEligibilities', method: 'GET', prepare: () => ({ path: '/api/roleEligibilities' }),
    allow: () => true,
    check: (r, c, fx, sh) => {
      const foreign = r.json.value.filter((e) => e.principalId !== c.id);
      if (can(c, `${A}/roleEligibilitySchedules/read`, '/')) return r.json.value.some((e) => e.id === sh.act.eligibility.id) ? null : 'a reader must see every eligibility';
      return foreign.length ? `sees ${foreign.length} eligibilities of other principals` : null;
    },
  },
  {
    id: 'POST /api/roleEligibilities', method: 'POST',
    prepare: async (srv) => ({ path: '/api/roleEligibilities', body: { principal: `sp:${(await mkSp(srv)).name}`, role: 'Reader', scope: '/', maxDuration: 'PT1H' } }),
    allow: (c) => can(c, `${A}/roleEligibilitySchedules/write`, '/'),
  },
  {
    id: 'DELETE /api/roleEligibilities/{id}', method: 'DELETE',
    prepare: async (srv) => {
      const sp = await mkSp(srv);
      const e = await apiOk(srv, 'POST', '/api/roleEligibilities', { body: { principal: sp.appId, role: 'Reader', scope: '/', maxDuration: 'PT1H' } }, 201);
      return { path: `/api/roleEligibilities/${e.id}` };
    },
    allow: (c) => can(c, `${A}/roleEligibilitySchedules/delete`, '/'),
  },
  {
    // Someone else's eligibility: no caller holds it, whatever its roles.
    id: 'POST /api/roleActivations (not eligible)', method: 'POST',
    prepare: async (srv) => {
      const sp = await mkSp(srv);
      const e = await apiOk(srv, 'POST', '/api/roleEligibilities', { body: { principal: sp.appId, role: 'Owner', scope: '/', maxDuration: 'PT1H' } }, 201);
      return { path: '/api/roleActivations', body: { eligibility: e.id, justification: 'not mine', duration: 'PT5M' } };
    },
    allow: () => false,
  },
  {
    id: 'GET /api/roleActivations', method: 'GET', prepare: () => ({ path: '/api/roleActivations' }),
    allow: () => true,
    check: (r, c, fx, sh) => {
      const foreign = r.json.value.filter((a) => a.principalId !== c.id);
      if (can(c, `${A}/roleAssignmentSchedules/read`, '/')) return r.json.value.some((a) => a.id === sh.act.activation.id) ? null : 'a reader must see every activation';
      return foreign.length ? `sees ${foreign.length} activations of other principals` : null;
    },
  },
  {
    id: 'POST /api/roleActivations/{id}/approve', method: 'POST',
    prepare: async (srv, sh) => ({ path: `/api/roleActivations/${(await mkActivation(srv, { approvers: [`sp:${sh.boss.name}`] })).activation.id}/approve`, body: {} }),
    allow: () => false,
  },
  {
    id: 'POST /api/roleActivations/{id}/deny', method: 'POST',
    prepare: async (srv, sh) => ({ path: `/api/roleActivations/${(await mkActivation(srv, { approvers: [`sp:${sh.boss.name}`] })).activation.id}/deny`, body: {} }),
    allow: () => false,
  },
  {
    id: 'DELETE /api/roleActivations/{id}', method: 'DELETE',
    prepare: async (srv) => ({ path: `/api/roleActivations/${(await mkActivation(srv)).activation.id}` }),
    allow: (c) => can(c, `${A}/roleAssignments/delete`, '/'),
  },

  { id: 'GET /api/audit', method: 'GET', prepare: () => ({ path: '/api/audit?after=0&limit=5' }), allow: (c) => can(c, 'Microsoft.Insights/auditLogs/read', '/') },
];

// ---------------------------------------------------------------- the matrix

function classify(status) {
  if (status === 401 || status === 403) return 'deny';
  if (status >= 500) return 'error';
  if (status >= 200 && status < 500) return 'allow';
  return 'error';
}

test('authorization matrix: every endpoint x every caller', async (t) => {
  const srv = await startServer();
  try {
    // Principals with roles at "/" (and one Owner of a single identity).
    await apiOk(srv, 'POST', '/api/identities', { body: { name: SCOPED } }, 201);
    const roleCallers = [
      ['no role', []],
      ['Reader', [['Reader', '/']]],
      ['Contributor', [['Contributor', '/']]],
      ['User Access Administrator', [['User Access Administrator', '/']]],
      ['Owner', [['Owner', '/']]],
      [`Owner at /identities/${SCOPED}`, [['Owner', `/identities/${SCOPED}`]]],
    ];
    const callers = [];
    let ownerSp;
    for (const [name, roles] of roleCallers) {
      const sp = await createSp(srv, uniq('caller'));
      for (const [role, scope] of roles) await assignRole(srv, `sp:${sp.name}`, role, scope);
      const token = await clientToken(srv, sp.appId, sp.secret);
      callers.push({ name, roles, token, id: sp.id, authn: true });
      if (name === 'Owner') ownerSp = { ...sp, token };
    }
    callers.push({ name: 'administrator token', roles: [['Owner', '/']], token: srv.token, id: 'admin', authn: true });

    // Credentials that must not authenticate, all built from the Owner's.
    const real = decodeJwt(ownerSp.token);
    const { privateKey } = attackerKey();
    const now = Math.floor(Date.now() / 1000);
    const [h64, , s64] = ownerSp.token.split('.');
    const vaultToken = await clientToken(srv, ownerSp.appId, ownerSp.secret, 'vault');
    const unauth = [
      ['anonymous', null],
      ['expired 2 h ago (attacker-signed)', signJwt(real.header, { ...real.payload, iat: now - 7200, nbf: now - 7200, exp: now - 3600 }, privateKey, 'RS256')],
      ['wrong audience (real vault token of the Owner)', vaultToken],
      ['tampered payload (Owner token, exp +1 day, original signature)', `${h64}.${Buffer.from(JSON.stringify({ ...real.payload, exp: real.payload.exp + 86400 })).toString('base64url')}.${s64}`],
      ['forged signature (Owner claims, attacker RSA key, server kid)', signJwt(real.header, real.payload, privateKey, 'RS256')],
      ['alg none (Owner claims)', signJwt({ ...real.header, alg: 'none' }, real.payload, null, 'none')],
    ];
    callers.unshift(...unauth.map(([name, token]) => ({ name, roles: [], token, id: null, authn: false })));

    // Objects shared by read-only cells.
    const shared = {
      user: await mkUser(srv),
      sp: await mkSp(srv),
      mi: await mkMi(srv),
      boss: await mkSp(srv),
    };
    shared.act = await mkActivation(srv);

    const problems = [];
    const cells = {}; // endpoint id -> caller name -> status
    const counts = new Map(callers.map((c) => [c.name, { allow: 0, deny: 0, unexpectedAllow: 0, unexpectedDeny: 0, wrongCode: 0, notDone: 0, error: 0 }]));
    for (const ep of ENDPOINTS) {
      cells[ep.id] = {};
      for (const c of callers) {
        const fx = await ep.prepare(srv, shared);
        const r = await api(srv, ep.method, fx.path, { token: c.token, body: fx.body });
        const got = classify(r.status);
        const want = c.authn && ep.allow(c, fx) ? 'allow' : 'deny';
        const n = counts.get(c.name);
        cells[ep.id][c.name] = r.status;
        const where = `${ep.id} as ${c.name}: ${r.status} ${r.text.slice(0, 300)}`;
        if (got === 'error') { n.error++; problems.push(`5xx: ${where}`); continue; }
        n[got]++;
        if (got === 'allow' && want === 'deny') { n.unexpectedAllow++; problems.push(`UNEXPECTED ALLOW: ${where}`); continue; }
        if (got === 'deny' && want === 'allow') { n.unexpectedDeny++; problems.push(`unexpected deny: ${where}`); continue; }
        if (got === 'deny') {
          const code = c.authn ? 403 : 401;
          if (r.status !== code) { n.wrongCode++; problems.push(`wrong refusal (${code} expected): ${where}`); }
          if (typeof r.json?.error?.code !== 'string') problems.push(`refusal without a JSON error: ${where}`);
          if (r.status === 401 && !r.headers['www-authenticate']) problems.push(`401 without WWW-Authenticate: ${where}`);
        } else {
          const done = ep.done ? ep.done.includes(r.status) : r.status >= 200 && r.status < 300;
          if (!done) { n.notDone++; problems.push(`allowed but not done: ${where}`); continue; }
          const why = ep.check && ep.check(r, c, fx, shared);
          if (why) problems.push(`wrong content: ${where.split(':')[0]}: ${why}`);
        }
      }
    }

    // The report: per caller, then the whole matrix (status codes; * marks a mismatch).
    const w = Math.max(...callers.map((c) => c.name.length));
    t.diagnostic(`${'caller'.padEnd(w)}  allow  deny  unexpected-allow  unexpected-deny  wrong-code  not-done  5xx`);
    for (const c of callers) {
      const n = counts.get(c.name);
      t.diagnostic(`${c.name.padEnd(w)}  ${String(n.allow).padStart(5)}  ${String(n.deny).padStart(4)}  ${String(n.unexpectedAllow).padStart(16)}  ${String(n.unexpectedDeny).padStart(15)}  ${String(n.wrongCode).padStart(10)}  ${String(n.notDone).padStart(8)}  ${String(n.error).padStart(3)}`);
    }
    t.diagnostic(`callers: ${callers.map((c, i) => `${i + 1}=${c.name}`).join('; ')}`);
    const ew = Math.max(...ENDPOINTS.map((e) => e.id.length));
    t.diagnostic(`${'endpoint'.padEnd(ew)}  ${callers.map((c, i) => String(i + 1).padStart(4)).join('')}`);
    for (const ep of ENDPOINTS) {
      const row = callers.map((c) => {
        const st = cells[ep.id][c.name];
        const bad = problems.some((p) => p.includes(`${ep.id} as ${c.name}:`));
        return `${st}${bad ? '*' : ' '}`.padStart(4);
      }).join('');
      t.diagnostic(`${ep.id.padEnd(ew)}  ${row}`);
    }
    const total = [...counts.values()].reduce((s, n) => s + n.allow + n.deny + n.error, 0);
    t.diagnostic(`${total} cells, ${problems.length} problems`);
    for (const p of problems) t.diagnostic(p);

    const unexpectedAllows = problems.filter((p) => p.startsWith('UNEXPECTED ALLOW'));
    assert.deepEqual(unexpectedAllows, [], 'no request may pass authorization that the roles do not grant');
    assert.deepEqual(problems, [], 'every cell as the role semantics say');
    assert.equal(total, ENDPOINTS.length * callers.length);
    // The server is still healthy after all of it.
    assert.equal((await request(srv, { path: '/health' })).status, 200);
  } finally {
    await srv.stop();
  }
});

test('scope containment: an Owner of one identity manages it and nothing beside or above it', async () => {
  const srv = await startServer();
  try {
    const mine = uniq('mine');
    await apiOk(srv, 'POST', '/api/identities', { body: { name: mine } }, 201);
    const sibling = `${mine}x`; // shares the prefix: "/identities/minex" is not under "/identities/mine"
    await apiOk(srv, 'POST', '/api/identities', { body: { name: sibling } }, 201);
    const sp = await createSp(srv);
    await assignRole(srv, sp.appId, 'Owner', `/identities/${mine}`);
    const tok = await clientToken(srv, sp.appId, sp.secret);
    const as = (m, p, body) => api(srv, m, p, { token: tok, body });
    assert.equal((await as('GET', `/api/identities/${mine}`)).status, 200);
    assert.equal((await as('POST', `/api/identities/${mine}/sessions`, {})).status, 201);
    assert.equal((await as('GET', `/api/identities/${sibling}`)).status, 403);
    assert.equal((await as('POST', `/api/identities/${sibling}/sessions`, {})).status, 403);
    assert.equal((await as('POST', `/api/identities/${mine}/sessions`, { identities: [sibling] })).status, 403, 'every extra identity is checked');
    assert.equal((await as('GET', '/api/identities')).status, 403, '/identities is above the assignment');
    assert.equal((await as('DELETE', `/api/identities/${sibling}`)).status, 403);
    // Owner includes roleAssignments/write, but only at or below its scope.
    const other = await createSp(srv);
    assert.equal((await as('POST', '/api/roleAssignments', { principal: other.appId, role: 'Reader', scope: '/' })).status, 403);
    assert.equal((await as('POST', '/api/roleAssignments', { principal: other.appId, role: 'Owner', scope: `/identities/${sibling}` })).status, 403);
    assert.equal((await as('POST', '/api/roleAssignments', { principal: other.appId, role: 'Reader', scope: `/identities/${mine}` })).status, 201);
    assert.equal((await as('DELETE', `/api/identities/${mine}`)).status, 204);
  } finally {
    await srv.stop();
  }
});

test('custom role definitions: created, found by name, effective when assigned, deletable only when unused', async () => {
  const srv = await startServer();
  try {
    const roleName = uniq('Identity Reader');
    const def = customRole();
    def.properties.roleName = roleName;
    const created = await api(srv, 'POST', '/api/roleDefinitions', { body: def });
    assert.equal(created.status, 201, created.text);
    const id = created.json.name;
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(created.json.properties.roleName, roleName);
    assert.equal(created.json.properties.type, 'CustomRole');
    for (const ref of [roleName, roleName.toUpperCase(), id]) {
      const g = await api(srv, 'GET', `/api/roleDefinitions/${encodeURIComponent(ref)}`);
      assert.equal(g.status, 200, `${ref}: ${g.text}`);
      assert.equal(g.json.properties.roleName, roleName, `${ref}: the stored name`);
      assert.deepEqual(g.json.properties.permissions[0].actions, def.properties.permissions[0].actions);
    }
    const listed = await apiOk(srv, 'GET', '/api/roleDefinitions', {}, 200);
    assert.equal(listed.value.filter((r) => r.properties.roleName === roleName).length, 1);

    // Names are unique (case-insensitively, built-ins included); unknown fields are refused.
    const dup = customRole();
    dup.properties.roleName = roleName.toLowerCase();
    assert.equal((await api(srv, 'POST', '/api/roleDefinitions', { body: dup })).status, 409);
    const builtin = customRole();
    builtin.properties.roleName = 'reader';
    assert.equal((await api(srv, 'POST', '/api/roleDefinitions', { body: builtin })).status, 409);
    const typo = customRole();
    typo.properties.permissions[0].notactions = ['*'];
    assert.equal((await api(srv, 'POST', '/api/roleDefinitions', { body: typo })).status, 400, 'a misspelt notActions must not be ignored');
    const noPerm = customRole();
    noPerm.properties.permissions = [{ actions: [], notActions: [] }];
    assert.equal((await api(srv, 'POST', '/api/roleDefinitions', { body: noPerm })).status, 400);

    // Assigned, it grants exactly its actions.
    const mi = await apiOk(srv, 'POST', '/api/identities', { body: { name: uniq('mi') } }, 201);
    const sp = await createSp(srv);
    const tok = await clientToken(srv, sp.appId, sp.secret);
    assert.equal((await api(srv, 'GET', `/api/identities/${mi.name}`, { token: tok })).status, 403);
    const ra = await assignRole(srv, sp.appId, roleName);
    assert.equal((await api(srv, 'GET', `/api/identities/${mi.name}`, { token: tok })).status, 200);
    assert.equal((await api(srv, 'GET', '/api/users', { token: tok })).status, 403);
    assert.equal((await api(srv, 'DELETE', `/api/identities/${mi.name}`, { token: tok })).status, 403);

    // In use, or built in: not deletable.
    const inUse = await api(srv, 'DELETE', `/api/roleDefinitions/${id}`); // checked last
    assert.equal((await api(srv, 'GET', `/api/roleDefinitions/${id}`)).status, 200, 'still there');
    assert.equal((await api(srv, 'DELETE', '/api/roleDefinitions/Reader')).status, 409);
    await apiOk(srv, 'DELETE', `/api/roleAssignments/${ra.id}`, {}, 204);
    assert.equal((await api(srv, 'GET', `/api/identities/${mi.name}`, { token: tok })).status, 403, 'the assignment is gone');
    await apiOk(srv, 'DELETE', `/api/roleDefinitions/${id}`, {}, 204);
    assert.equal((await api(srv, 'GET', `/api/roleDefinitions/${id}`)).status, 404);
    assert.equal(inUse.status, 409, `DELETE of a role still assigned answers 409 (docs/iam.md): ${inUse.status} ${inUse.text}`);
  } finally {
    await srv.stop();
  }
});
