// sites-health.test.mjs - supervision of app processes (docs/sites.md "App processes"):
// zero-downtime replacement (a redeploy and a command change under a steady stream of
// requests: none fails, the old version answers while the new one starts, the new one answers
// after; each process in a cgroup of its own, and for the isolated tier a socket directory of
// its own, removed with it), a new version that never listens or exits at once (the old one keeps serving; the
// log says why), the health check (an app whose health path turns to 500 is replaced after
// WEBSITE_HEALTHCHECK_MAXPINGFAILURES failed checks, a healthy one is left alone; the checks
// carry Azure's user agent and the app's host) and healthCheckPath's validation.
import test from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, request, DOMAIN, SCALE, sleep } from './lib/harness.mjs';
import { api, apiOk, uniq } from './lib/iam.mjs';
import { makeZip } from './lib/zip.mjs';

// The app: `node server.mjs [LABEL [LISTEN_DELAY_MS]]`. Answers "LABEL INSTANCE" on /, where
// INSTANCE is random per process (pids repeat: each process has its own pid namespace); its
// health path answers what /health-code last set (200 at start) and keeps the last check's
// headers for /last-check.
const SERVER = String.raw`
import http from 'node:http';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';

const label = process.argv[2] || fs.readFileSync('version.txt', 'utf8').trim();
const delay = Number(process.argv[3] || process.env.LISTEN_DELAY_MS || 0);
const instance = randomBytes(6).toString('hex');
let code = 200;
let last = null;
const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://app');
  if (u.pathname === '/health') {
    last = req.headers;
    res.statusCode = code;
    return res.end(String(code));
  }
  if (u.pathname === '/health-code') {
    code = Number(u.searchParams.get('code'));
    return res.end('ok');
  }
  if (u.pathname === '/last-check') {
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify(last));
  }
  res.end(label + ' ' + instance);
});
const port = /^\d+$/.test(process.env.PORT) ? Number(process.env.PORT) : process.env.PORT;
setTimeout(() => server.listen(port, '127.0.0.1', () => console.log('listening: ' + label + ' ' + instance)), delay);
`;

let srv;
const appName = (p) => uniq(p).replace(/[^a-z0-9-]/g, '').slice(0, 30);
const agent = new https.Agent({ keepAlive: true, maxSockets: 8 });

async function get(name, path = '/', timeout = 30000 * SCALE) {
  try {
    return await request(srv, { host: `${name}.${DOMAIN}`, path, agent, timeout });
  } catch (e) {
    return { status: 0, text: String(e.message) };
  }
}

async function deploy(name, version, server = SERVER) {
  const d = await request(srv, {
    method: 'POST', host: `${name}.scm.${DOMAIN}`, path: '/api/zipdeploy', timeout: 60000 * SCALE,
    headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/zip' },
    body: makeZip([{ name: 'server.mjs', data: server }, { name: 'version.txt', data: `${version}\n` }]),
  });
  assert.equal(d.status, 200, d.text);
}

// Creates a process app with properties and app settings, deploys version 1 and waits for it.
async function create(name, properties = {}, settings = null) {
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { appCommandLine: 'node server.mjs', ...properties } } }, 201);
  if (settings) await apiOk(srv, 'PUT', `/api/apps/${name}/config/appsettings`, { body: { properties: settings } }, 200);
  await deploy(name, 1);
  return waitFor(name, (t) => t.startsWith('1 '), 'version 1');
}

// Polls / until its text passes ok; returns the text.
async function waitFor(name, ok, what, limit = 30000 * SCALE) {
  const t0 = Date.now();
  let r;
  for (;;) {
    r = await get(name, '/', 5000 * SCALE);
    if (r.status === 200 && ok(r.text)) return r.text;
    if (Date.now() - t0 > limit) throw new Error(`${name}: no ${what}: ${r.status} ${r.text}`);
    await sleep(100);
  }
}

const logs = async (name) => (await apiOk(srv, 'GET', `/api/apps/${name}/logs`, {}, 200)).text;

// Requests from `workers` loops until stop(); each result is {t0, t1, status, text}.
function hammer(name, workers = 3) {
  const results = [];
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const t0 = Date.now();
      const r = await get(name, '/', 20000 * SCALE);
      results.push({ t0, t1: Date.now(), status: r.status, text: r.text });
    }
  });
  return { results, async stop() { running = false; await Promise.all(loops); } };
}

// The app's cgroup leaves (one per live process), on this machine's layout; null without cgroups.
function leaves(name) {
  const base = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup/rampart' : '/sys/fs/cgroup/pids/rampart';
  return existsSync(base) ? readdirSync(base).filter((d) => d.startsWith(`app-${name}-`)) : null;
}

// Waits until the replaced processes have gone: one cgroup leaf left, and check() true.
async function settled(name, check = () => true) {
  const t0 = Date.now();
  for (;;) {
    const l = leaves(name);
    if ((l === null || l.length === 1) && check()) return;
    if (Date.now() - t0 > 20000 * SCALE) throw new Error(`${name}: leaves ${JSON.stringify(l)}`);
    await sleep(200);
  }
}

// What a switch under load must show: every request answered 200, the old version still
// answering requests sent while the new one was starting (it listens `delay` ms after `since`,
// when the deploy or the change was answered), the new one answering at the end.
function checkSwitch(results, { since, oldLabel, newLabel, delay }) {
  const failed = results.filter((r) => r.status !== 200);
  assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${results.length} requests failed`);
  const label = (r) => r.text.split(' ')[0];
  assert.ok(results.some((r) => r.t0 > since + delay / 4 && r.t0 < since + (3 * delay) / 4 && label(r) === oldLabel),
    `the old version stopped answering while the new one started: ${JSON.stringify(results.filter((r) => r.t0 > since).slice(0, 5))}`);
  assert.ok(results.slice(-5).every((r) => label(r) === newLabel), `the new version answers last: ${JSON.stringify(results.slice(-5))}`);
  for (const r of results) assert.ok([oldLabel, newLabel].includes(label(r)), r.text);
}

test.before(async () => {
  srv = await startServer();
});
test.after(async () => {
  agent.destroy();
  if (srv) await srv.stop();
});

test('a redeploy: the old process answers until the new one listens, then the new one; no request fails', async () => {
  const name = appName('zd');
  await create(name);
  const h = hammer(name);
  await sleep(300);
  // Version 2 listens 4 s after it starts: the old process must carry the requests meanwhile.
  await deploy(name, 2, SERVER.replace('process.env.LISTEN_DELAY_MS || 0', '4000'));
  const since = Date.now();
  await waitFor(name, (t) => t.startsWith('2 '), 'version 2', 60000 * SCALE);
  await sleep(3000); // past the old process's drain and stop
  await h.stop();
  checkSwitch(h.results, { since, oldLabel: '1', newLabel: '2', delay: 4000 });
  const log = await logs(name);
  assert.match(log, /pid \d+ takes the requests; stopping pid \d+ in \d+ ms/);
  // Both processes had a cgroup of their own; the old one's goes with it.
  await settled(name);
});

test('a changed command: the same switch, no request fails', async () => {
  const name = appName('zc');
  await create(name);
  const h = hammer(name);
  await sleep(300);
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { appCommandLine: 'node server.mjs cmd2 4000' } } }, 200);
  const since = Date.now();
  await waitFor(name, (t) => t.startsWith('cmd2 '), 'the new command', 60000 * SCALE);
  await sleep(3000);
  await h.stop();
  checkSwitch(h.results, { since, oldLabel: '1', newLabel: 'cmd2', delay: 4000 });
});

test('isolated tier: the new process gets its own socket directory and cgroup; the old ones go', async () => {
  const name = appName('zi');
  await create(name, { sandbox: { tier: 'isolated' } });
  const run1 = join(srv.dataDir, 'apps', name, 'run.1');
  const h = hammer(name);
  await sleep(300);
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { appCommandLine: 'node server.mjs iso2 4000' } } }, 200);
  const since = Date.now();
  await waitFor(name, (t) => t.startsWith('iso2 '), 'the second process', 60000 * SCALE);
  assert.ok(existsSync(join(run1, 'app.sock')), 'the second process listens in run.1');
  await settled(name);
  // A third goes back to the first slot, and run.1 goes with the second process.
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { appCommandLine: 'node server.mjs iso3' } } }, 200);
  await waitFor(name, (t) => t.startsWith('iso3 '), 'the third process', 60000 * SCALE);
  await sleep(1000);
  await h.stop();
  const failed = h.results.filter((r) => r.status !== 200);
  assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${h.results.length} requests failed`);
  assert.ok(h.results.some((r) => r.t0 > since + 1000 && r.t0 < since + 3000 && r.text.startsWith('1 ')), 'the first process answered while the second started');
  await settled(name, () => !existsSync(run1));
  assert.ok(existsSync(join(srv.dataDir, 'apps', name, 'run', 'app.sock')));
});

test('a new version that never listens, or exits, leaves the old one serving; the log says why', async () => {
  const name = appName('nl');
  const first = await create(name, {}, { WEBSITES_CONTAINER_START_TIME_LIMIT: '3' });
  const h = hammer(name, 2);
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { appCommandLine: 'node -e "setInterval(() => {}, 1000)"' } } }, 200);
  // Past the start time limit and a retry.
  const t0 = Date.now();
  let log = '';
  while (!/was not ready within 3 s \(nothing accepts connections on PORT\): stopping it/.test(log)) {
    assert.ok(Date.now() - t0 < 30000 * SCALE, `no readiness failure in the log:\n${log.slice(-2000)}`);
    await sleep(500);
    log = await logs(name);
  }
  await sleep(1500);
  await h.stop();
  log = await logs(name);
  assert.match(log, /the new process did not take over \(not ready within 3 s .*\); pid \d+ keeps serving; retrying in \d+ ms/);
  assert.deepEqual(h.results.filter((r) => r.status !== 200).slice(0, 5), []);
  assert.ok(h.results.length > 10);
  for (const r of h.results) assert.equal(r.text, first, 'the first process answers throughout');
  const state = await apiOk(srv, 'GET', `/api/apps/${name}`, {}, 200);
  assert.equal(state.properties.appCommandLine, 'node -e "setInterval(() => {}, 1000)"');
  // A command that exits at once: the same.
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { appCommandLine: 'exit 7' } } }, 200);
  const t1 = Date.now();
  while (!/did not take over \(process exited \(status 7/.test(log)) {
    assert.ok(Date.now() - t1 < 30000 * SCALE, `no exit in the log:\n${log.slice(-2000)}`);
    await sleep(300);
    log = await logs(name);
  }
  assert.equal((await get(name)).text, first);
  // A good command again: it takes over.
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { appCommandLine: 'node server.mjs good' } } }, 200);
  await waitFor(name, (t) => t.startsWith('good '), 'the good command', 60000 * SCALE);
});

test('health check: an unhealthy app is replaced after the failed checks, a healthy one is not', async () => {
  const sick = appName('hs');
  const well = appName('hw');
  const settings = { WEBSITE_HEALTHCHECK_MAXPINGFAILURES: '2' };
  const sick0 = await create(sick, { healthCheckPath: '/health' }, settings);
  const well0 = await create(well, { healthCheckPath: '/health' }, settings);
  assert.equal((await apiOk(srv, 'GET', `/api/apps/${sick}`, {}, 200)).properties.healthCheckPath, '/health');
  assert.equal((await get(sick, '/health-code?code=500')).status, 200);
  // Two failed checks 10 s apart, then a new process that must pass its own check.
  const t0 = Date.now();
  const now = await waitFor(sick, (t) => t !== sick0, 'a new process', 60000 * SCALE);
  assert.ok(now.startsWith('1 '), now);
  assert.ok(Date.now() - t0 > 5000, 'not restarted before the checks failed');
  const log = await logs(sick);
  assert.match(log, /health check GET \/health of pid \d+ failed \(1 in a row; 2 restart it\): status 500/);
  assert.match(log, /health check GET \/health of pid \d+ failed \(2 in a row; 2 restart it\): status 500/);
  assert.match(log, /pid \d+ is unhealthy: starting a new process/);
  assert.match(log, /pid \d+ is ready after \d+ ms \(its health check passed\)/);
  // The healthy app was checked all along and kept its process.
  assert.equal((await get(well)).text, well0);
  const wlog = await logs(well);
  assert.doesNotMatch(wlog, /health check GET .* failed/);
  const check = JSON.parse((await get(well, '/last-check')).text);
  assert.equal(check['user-agent'], 'ReadyForRequest/1.0 (HealthCheck)');
  assert.equal(check.host, `${well}.${DOMAIN}`);
  assert.equal(check['x-forwarded-for'], undefined);
  // The new process of the sick app is healthy and stays.
  await sleep(12000);
  assert.equal((await get(sick)).text, now);
});

test('a readiness check with a health path: a new version whose path fails never takes over', async () => {
  const name = appName('hr');
  const first = await create(name, { healthCheckPath: '/health' }, { WEBSITES_CONTAINER_START_TIME_LIMIT: '3' });
  // Version 2 answers 503 on its health path from the start.
  await deploy(name, 2, SERVER.replace('let code = 200', 'let code = 503'));
  const t0 = Date.now();
  let log = '';
  while (!/was not ready within 3 s \(status 503\)/.test(log)) {
    assert.ok(Date.now() - t0 < 30000 * SCALE, `no readiness failure in the log:\n${log.slice(-2000)}`);
    await sleep(500);
    log = await logs(name);
  }
  assert.equal((await get(name)).text, first);
});

test('healthCheckPath: bad values are refused with 400 InvalidParameter naming it', async () => {
  const name = appName('hv');
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: { properties: {} } }, 201);
  for (const bad of ['health', '/a b', '/a#b', `/${'x'.repeat(256)}`, '/\u00e9', 5, '/a\r\nX: y']) {
    const r = await api(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { healthCheckPath: bad } } });
    assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.text}`);
    assert.equal(r.json.error.code, 'InvalidParameter');
    assert.match(r.json.error.message, /healthCheckPath/);
  }
  const ok = await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { healthCheckPath: `/${'x'.repeat(255)}` } } }, 200);
  assert.equal(ok.properties.healthCheckPath.length, 256);
  const none = await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { healthCheckPath: '' } } }, 200);
  assert.equal(none.properties.healthCheckPath, '');
});
