// sites-sandbox.test.mjs - what an app process can and cannot do (docs/security-model.md "App
// sandbox", docs/sites.md "App processes"). A probe app (written here) tries, from inside its
// sandbox: its uid, gid, capabilities, no_new_privs and seccomp state; to read /etc/shadow, the
// data directory and another app's release; to become root again and to make a user namespace;
// a fork bomb against its task limit; a memory bomb against its memory limit; and, in the
// isolated tier, to reach rampart's port and another app's. Limits are also read back from the
// kernel's cgroup files (v1 or v2, whichever this machine has). Needs root, as rampart does to
// give apps their own uids.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, request, DOMAIN, SCALE, sleep, processIds, cgroupDir, cgroupRead } from './lib/harness.mjs';
import { api, apiOk, uniq } from './lib/iam.mjs';
import { makeZip } from './lib/zip.mjs';

const UID_BASE = 1879048192;

// The probe: plain Node. PORT is a port (shared tier) or a socket path (isolated tier).
const PROBE = String.raw`
import http from 'node:http';
import fs from 'node:fs';
import net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';

const code = (e) => (e && e.code) || String(e);
const hold = [];
const routes = {
  '/': () => 'probe',
  '/id': () => {
    const status = {};
    for (const line of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
      const m = /^(Cap\w+|NoNewPrivs|Seccomp):\s*(\S+)/.exec(line);
      if (m) status[m[1]] = m[2];
    }
    return { uid: process.getuid(), gid: process.getgid(), euid: process.geteuid(), groups: process.getgroups(), pid: process.pid, status, port: process.env.PORT };
  },
  '/read': (q) => { try { return { ok: fs.readFileSync(q.get('path')).length }; } catch (e) { return { error: code(e) }; } },
  '/list': (q) => { try { return { ok: fs.readdirSync(q.get('path')) }; } catch (e) { return { error: code(e) }; } },
  '/write': (q) => { try { fs.writeFileSync(q.get('path'), 'x'); return { ok: true }; } catch (e) { return { error: code(e) }; } },
  '/setuid': () => {
    const r = {};
    for (const [k, f] of [['setuid', () => process.setuid(0)], ['setgid', () => process.setgid(0)], ['seteuid', () => process.seteuid(0)]]) {
      try { f(); r[k] = 'succeeded'; } catch (e) { r[k] = code(e); }
    }
    r.uid = process.getuid();
    return r;
  },
  '/unshare': () => {
    const u = spawnSync('unshare', ['--user', '--map-root-user', 'id', '-u'], { encoding: 'utf8' });
    const n = spawnSync('unshare', ['--net', 'true'], { encoding: 'utf8' });
    const m = spawnSync('mount', ['-t', 'tmpfs', 'none', '/tmp'], { encoding: 'utf8' });
    return { user: { status: u.status, out: u.stdout + u.stderr }, net: { status: n.status, out: n.stderr }, mount: { status: m.status, out: m.stderr } };
  },
  '/forkbomb': async (q) => {
    const max = Number(q.get('max'));
    const kids = [];
    let error = null;
    while (kids.length < max && !error) {
      const c = spawn('/bin/sleep', ['60'], { stdio: 'ignore' });
      const r = await new Promise((res) => { c.once('spawn', () => res(null)); c.once('error', (e) => res(e)); });
      if (r) error = code(r); else kids.push(c);
    }
    // Reaped before the answer, so that a second bomb finds the limit free again.
    const gone = kids.map((c) => new Promise((res) => c.once('exit', res)));
    for (const c of kids) c.kill('SIGKILL');
    await Promise.all(gone);
    return { count: kids.length, error };
  },
  '/alloc': (q) => {
    for (let i = 0; i < Number(q.get('mb')) / 16; i++) hold.push(Buffer.allocUnsafe(16 << 20).fill(i & 0xff));
    return { held: hold.length * 16 };
  },
  '/connect': (q) => new Promise((res) => {
    const s = net.connect({ host: q.get('host') || '127.0.0.1', port: Number(q.get('port')) });
    const t = setTimeout(() => { s.destroy(); res({ error: 'timeout' }); }, 3000);
    s.once('connect', () => { clearTimeout(t); s.destroy(); res({ ok: 'connected' }); });
    s.once('error', (e) => { clearTimeout(t); res({ error: code(e) }); });
  }),
};
const server = http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://probe');
  const f = routes[u.pathname];
  if (!f) { res.statusCode = 404; return res.end(); }
  const out = await f(u.searchParams);
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(out));
});
const port = process.env.PORT;
if (/^\d+$/.test(port)) server.listen(Number(port), '127.0.0.1');
else server.listen(port);
server.on('listening', () => console.log('probe listening on ' + port));
`;

let srv;
const apps = {};
const appName = (p) => uniq(p).replace(/[^a-z0-9-]/g, '').slice(0, 30);


// Calls the probe through the front door (shared tier) or straight on its socket.
async function probe(name, path, { timeout = 30000 * SCALE } = {}) {
  const r = await request(srv, { host: `${name}.${DOMAIN}`, path, timeout });
  if (r.status !== 200) throw new Error(`${name}${path}: ${r.status} ${r.text}`);
  return JSON.parse(r.text);
}
function onSocket(socketPath, path) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, timeout: 10000 * SCALE }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, json: body ? JSON.parse(body) : null }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function create(name, sandbox) {
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: { properties: { appCommandLine: 'node server.mjs', sandbox } } }, 201);
  const d = await request(srv, {
    method: 'POST', host: `${name}.scm.${DOMAIN}`, path: '/api/zipdeploy', timeout: 60000 * SCALE,
    headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/zip' },
    body: makeZip([{ name: 'server.mjs', data: PROBE }]),
  });
  assert.equal(d.status, 200, d.text);
}

async function waitUp(check, what) {
  const t0 = Date.now();
  for (;;) {
    try { return await check(); } catch (e) {
      if (Date.now() - t0 > 30000 * SCALE) throw new Error(`${what} did not come up: ${e.message}`);
    }
    await sleep(200);
  }
}

test.before(async () => {
  srv = await startServer();
  apps.a = appName('sba');
  apps.b = appName('sbb');
  apps.iso = appName('sbi');
  apps.mem = appName('sbm');
  await create(apps.a, { pids: 64, cpuPercent: 50 });
  await create(apps.b, {});
  await create(apps.iso, { tier: 'isolated' });
  await create(apps.mem, { memoryMB: 96 });
  for (const n of [apps.a, apps.b, apps.mem]) await waitUp(() => probe(n, '/', { timeout: 5000 * SCALE }), n);
  apps.isoSocket = join(srv.dataDir, 'apps', apps.iso, 'run', 'app.sock');
  await waitUp(() => onSocket(apps.isoSocket, '/'), apps.iso);
});
test.after(async () => {
  if (srv) await srv.stop();
});

test('each app runs under its own uid, with no capabilities, no_new_privs and the seccomp filter', async () => {
  const a = await probe(apps.a, '/id');
  const b = await probe(apps.b, '/id');
  const iso = (await onSocket(apps.isoSocket, '/id')).json;
  const uids = new Set([a.uid, b.uid, iso.uid]);
  assert.equal(uids.size, 3, `three apps, three uids: ${[...uids]}`);
  for (const p of [a, b, iso]) {
    assert.ok(p.uid >= UID_BASE, `uid ${p.uid}`);
    assert.equal(p.euid, p.uid);
    assert.equal(p.gid, p.uid);
    assert.ok(!p.groups.includes(0), `groups ${p.groups}`);
    for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.equal(p.status[k], '0000000000000000', `${k} of uid ${p.uid}`);
    assert.equal(p.status.NoNewPrivs, '1');
    assert.equal(p.status.Seccomp, '2');
  }
});

test('no /etc/shadow, no data directory, no other app; the code is read-only, /tmp is private', async () => {
  const other = join(srv.dataDir, 'apps', apps.b, 'releases', '1', 'server.mjs');
  assert.ok(existsSync(other), 'the other app\'s release is where the test looks');
  for (const path of ['/etc/shadow', srv.dataDir, join(srv.dataDir, 'rampart.db'), join(srv.dataDir, 'keys'), other, '/root'])
    assert.deepEqual(await probe(apps.a, `/read?path=${encodeURIComponent(path)}`), { error: 'ENOENT' }, path);
  assert.deepEqual(await probe(apps.a, `/list?path=${encodeURIComponent(srv.dataDir)}`), { error: 'ENOENT' });
  assert.ok((await probe(apps.a, '/read?path=/home/site/wwwroot/server.mjs')).ok > 0);
  assert.deepEqual(await probe(apps.a, '/write?path=/home/site/wwwroot/x'), { error: 'EROFS' });
  assert.deepEqual(await probe(apps.a, '/write?path=/usr/x'), { error: 'EROFS' });
  assert.deepEqual(await probe(apps.a, '/write?path=/tmp/mine'), { ok: true });
  assert.deepEqual(await probe(apps.b, '/read?path=/tmp/mine'), { error: 'ENOENT' });
  // Other apps' processes are not even visible (own pid namespace).
  const procs = (await probe(apps.a, '/list?path=/proc')).ok.filter((x) => /^\d+$/.test(x));
  assert.ok(procs.length < 10, `processes seen: ${procs}`);
});

test('an app cannot become root again, nor make a user namespace or a mount', async () => {
  const s = await probe(apps.a, '/setuid');
  assert.deepEqual(s, { setuid: 'EPERM', setgid: 'EPERM', seteuid: 'EPERM', uid: s.uid });
  assert.ok(s.uid >= UID_BASE);
  const u = await probe(apps.a, '/unshare');
  assert.notEqual(u.user.status, 0, `unshare --user: ${u.user.out}`);
  assert.match(u.user.out, /Operation not permitted/);
  assert.notEqual(u.net.status, 0);
  assert.notEqual(u.mount.status, 0);
});

test('the limits are in the kernel: task, memory and CPU limits in the app\'s cgroup', async () => {
  assert.equal(cgroupRead(apps.a, 'pids', 'pids.max'), '64');
  assert.equal(cgroupRead(apps.b, 'pids', 'pids.max'), '256');
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    assert.equal(cgroupRead(apps.mem, 'memory', 'memory.max'), String(96 << 20));
    assert.equal(cgroupRead(apps.a, 'cpu', 'cpu.max'), '50000 100000');
  } else {
    assert.equal(cgroupRead(apps.mem, 'memory', 'memory.limit_in_bytes'), String(96 << 20));
    assert.equal(cgroupRead(apps.a, 'cpu', 'cpu.cfs_quota_us'), '50000');
    assert.equal(cgroupRead(apps.a, 'cpu', 'cpu.cfs_period_us'), '100000');
  }
  const me = await probe(apps.a, '/id');
  const procs = readFileSync(join(cgroupDir(apps.a, 'pids'), 'cgroup.procs'), 'utf8').trim().split('\n').map(Number);
  // The app's node process, seen from the host by its owner: one of the group's tasks.
  const owned = procs.filter((pid) => { try { return statSync(`/proc/${pid}`).uid === me.uid; } catch { return false; } });
  assert.ok(owned.length >= 1, `tasks of uid ${me.uid} in the group: ${procs}`);
  // The settings show the limits.
  const view = await apiOk(srv, 'GET', `/api/apps/${apps.a}`, {}, 200);
  assert.deepEqual(view.properties.sandbox, { tier: 'shared', memoryMB: 512, pids: 64, cpuPercent: 50 });
  const bad = await api(srv, 'PUT', `/api/apps/${apps.b}`, { body: { properties: { sandbox: { pids: 4 } } } });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /sandbox\.pids/);
});

test('a fork bomb stops at the task limit; the app and the host go on', async () => {
  const r = await probe(apps.a, '/forkbomb?max=1000', { timeout: 120000 * SCALE });
  assert.ok(r.count > 0 && r.count < 64, `children started: ${r.count}`);
  assert.equal(r.error, 'EAGAIN');
  // Still answering, and so is the platform.
  assert.equal((await probe(apps.a, '/')), 'probe');
  assert.equal((await api(srv, 'GET', '/api/apps')).status, 200);
  // A second bomb finds the same limit: the first one's children are gone.
  const again = await probe(apps.a, '/forkbomb?max=1000', { timeout: 120000 * SCALE });
  assert.ok(Math.abs(again.count - r.count) <= 4, `${again.count} vs ${r.count}`);
});

test('a memory bomb past memoryMB is killed in its cgroup and the app restarted', async () => {
  const exits = async () => ((await apiOk(srv, 'GET', `/api/apps/${apps.mem}/logs`, {}, 200)).text.match(/process exited/g) || []).length;
  const before = await exits();
  const r = await request(srv, { host: `${apps.mem}.${DOMAIN}`, path: '/alloc?mb=400', timeout: 60000 * SCALE });
  assert.notEqual(r.status, 200, `allocated past the limit: ${r.text}`);
  await waitUp(() => probe(apps.mem, '/id', { timeout: 5000 * SCALE }), 'the restarted app');
  // (At least one: the proxy may send the idempotent GET once more, to the restarted app.)
  assert.ok(await exits() >= before + 1);
  const logs = await apiOk(srv, 'GET', `/api/apps/${apps.mem}/logs`, {}, 200);
  assert.match(logs.text, /process exited \((status 137|status \d+, signal 9)/);
  assert.match(logs.text, /restarting in \d+ ms/);
  // A smaller allocation, within the limit, works.
  assert.deepEqual(await probe(apps.mem, '/alloc?mb=32'), { held: 32 });
  // The other apps were not touched.
  assert.equal(await probe(apps.b, '/'), 'probe');
});

test('isolated tier: a unix socket for PORT, no way out to rampart or other apps', async () => {
  const id = (await onSocket(apps.isoSocket, '/id')).json;
  assert.equal(id.port, '/home/site/run/app.sock');
  // The app's directory; the front door's group may enter it (setgid: the socket gets that
  // group too, and the app's umask leaves it group-writable), nobody else.
  const st = statSync(join(srv.dataDir, 'apps', apps.iso, 'run'));
  assert.equal(st.uid, id.uid);
  assert.equal(st.mode & 0o7777, 0o2750);
  assert.equal(st.gid, processIds(srv.proc.pid).gid[0]);
  const bPort = (await probe(apps.b, '/id')).port;
  for (const port of [srv.port, srv.httpPort, Number(bPort)]) {
    const c = (await onSocket(apps.isoSocket, `/connect?port=${port}`)).json;
    assert.deepEqual(c, { error: 'ECONNREFUSED' }, `port ${port}`);
  }
  // No route off the machine either.
  const out = (await onSocket(apps.isoSocket, '/connect?host=192.0.2.1&port=80')).json;
  assert.ok(['ENETUNREACH', 'EHOSTUNREACH'].includes(out.error), JSON.stringify(out));
  // A shared-tier app can reach rampart's port (the difference between the tiers).
  assert.deepEqual(await probe(apps.a, `/connect?port=${srv.port}`), { ok: 'connected' });
});

test('isolated tier: the app answers through the front door, on its socket', async () => {
  const r = await waitUp(() => probe(apps.iso, '/', { timeout: 5000 * SCALE }), 'the isolated app through the proxy');
  assert.equal(r, 'probe');
});
