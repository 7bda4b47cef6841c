// sites-slots.test.mjs - deployment slots and swap (docs/sites.md "Deployment slots"): a slot
// is created with its app's settings and answers at NAME-SLOT.D; a deploy to it leaves
// production alone; a swap exchanges content, command and non-sticky settings while sticky
// settings, access rules and identities stay; RBAC on the slot alone deploys but cannot swap;
// bad names and targets are refused; an app with slots is not deleted; and a swap cut short on
// disk by a crash is rolled back at start-up.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, renameSync, readFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, request, DOMAIN, SCALE, sleep } from './lib/harness.mjs';
import { api, apiOk, uniq, cliAsync, cliEnv, createSp, clientToken, assignRole } from './lib/iam.mjs';

const EXAMPLE = new URL('../../examples/app-node', import.meta.url).pathname;
let srv;
let home;
let env;
let tmp;

const appName = (p) => uniq(p).replace(/[^a-z0-9-]/g, '').slice(0, 30);
const get = (host, path = '/') => request(srv, { host: `${host}.${DOMAIN}`, path, timeout: 30000 * SCALE });

function site(text) {
  const d = mkdtempSync(join(tmp, 'site-'));
  writeFileSync(join(d, 'index.html'), text);
  return d;
}

async function deploy(name, dir, extraEnv = {}) {
  const r = await cliAsync(['app', 'deploy', name, dir], { env: { ...env, ...extraEnv }, timeoutMs: 120000 * SCALE });
  assert.equal(r.status, 0, r.stderr + r.stdout);
}

async function waitText(host, want, path = '/') {
  const t0 = Date.now();
  for (;;) {
    const r = await get(host, path);
    if (r.status === 200 && r.text === want) return;
    if (Date.now() - t0 > 30000 * SCALE) throw new Error(`${host}${path}: wanted ${JSON.stringify(want)}, got ${r.status} ${r.text}`);
    await sleep(150);
  }
}

const list = async (name, which = 'appsettings') => (await apiOk(srv, 'POST', `/api/apps/${name}/config/${which}/list`, {}, 200)).properties;

test.before(async () => {
  srv = await startServer();
  home = mkdtempSync(join(tmpdir(), 'rp-slots-home-'));
  tmp = mkdtempSync(join(tmpdir(), 'rp-slots-'));
  env = cliEnv(srv, home);
});

test.after(async () => {
  if (srv) await srv.stop();
  rmSync(home, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
});

test('a slot: created with the app\'s settings, its own host, deploys, and a swap with sticky settings', async () => {
  const name = appName('shop');
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { cors: { allowedOrigins: ['https://shop.example'] } } } }, 201);
  await deploy(name, site('v1\n'));
  const created = await apiOk(srv, 'PUT', `/api/apps/${name}/slots/staging`, { body: {} }, 201);
  assert.equal(created.name, `${name}-staging`);
  assert.equal(created.id, `/apps/${name}/slots/staging`);
  assert.equal(created.properties.defaultHostName, `${name}-staging.${DOMAIN}`);
  assert.deepEqual(created.properties.cors.allowedOrigins, ['https://shop.example']);
  // A slot of an app with built-in authentication starts with it (never more open).
  const guarded = appName('guard');
  await apiOk(srv, 'PUT', `/api/apps/${guarded}`, { body: {} }, 201);
  await apiOk(srv, 'PUT', `/api/apps/${guarded}/config/authsettingsV2`, { body: { properties: { platform: { enabled: true } } } }, 200);
  await apiOk(srv, 'PUT', `/api/apps/${guarded}/slots/qa`, { body: {} }, 201);
  assert.equal((await apiOk(srv, 'GET', `/api/apps/${guarded}/slots/qa/config/authsettingsV2`, {}, 200)).properties.platform.enabled, true);
  assert.equal((await get(`${guarded}-qa`)).status, 401);
  const slots = await apiOk(srv, 'GET', `/api/apps/${name}/slots`, {}, 200);
  assert.deepEqual(slots.value.map((x) => x.name), [`${name}-staging`]);
  assert.equal((await get(`${name}-staging`)).status, 404); // nothing deployed to the slot yet

  await deploy(`${name}-staging`, site('v2\n'));
  await waitText(`${name}-staging`, 'v2\n');
  await waitText(name, 'v1\n');

  await apiOk(srv, 'PUT', `/api/apps/${name}/config/appsettings`, { body: { properties: { FEATURE: 'prod-feature', DB: 'prod-db' } } }, 200);
  await apiOk(srv, 'PUT', `/api/apps/${name}/slots/staging/config/appsettings`, { body: { properties: { FEATURE: 'new-feature', DB: 'stage-db' } } }, 200);
  await apiOk(srv, 'PUT', `/api/apps/${name}/config/connectionstrings`, { body: { properties: { main: { value: 'prod', type: 'Custom' } } } }, 200);
  await apiOk(srv, 'PUT', `/api/apps/${name}/config/slotConfigNames`, { body: { properties: { appSettingNames: ['DB'], connectionStringNames: ['main'] } } }, 200);
  assert.deepEqual((await apiOk(srv, 'GET', `/api/apps/${name}/config/slotConfigNames`, {}, 200)).properties, { appSettingNames: ['DB'], connectionStringNames: ['main'] });
  assert.equal((await api(srv, 'PUT', `/api/apps/${name}/slots/staging/config/slotConfigNames`, { body: { properties: { appSettingNames: [] } } })).status, 400);

  const r = await apiOk(srv, 'POST', `/api/apps/${name}/slots/staging/slotsswap`, { body: { targetSlot: 'production' } }, 200);
  assert.equal(r.production.name, name);
  await waitText(name, 'v2\n');
  await waitText(`${name}-staging`, 'v1\n');
  // Non-sticky settings moved with the content; sticky ones stayed.
  assert.deepEqual(await list(name), { FEATURE: 'new-feature', DB: 'prod-db' });
  assert.deepEqual(await list(`${name}-staging`), { FEATURE: 'prod-feature', DB: 'stage-db' });
  assert.deepEqual(await list(name, 'connectionstrings'), { main: { value: 'prod', type: 'Custom' } });
  assert.deepEqual(await list(`${name}-staging`, 'connectionstrings'), {});
  // Production's releases are now the slot's former ones (and the other way round).
  const rel = await apiOk(srv, 'GET', `/api/apps/${name}/releases`, {}, 200);
  assert.equal(rel.value.length, 1);
  // And back, from the production side.
  await apiOk(srv, 'POST', `/api/apps/${name}/slotsswap`, { body: { targetSlot: 'staging' } }, 200);
  await waitText(name, 'v1\n');
  await waitText(`${name}-staging`, 'v2\n');
  assert.deepEqual(await list(name), { FEATURE: 'prod-feature', DB: 'prod-db' });
  // A deploy to production after the swaps lands in production only.
  await deploy(name, site('v3\n'));
  await waitText(name, 'v3\n');
  await waitText(`${name}-staging`, 'v2\n');
});

test('swapping process apps: the command and content move, each restarts with its new release', async () => {
  const name = appName('api');
  const v1 = mkdtempSync(join(tmp, 'node1-'));
  const v2 = mkdtempSync(join(tmp, 'node2-'));
  cpSync(EXAMPLE, v1, { recursive: true });
  cpSync(EXAMPLE, v2, { recursive: true });
  writeFileSync(join(v1, 'version.txt'), '1\n');
  writeFileSync(join(v2, 'version.txt'), '2\n');
  let r = await cliAsync(['app', 'create', name, '--command', 'node server.js', '--static', v1], { env, timeoutMs: 120000 * SCALE });
  assert.equal(r.status, 0, r.stderr);
  await waitText(name, 'hello from node, version 1\n');
  // Through the CLI: slot create, list, swap.
  r = await cliAsync(['app', 'slot', 'create', name, 'blue'], { env });
  assert.equal(r.status, 0, r.stderr);
  r = await cliAsync(['app', 'slot', 'list', name], { env });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${name}-blue`));
  await deploy(`${name}-blue`, v2);
  await waitText(`${name}-blue`, 'hello from node, version 2\n');
  r = await cliAsync(['app', 'swap', name, 'blue'], { env });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Swapped slot blue/);
  await waitText(name, 'hello from node, version 2\n');
  await waitText(`${name}-blue`, 'hello from node, version 1\n');
  // Each keeps its own identity (identities are sticky).
  const a = await apiOk(srv, 'GET', `/api/apps/${name}`, {}, 200);
  const b = await apiOk(srv, 'GET', `/api/apps/${name}/slots/blue`, {}, 200);
  if (a.identity && b.identity) assert.notEqual(a.identity.principalId, b.identity.principalId);
});

test('slot RBAC: a role on the slot deploys there but cannot swap it into production', async () => {
  const name = appName('rbac');
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: {} }, 201);
  await apiOk(srv, 'PUT', `/api/apps/${name}/slots/dev`, { body: {} }, 201);
  const sp = await createSp(srv);
  await assignRole(srv, sp.id, 'Website Contributor', `/apps/${name}/slots/dev`);
  const token = await clientToken(srv, sp.appId, sp.secret, 'management');
  await deploy(`${name}-dev`, site('dev\n'), { RAMPART_TOKEN: token });
  await waitText(`${name}-dev`, 'dev\n');
  const sw = await api(srv, 'POST', `/api/apps/${name}/slots/dev/slotsswap`, { token, body: { targetSlot: 'production' } });
  assert.equal(sw.status, 403, sw.text);
  assert.equal((await api(srv, 'PUT', `/api/apps/${name}`, { token, body: { properties: { minTlsVersion: '1.3' } } })).status, 403);
  assert.equal((await api(srv, 'GET', `/api/apps/${name}/slots/dev`, { token })).status, 200);
  // A Website Contributor on the app may swap.
  await assignRole(srv, sp.id, 'Website Contributor', `/apps/${name}`);
  assert.equal((await api(srv, 'POST', `/api/apps/${name}/slots/dev/slotsswap`, { token, body: { targetSlot: 'production' } })).status, 200);
  await waitText(name, 'dev\n');
});

test('refusals: names, targets, missing apps, too many slots, deleting an app with slots', async () => {
  const name = appName('bad');
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: {} }, 201);
  for (const slot of ['production', 'Bad', '-x', 'x'.repeat(20), 'a_b'])
    assert.equal((await api(srv, 'PUT', `/api/apps/${name}/slots/${slot}`, { body: {} })).status, 400, slot);
  assert.equal((await api(srv, 'PUT', '/api/apps/no-such-app-x/slots/s1', { body: {} })).status, 404);
  assert.equal((await api(srv, 'GET', `/api/apps/${name}/slots/nope`)).status, 404);
  await apiOk(srv, 'PUT', `/api/apps/${name}/slots/one`, { body: {} }, 201);
  // A slot of a slot is not a thing.
  assert.equal((await api(srv, 'PUT', `/api/apps/${name}-one/slots/two`, { body: {} })).status, 404);
  for (const body of [{}, { targetSlot: 'staging' }, { targetSlot: 7 }, 'not json'])
    assert.equal((await api(srv, 'POST', `/api/apps/${name}/slots/one/slotsswap`, { body })).status, 400, JSON.stringify(body));
  assert.equal((await api(srv, 'POST', `/api/apps/${name}/slotsswap`, { body: { targetSlot: 'nope' } })).status, 404);
  for (let i = 2; i <= 5; i++) await apiOk(srv, 'PUT', `/api/apps/${name}/slots/s${i}`, { body: {} }, 201);
  const six = await api(srv, 'PUT', `/api/apps/${name}/slots/s6`, { body: {} });
  assert.equal(six.status, 409, six.text);
  const del = await api(srv, 'DELETE', `/api/apps/${name}`);
  assert.equal(del.status, 409);
  assert.match(del.json.error.message, /slots/);
  for (const s of ['one', 's2', 's3', 's4', 's5']) await apiOk(srv, 'DELETE', `/api/apps/${name}/slots/${s}`, {}, 204);
  await apiOk(srv, 'DELETE', `/api/apps/${name}`, {}, 204);
});

test('a swap cut short between its rename and its commit is rolled back at start-up', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rp-slots-crash-'));
  const s2 = await startServer({ dataDir });
  const token = s2.token;
  const tenv = cliEnv(s2, home);
  try {
    await apiOk(s2, 'PUT', '/api/apps/crash', { body: {} }, 201);
    await apiOk(s2, 'PUT', '/api/apps/crash/slots/stage', { body: {} }, 201);
    let r = await cliAsync(['app', 'deploy', 'crash', site('prod\n')], { env: tenv });
    assert.equal(r.status, 0, r.stderr);
    r = await cliAsync(['app', 'deploy', 'crash-stage', site('stage\n')], { env: tenv });
    assert.equal(r.status, 0, r.stderr);
  } finally {
    await s2.stop({ keepData: true });
  }
  // A committed swap survives a restart as it is.
  let s1 = await startServer({ dataDir, init: false });
  s1.token = token;
  try {
    await apiOk(s1, 'POST', '/api/apps/crash/slotsswap', { body: { targetSlot: 'stage' } }, 200);
  } finally {
    await s1.stop({ keepData: true });
  }
  s1 = await startServer({ dataDir, init: false });
  s1.token = token;
  try {
    assert.equal((await request(s1, { host: `crash.${DOMAIN}`, path: '/' })).text, 'stage\n');
    assert.equal((await request(s1, { host: `crash-stage.${DOMAIN}`, path: '/' })).text, 'prod\n');
    await apiOk(s1, 'POST', '/api/apps/crash/slotsswap', { body: { targetSlot: 'stage' } }, 200);
    assert.doesNotMatch(s1.stderr, /rolled back/);
  } finally {
    await s1.stop({ keepData: true });
  }
  // What the rename of a swap does, without the commit that would record it.
  const a = join(dataDir, 'apps', 'crash', 'releases');
  const b = join(dataDir, 'apps', 'crash-stage', 'releases');
  assert.notEqual(readFileSync(join(a, '.owner'), 'utf8'), readFileSync(join(b, '.owner'), 'utf8'));
  renameSync(a, `${a}.x`);
  renameSync(b, a);
  renameSync(`${a}.x`, b);
  const s3 = await startServer({ dataDir, init: false });
  s3.token = token;
  try {
    const p = await request(s3, { host: `crash.${DOMAIN}`, path: '/' });
    const q = await request(s3, { host: `crash-stage.${DOMAIN}`, path: '/' });
    assert.equal(p.text, 'prod\n');
    assert.equal(q.text, 'stage\n');
    assert.match(s3.stderr, /rolled back/);
  } finally {
    await s3.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
