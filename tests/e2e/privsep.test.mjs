// privsep.test.mjs - privilege separation (docs/security-model.md "Privilege separation"):
// rampart serve, started as root, keeps root only in its small helper. The network-facing
// server runs as the service user with no capability and no way back; the helper holds no
// network socket and no store; the data directory is the service user's (apps' own run
// directories excepted); when the server dies, the helper ends every app process it started
// and exits; the "user" setting picks the account and refuses root. Needs root, as the
// separation itself does.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, linkSync, lstatSync, statSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, startServer, request, DOMAIN, SCALE, sleep, processIds, tmpDir, init, SERVICE_UID } from './lib/harness.mjs';
import { apiOk, uniq } from './lib/iam.mjs';
import { makeZip } from './lib/zip.mjs';

const ROOT = process.getuid() === 0;
const hasAccount = spawnSync('getent', ['passwd', 'rampart']).status === 0;
const skip = !ROOT ? 'needs root' : hasAccount ? 'a "rampart" account exists here' : false;

// Every process whose parent is pid, with its ids.
function children(pid) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const status = readFileSync(`/proc/${d}/status`, 'utf8');
      if (Number(status.match(/^PPid:\s+(\d+)/m)[1]) === pid) out.push({ pid: Number(d), ...processIds(Number(d)) });
    } catch { /* gone meanwhile */ }
  }
  return out;
}

// Pids of live processes running as uid.
function processesOf(uid) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (processIds(Number(d)).uid[0] === uid) out.push(Number(d));
    } catch { /* gone meanwhile */ }
  }
  return out;
}

// Socket inodes that listen on TCP (state 0A), from /proc/net/tcp and tcp6.
function listeningInodes() {
  const inodes = new Set();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A') inodes.add(cols[9]);
    }
  }
  return inodes;
}

function fdTargets(pid) {
  return readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return ''; } });
}

// Everything under dir that is not the service user's, apps' run directories left out.
function notOwned(dir, uid, rel = '') {
  const bad = [];
  for (const name of readdirSync(join(dir, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    if (/^apps\/[^/]+\/run(\.\d)?$/.test(r)) continue;
    const st = lstatSync(join(dir, r));
    if (st.uid !== uid || st.gid !== uid) bad.push(`${r} ${st.uid}:${st.gid}`);
    if (st.isDirectory()) bad.push(...notOwned(dir, uid, r));
  }
  return bad;
}

async function appUp(srv, name) {
  const t0 = Date.now();
  for (;;) {
    const r = await request(srv, { host: `${name}.${DOMAIN}`, path: '/', timeout: 5000 * SCALE }).catch((e) => ({ status: 0, text: e.message }));
    if (r.status === 200) return r.text;
    if (Date.now() - t0 > 30000 * SCALE) throw new Error(`${name} did not come up: ${r.status} ${r.text}`);
    await sleep(200);
  }
}

async function processApp(srv, name, tier = 'shared') {
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { appCommandLine: 'node server.js', sandbox: { tier } } } }, 201);
  const app = "require('http').createServer((q, r) => r.end('up ' + process.getuid())).listen(process.env.PORT);";
  const d = await request(srv, {
    method: 'POST', host: `${name}.scm.${DOMAIN}`, path: '/api/zipdeploy', timeout: 60000 * SCALE,
    headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/zip' },
    body: makeZip([{ name: 'server.js', data: app }]),
  });
  assert.equal(d.status, 200, d.text);
  return Number((await appUp(srv, name)).split(' ')[1]);
}

test('serve runs as the service user with no capability; only the helper is root, with no network socket', { skip }, async () => {
  const srv = await startServer();
  try {
    const me = processIds(srv.proc.pid);
    assert.deepEqual(me.uid, [SERVICE_UID, SERVICE_UID, SERVICE_UID, SERVICE_UID]);
    assert.deepEqual(me.gid, [SERVICE_UID, SERVICE_UID, SERVICE_UID, SERVICE_UID]);
    assert.equal(me.capEff, '0000000000000000');
    assert.equal(me.capPrm, '0000000000000000');
    assert.equal(me.groups, '');
    assert.match(readFileSync(`/proc/${srv.proc.pid}/status`, 'utf8'), /^NoNewPrivs:\s+1$/m);
    // One root child: the helper. It holds neither a listener nor the store, keys or audit log:
    // of the data directory, only the apps directory (opened before the drop).
    const root = children(srv.proc.pid).filter((c) => c.uid[0] === 0);
    assert.equal(root.length, 1, JSON.stringify(children(srv.proc.pid)));
    const listening = listeningInodes();
    const server = fdTargets(srv.proc.pid).filter((t) => t.startsWith('socket:')).map((t) => t.slice(8, -1));
    assert.ok(server.some((i) => listening.has(i)), 'the server holds the listeners');
    const helper = fdTargets(root[0].pid);
    for (const t of helper) {
      if (t.startsWith('socket:')) assert.ok(!listening.has(t.slice(8, -1)), `helper holds listener ${t}`);
      assert.ok(!t.startsWith(srv.dataDir) || t === join(srv.dataDir, 'apps'), `helper holds ${t}`);
    }
    // The server still does its job: an app starts (through the helper) under its own uid.
    const uid = await processApp(srv, uniq('ps').replace(/[^a-z0-9-]/g, '').slice(0, 30));
    assert.ok(uid > SERVICE_UID, `app uid ${uid}`);
  } finally {
    await srv.stop();
  }
});

test('the data directory becomes the service user\'s (a stray root file too); run directories stay the apps\'', { skip }, async () => {
  const dataDir = tmpDir();
  const { admin_token: token } = init(dataDir);
  writeFileSync(join(dataDir, 'stray'), 'root made this');
  // A hard link to a root file outside (a compromised service user could plant one where
  // protected_hardlinks is off): root's walk leaves it, and so the file outside, alone.
  const outside = join(tmpDir(), 'root-only');
  writeFileSync(outside, 'root\'s', { mode: 0o600 });
  linkSync(outside, join(dataDir, 'planted'));
  let srv = await startServer({ dataDir, init: false });
  srv.token = token;
  let iso;
  try {
    iso = uniq('pi').replace(/[^a-z0-9-]/g, '').slice(0, 30);
    const uid = await processApp(srv, iso, 'isolated');
    assert.deepEqual(notOwned(dataDir, SERVICE_UID), ['planted 0:0']);
    assert.equal(statSync(outside).uid, 0);
    const run = lstatSync(join(dataDir, 'apps', iso, 'run'));
    assert.equal(run.uid, uid);
    assert.equal(run.gid, SERVICE_UID);
  } finally {
    await srv.stop({ keepData: true });
  }
  // A restart as root: nothing changes hands, the app comes back on its socket.
  srv = await startServer({ dataDir, init: false });
  srv.token = token;
  try {
    await appUp(srv, iso);
    assert.deepEqual(notOwned(dataDir, SERVICE_UID), ['planted 0:0']);
  } finally {
    await srv.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a directory above the data directory that the service user could change stops start-up', { skip }, async () => {
  // It could swap the data directory for a link to anywhere between two starts as root.
  const outer = tmpDir();
  const dataDir = join(outer, 'data');
  init(dataDir);
  chownSync(outer, SERVICE_UID, SERVICE_UID);
  const r = spawnSync(BIN, ['serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--http-listen', 'off'],
    { env: { ...process.env, RAMPART_IDENTITY_LISTEN: '127.0.0.1:0' }, encoding: 'utf8', timeout: 20000 });
  assert.notEqual(r.status, 0);
  assert.equal(r.stdout, '', 'never ready');
  assert.match(r.stderr, /above the data directory, can be changed by the service user/);
  assert.equal(statSync(dataDir).uid, 0, 'nothing changed hands');
  rmSync(outer, { recursive: true, force: true });
});

test('a data directory the service user cannot reach stops start-up with the reason', { skip }, async () => {
  const outer = tmpDir();
  chmodSync(outer, 0o700); // root's alone, like /root
  const dataDir = join(outer, 'data');
  init(dataDir);
  const r = spawnSync(BIN, ['serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--http-listen', 'off'],
    { env: { ...process.env, RAMPART_IDENTITY_LISTEN: '127.0.0.1:0' }, encoding: 'utf8', timeout: 20000 });
  rmSync(outer, { recursive: true, force: true });
  assert.notEqual(r.status, 0);
  assert.equal(r.stdout, '', 'never ready');
  assert.match(r.stderr, new RegExp(`the service user \\(uid ${SERVICE_UID}\\) cannot reach .*data: Permission denied`));
});

test('when serve is killed, the helper ends every app process and exits', { skip }, async () => {
  const srv = await startServer();
  const name = uniq('pk').replace(/[^a-z0-9-]/g, '').slice(0, 30);
  const uid = await processApp(srv, name);
  const helper = children(srv.proc.pid).find((c) => c.uid[0] === 0);
  assert.ok(helper, 'a helper');
  assert.ok(processesOf(uid).length > 0, 'the app runs');
  srv.proc.kill('SIGKILL');
  await srv.exited;
  const t0 = Date.now();
  while (processesOf(uid).length > 0 || existsSync(`/proc/${helper.pid}`)) {
    assert.ok(Date.now() - t0 < 10000 * SCALE, `left: app ${processesOf(uid)}, helper ${existsSync(`/proc/${helper.pid}`)}`);
    await sleep(100);
  }
});

test('the user setting: a uid is used as given; root and unknown accounts are refused', { skip }, async () => {
  const srv = await startServer({ env: { RAMPART_USER: '4242' } });
  try {
    assert.deepEqual(processIds(srv.proc.pid).uid, [4242, 4242, 4242, 4242]);
    assert.deepEqual(notOwned(srv.dataDir, 4242), []);
    const r = await request(srv, { path: '/health' });
    assert.equal(r.status, 200);
  } finally {
    await srv.stop();
  }
  const dataDir = tmpDir();
  init(dataDir);
  const serve = (user) => spawnSync(BIN, ['serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--http-listen', 'off'],
    { env: { ...process.env, RAMPART_USER: user, RAMPART_IDENTITY_LISTEN: '127.0.0.1:0' }, encoding: 'utf8', timeout: 20000 });
  for (const bad of ['root', '0']) {
    const r = serve(bad);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /user: must be a user name or uid other than root/);
  }
  const app = serve(String(SERVICE_UID + 2));
  assert.notEqual(app.status, 0);
  assert.match(app.stderr, /has an app's uid or gid/);
  const r = serve('nosuchaccount');
  rmSync(dataDir, { recursive: true, force: true });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /user: no account named nosuchaccount/);
  assert.equal(r.stdout, '', 'never ready');
});
