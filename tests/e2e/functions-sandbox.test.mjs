// functions-sandbox.test.mjs - a function app's custom handler runs in the app sandbox
// (docs/functions.md "Function apps", "The handler process"; docs/security-model.md "App
// sandbox"; docs/sites.md "App processes"), and here it tries to get out, from inside
// invocations. The handler (plain Node, written here) reports what each attempt did; the tests
// assert it was contained:
//   privileges  uid, capability sets, no_new_privs; setuid(0); a set-uid su started and caught
//               waiting (its uids stay the app's); the system calls the seccomp filter denies,
//               made directly (perl's syscall) and through unshare, strace and bwrap
//   environment only the documented variables: nothing of rampart's (a canary variable in the
//               server's environment), no admin token or key, no inherited descriptor
//   files       the data directory (databases, TLS keys), /etc/shadow, /root, another app's
//               release, other processes' environments; the mount table and a walk of the tree
//               (no unix socket, nothing writable outside /tmp); writing its own code, /usr,
//               rampart's binary, /proc and /sys knobs; /tmp private; its log bounded on disk
//   network     the shared tier has the host's network (documented), so only what the docs
//               promise is asserted: no unix socket of the data directory (an isolated app's,
//               one planted by the test) or the host's /tmp is reachable; what the shared tier
//               does reach (abstract sockets, another handler's port) is shown as a diagnostic
//   limits      children until EAGAIN, then a real fork bomb (perl: fork while 1) against pids,
//               while the platform, another app and the handler keep answering; a memory bomb
//               and a /tmp bomb against memoryMB: killed, that call 502, replaced, answering
// Layers this machine lacks (rampart logs them as "app processes start without: ...") skip the
// tests that need them. Needs root, as rampart does to give apps their own uids and cgroups.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, request, DOMAIN, SCALE, sleep, cgroupDir, cgroupRead } from './lib/harness.mjs';
import { api, apiOk, uniq, cliAsync, cliEnv } from './lib/iam.mjs';
import { makeZip } from './lib/zip.mjs';

const UID_BASE = 1879048192;
const ZERO_CAPS = '0000000000000000';
// In rampart's own environment, never in an app's (docs/sites.md: "nothing else of rampart's
// environment").
const CANARY = `fsb-canary-${randomBytes(12).toString('hex')}`;

// The handler: one function, /api/probe/{action}, whose action is an escape attempt; it
// answers what happened as JSON. Errors are reported by their code (EACCES, ENOENT, ...).
const HANDLER = String.raw`'use strict';
const http = require('node:http');
const fs = require('node:fs');
const net = require('node:net');
const { spawn, spawnSync } = require('node:child_process');

const code = (e) => (e && e.code) || String(e);
// What the process had before it did anything: its descriptors and its environment.
const startFds = {};
for (const fd of fs.readdirSync('/proc/self/fd')) {
  try { startFds[fd] = fs.readlinkSync('/proc/self/fd/' + fd); } catch (e) { startFds[fd] = code(e); }
}
const startEnv = { ...process.env };
const hold = [];

function status(pid = 'self') {
  const out = {};
  for (const line of fs.readFileSync('/proc/' + pid + '/status', 'utf8').split('\n')) {
    const m = /^(Cap\w+|NoNewPrivs|Seccomp|Uid|Gid):\s*(.*)$/.exec(line);
    if (m) out[m[1]] = m[2].trim().split(/\s+/).join(' ');
  }
  return out;
}
const pids = () => fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x)).map(Number);
// Other processes of this uid in the sandbox (not this one).
function mine() {
  const me = process.getuid();
  return pids().filter((p) => { try { return p !== process.pid && fs.statSync('/proc/' + p).uid === me; } catch { return false; } });
}
function spawned(c) {
  return new Promise((res) => { c.once('spawn', () => res(null)); c.once('error', (e) => res(code(e))); });
}
function which(name) {
  for (const d of ['/usr/local/bin', '/usr/bin', '/usr/sbin']) if (fs.existsSync(d + '/' + name)) return d + '/' + name;
  return null;
}

// Walks the file system (not /proc, /sys, or the read-only /usr, which is big): every
// directory or file this uid may write, every unix socket, every set-uid file.
function walk() {
  const out = { entries: 0, writable: [], sockets: [], top: fs.readdirSync('/') };
  const skip = new Set(['/proc', '/sys', '/usr']);
  const stack = ['/'];
  while (stack.length && out.entries < 50000) {
    const dir = stack.pop();
    let names;
    try { names = fs.readdirSync(dir); } catch { continue; }
    for (const n of names) {
      const p = (dir === '/' ? '' : dir) + '/' + n;
      if (skip.has(p)) continue;
      let st;
      try { st = fs.lstatSync(p); } catch { continue; }
      out.entries++;
      if (st.isSocket()) out.sockets.push(p);
      if (st.isDirectory() || st.isFile()) {
        try { fs.accessSync(p, fs.constants.W_OK); out.writable.push(p); } catch {}
      }
      if (st.isDirectory()) stack.push(p);
    }
  }
  return out;
}

const actions = {
  ping: () => 'pong',
  id: () => ({
    uid: process.getuid(), euid: process.geteuid(), gid: process.getgid(), egid: process.getegid(),
    groups: process.getgroups(), pid: process.pid, status: status(), pids: pids(),
    env: startEnv, fds: startFds, cwd: process.cwd(),
  }),
  read: (q) => {
    try { const b = fs.readFileSync(q.path); return { ok: b.length, text: b.toString('latin1').slice(0, 4096) }; } catch (e) { return { error: code(e) }; }
  },
  list: (q) => { try { return { ok: fs.readdirSync(q.path) }; } catch (e) { return { error: code(e) }; } },
  write: (q) => { try { fs.writeFileSync(q.path, q.data || 'x'); return { ok: true }; } catch (e) { return { error: code(e) }; } },
  mkdir: (q) => { try { fs.mkdirSync(q.path); return { ok: true }; } catch (e) { return { error: code(e) }; } },
  // Every process's environment it can read here.
  environs: () => {
    const out = {};
    for (const p of pids()) {
      try { out[p] = { ok: fs.readFileSync('/proc/' + p + '/environ', 'latin1') }; } catch (e) { out[p] = { error: code(e) }; }
    }
    return out;
  },
  signal: (q) => { try { process.kill(Number(q.pid), 0); return { ok: true }; } catch (e) { return { error: code(e) }; } },
  mounts: () => fs.readFileSync('/proc/self/mountinfo', 'utf8'),
  walk,
  which: (q) => Object.fromEntries(q.names.split(',').map((n) => [n, which(n)])),
  setuid: () => {
    const r = {};
    for (const [k, f] of [['setuid', () => process.setuid(0)], ['setgid', () => process.setgid(0)],
      ['seteuid', () => process.seteuid(0)], ['setgroups', () => process.setgroups([0])]]) {
      try { f(); r[k] = 'succeeded'; } catch (e) { r[k] = code(e); }
    }
    r.uid = process.getuid();
    r.euid = process.geteuid();
    return r;
  },
  run: (q) => {
    const argv = JSON.parse(q.argv);
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 10000, input: '' });
    return { status: r.status, signal: r.signal, out: ((r.stdout || '') + (r.stderr || '')).slice(0, 2000), error: r.error ? code(r.error) : null };
  },
  // A set-uid program started and left waiting (su asks for a password): the ids it runs with.
  setuidexec: async (q) => {
    const c = spawn(q.path, q.args ? q.args.split(' ') : [], { stdio: ['pipe', 'pipe', 'pipe'] });
    const err = await spawned(c);
    if (err) return { error: err };
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { out += d; });
    await new Promise((res) => setTimeout(res, 500));
    let st;
    try { st = status(c.pid); } catch (e) { st = { error: code(e) }; }
    const exited = c.exitCode !== null || c.signalCode !== null;
    c.kill('SIGKILL');
    return { status: st, out: out.slice(0, 500), exited };
  },
  // A connection to a unix socket (q.path; q.abstract: in the abstract namespace; q.serve: one
  // this handler listens on itself, the control) or a TCP port.
  connect: async (q) => {
    const path = q.abstract ? '\0' + q.path : q.path;
    let server = null;
    if (q.serve) {
      server = net.createServer((c) => c.end());
      await new Promise((res, rej) => { server.once('error', rej); server.listen(path, res); });
    }
    try {
      return await new Promise((res) => {
        const s = net.connect(q.path ? { path } : { host: q.host || '127.0.0.1', port: Number(q.port) });
        const t = setTimeout(() => { s.destroy(); res({ error: 'timeout' }); }, 3000);
        s.once('connect', () => { clearTimeout(t); s.destroy(); res({ ok: 'connected' }); });
        s.once('error', (e) => { clearTimeout(t); res({ error: code(e) }); });
      });
    } finally {
      if (server) server.close();
    }
  },
  // Children until the kernel says no (at most max); all reaped before the answer.
  spawnmax: async (q) => {
    const kids = [];
    let error = null;
    while (kids.length < Number(q.max) && !error) {
      const c = spawn('/bin/sleep', ['60'], { stdio: 'ignore' });
      const e = await spawned(c);
      if (e) error = e; else kids.push(c);
    }
    const gone = kids.map((c) => new Promise((res) => c.once('exit', res)));
    for (const c of kids) c.kill('SIGKILL');
    await Promise.all(gone);
    return { count: kids.length, error };
  },
  // A real fork bomb (argv, e.g. perl's "fork while 1": every process forks for ever, failing
  // or not), left running; after q.ms: how many processes of this uid there are, and whether
  // the handler itself can still start one.
  bombstart: async (q) => {
    const argv = JSON.parse(q.argv);
    const bomb = spawn(argv[0], argv.slice(1), { stdio: 'ignore', detached: true });
    const started = await spawned(bomb);
    if (started) return { error: started };
    const samples = [];
    for (let i = 0; i < Number(q.ms) / 250; i++) {
      await new Promise((res) => setTimeout(res, 250));
      samples.push(mine().length);
    }
    return { samples, spawnDuring: await spawned(spawn('/bin/true', [], { stdio: 'ignore' })) };
  },
  // Everything of this uid in the sandbox but the handler: kill(-1, SIGKILL) until none is left.
  bombstop: async () => {
    let rounds = 0;
    while (mine().length > 0 && rounds < 50) {
      try { process.kill(-1, 'SIGKILL'); } catch {}
      rounds++;
      await new Promise((res) => setTimeout(res, 100));
    }
    return { rounds, left: mine().length };
  },
  // A call to another local port, as any process on the host could make (shared tier).
  post: (q) => new Promise((res) => {
    const r = http.request({ host: '127.0.0.1', port: Number(q.port), method: 'POST', path: q.path, headers: { 'content-type': 'application/json' } }, (a) => {
      let b = '';
      a.on('data', (c) => { b += c; });
      a.on('end', () => res({ status: a.statusCode, body: b.slice(0, 4096) }));
    });
    r.on('error', (e) => res({ error: code(e) }));
    r.setTimeout(3000, () => r.destroy(new Error('timeout')));
    r.end(q.body || '');
  }),
  // MiB of output on stdout (the app's log, kept by rampart).
  spew: async (q) => {
    const chunk = ('x'.repeat(1023) + '\n').repeat(1024);
    for (let i = 0; i < Number(q.mb); i++) {
      if (!process.stdout.write(chunk)) await new Promise((res) => process.stdout.once('drain', res));
    }
    return { mb: Number(q.mb) };
  },
  alloc: (q) => {
    for (let i = 0; i < Number(q.mb) / 16; i++) hold.push(Buffer.allocUnsafe(16 << 20).fill(i & 0xff));
    return { held: hold.length * 16 };
  },
  // Writes /tmp/fill until the file system or the kernel stops it.
  filltmp: (q) => {
    const chunk = Buffer.alloc(4 << 20, 0x5a);
    let written = 0;
    let error = null;
    const fd = fs.openSync('/tmp/fill', 'w');
    try {
      while (written < Number(q.mb) << 20) written += fs.writeSync(fd, chunk);
    } catch (e) { error = code(e); }
    fs.closeSync(fd);
    fs.unlinkSync('/tmp/fill');
    return { written, error };
  },
};

http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', async () => {
    let out;
    try {
      const r = JSON.parse(body).Data.req;
      const f = actions[r.Params.action];
      out = f ? { statusCode: 200, body: JSON.stringify(await f(r.Query || {})) } : { statusCode: 404, body: '' };
    } catch (e) {
      out = { statusCode: 200, body: JSON.stringify({ handlerError: String(e && e.stack || e) }) };
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ Outputs: { res: { ...out, headers: { 'content-type': 'application/json' } } }, Logs: [] }));
  });
}).listen(Number(process.env.FUNCTIONS_CUSTOMHANDLER_PORT), '127.0.0.1', () => console.log('probe handler up'));
`;

// An isolated web app: a unix socket in the data directory that only the front door reaches.
const ISO_SERVER = String.raw`
import http from 'node:http';
http.createServer((req, res) => res.end('iso')).listen(process.env.PORT);
`;

let srv;
let home;
let env;
let work;
let release; // the handler's release directory
let layers = { bwrap: true, uid: true, memory: true, pids: true, seccomp: true, missing: '' };
const apps = {}; // role -> name
const keys = {}; // name -> function key
const appName = (p) => uniq(p).replace(/[^a-z0-9-]/g, '').slice(0, 30);

// One invocation: GET /api/probe/ACTION?query with the function key. { status, json, text }.
async function invoke(app, action, query = {}, { timeout = 30000 * SCALE } = {}) {
  // %20 for spaces: the host's Query decodes percent escapes, not '+'.
  const qs = Object.entries(query).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  const r = await request(srv, {
    host: `${app}.${DOMAIN}`, path: `/api/probe/${action}${qs ? `?${qs}` : ''}`, timeout,
    headers: { 'x-functions-key': keys[app] },
  });
  let json;
  try { json = r.text ? JSON.parse(r.text) : undefined; } catch { json = undefined; }
  return { status: r.status, json, text: r.text, id: r.headers['x-ms-request-id'] };
}
async function probe(app, action, query, opts) {
  const r = await invoke(app, action, query, opts);
  if (r.status !== 200 || r.json === undefined) throw new Error(`${app} ${action}: ${r.status} ${r.text}`);
  if (r.json && r.json.handlerError) throw new Error(`${app} ${action}: ${r.json.handlerError}`);
  return r.json;
}
const readIn = (app, path) => probe(app, 'read', { path });
const run = (app, argv) => probe(app, 'run', { argv: JSON.stringify(argv) });

async function until(pred, what, ms = 30000 * SCALE) {
  const t0 = Date.now();
  for (;;) {
    try { if (await pred()) return; } catch { /* not yet */ }
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
const processState = async (app) => (await apiOk(srv, 'GET', `/api/apps/${app}`, {}, 200)).properties.process || {};

// The layers this machine lacks, as rampart logged them at start ("app processes start
// without: ...", rp_procs_open).
function readLayers() {
  const m = /app processes start without: ([^"]*)"/.exec(srv.stderr);
  layers.missing = m ? m[1] : '';
  layers.bwrap = !/bubblewrap/.test(layers.missing);
  layers.uid = !/per-app uid/.test(layers.missing);
  layers.memory = layers.uid && !/memory limit/.test(layers.missing);
  layers.pids = layers.uid && !/task limit by cgroup/.test(layers.missing);
  layers.seccomp = !/system call filter/.test(layers.missing);
}
// Skips t (true) when this machine lacks a layer it needs: bubblewrap always, and names.
function lacking(t, ...names) {
  const missing = ['bwrap', ...names].filter((n) => !layers[n]);
  if (missing.length === 0) return false;
  t.skip(`this machine lacks ${missing.join(', ')} (rampart: "app processes start without: ${layers.missing}")`);
  return true;
}

// A function app with the probe handler: created, sandbox limits and one app setting set
// through the management API, deployed with the CLI, its function key listed.
async function functionApp(role, sandbox) {
  const app = appName(role);
  apps[role] = app;
  const c = await cliAsync(['app', 'create', app], { env });
  assert.equal(c.status, 0, c.stderr + c.stdout);
  if (sandbox) await apiOk(srv, 'PUT', `/api/apps/${app}`, { body: { properties: { sandbox } } }, 200);
  await apiOk(srv, 'PUT', `/api/apps/${app}/config/appsettings`, { body: { properties: { FSB_SETTING: `setting-of-${app}` } } }, 200);
  const d = await cliAsync(['app', 'deploy', app, release], { env, timeoutMs: 120000 * SCALE });
  assert.equal(d.status, 0, d.stderr + d.stdout);
  keys[app] = (await apiOk(srv, 'POST', `/api/apps/${app}/host/default/listkeys`, {}, 200)).functionKeys.default;
  await until(async () => (await invoke(app, 'ping', {}, { timeout: 5000 * SCALE })).json === 'pong', `${app}'s handler`);
}

test.before(async () => {
  srv = await startServer({ env: { RAMPART_FSB_CANARY: CANARY, FSB_HOST_SECRET: CANARY } });
  home = mkdtempSync(join(tmpdir(), 'rp-fsb-home-'));
  work = mkdtempSync(join(tmpdir(), 'rp-fsb-work-'));
  env = cliEnv(srv, home);
  release = join(work, 'release');
  mkdirSync(release);
  writeFileSync(join(release, 'host.json'), JSON.stringify({
    version: '2.0', functionTimeout: '00:01:00',
    customHandler: { description: { defaultExecutablePath: 'node', arguments: ['handler.js'] } },
  }));
  writeFileSync(join(release, 'handler.js'), HANDLER);
  mkdirSync(join(release, 'probe'));
  writeFileSync(join(release, 'probe', 'function.json'), JSON.stringify({ bindings: [
    { type: 'httpTrigger', direction: 'in', name: 'req', authLevel: 'function', methods: ['get'], route: 'probe/{action}' },
    { type: 'http', direction: 'out', name: 'res' },
  ] }));
  readLayers();
  if (!layers.bwrap) return; // no app can start: every test skips
  await functionApp('fsa', { pids: 64 }); // the attacker
  await functionApp('fsb'); // another function app
  await functionApp('fsm', { memoryMB: 96 }); // the memory bomb's
  // An isolated web app, for its socket in the data directory.
  apps.iso = appName('fsi');
  await apiOk(srv, 'PUT', `/api/apps/${apps.iso}`, { body: { properties: { appCommandLine: 'node server.mjs', sandbox: { tier: 'isolated' } } } }, 201);
  const z = await request(srv, {
    method: 'POST', host: `${apps.iso}.scm.${DOMAIN}`, path: '/api/zipdeploy', timeout: 60000 * SCALE,
    headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/zip' },
    body: makeZip([{ name: 'server.mjs', data: ISO_SERVER }]),
  });
  assert.equal(z.status, 200, z.text);
  await until(async () => (await request(srv, { host: `${apps.iso}.${DOMAIN}`, timeout: 5000 * SCALE })).text === 'iso', 'the isolated app');
  readLayers();
});

test.after(async () => {
  if (srv) await srv.stop();
  if (home) rmSync(home, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

const v2 = () => existsSync('/sys/fs/cgroup/cgroup.controllers');

// The system calls the filter denies, made directly (perl's syscall, numbers from syscall.ph),
// each on its own; unshare(CLONE_NEWUSER) last, since where it works it gives the rest a user
// namespace's capabilities. errno per call, or "ok".
const SYSCALLS = String.raw`
require "syscall.ph";
my %r;
sub t { my ($n, $x) = @_; $r{$n} = $x == -1 ? $! + 0 : "ok"; }
my ($none, $tmp, $tmpfs, $user, $desc, $val) = ("none", "/tmp", "tmpfs", "user", "fsb", "x");
t("ptrace", syscall(&SYS_ptrace, 0, 0, 0, 0));
t("mount", syscall(&SYS_mount, $none, $tmp, $tmpfs, 0, 0));
t("umount2", syscall(&SYS_umount2, $tmp, 0));
t("chroot", syscall(&SYS_chroot, $tmp));
t("pivot_root", syscall(&SYS_pivot_root, $tmp, $tmp));
if (open(my $ns, "<", "/proc/self/ns/uts")) { t("setns", syscall(&SYS_setns, fileno($ns), 0)); } else { $r{setns} = "open " . ($! + 0); }
t("add_key", syscall(&SYS_add_key, $user, $desc, $val, 1, -2));
t("keyctl", syscall(&SYS_keyctl, 0, -2, 0));
my $p = "\0" x 120; t("io_uring_setup", syscall(&SYS_io_uring_setup, 1, $p));
t("userfaultfd", syscall(&SYS_userfaultfd, 1));
my $b = "\0" x 128; t("bpf", syscall(&SYS_bpf, 0, $b, 128));
my $pe = "\0" x 128; t("perf_event_open", syscall(&SYS_perf_event_open, $pe, 0, -1, -1, 0));
t("unshare_mount", syscall(&SYS_unshare, 0x20000));
t("unshare_user", syscall(&SYS_unshare, 0x10000000));
print join(" ", map { "$_=$r{$_}" } sort keys %r), "\n";
`;

test('the handler runs as an unprivileged uid: no capabilities, no_new_privs, no root again', async (t) => {
  if (lacking(t)) return;
  const a = await probe(apps.fsa, 'id');
  assert.notEqual(a.uid, 0);
  assert.equal(a.euid, a.uid);
  assert.notEqual(a.gid, 0);
  assert.equal(a.egid, a.gid);
  assert.ok(!a.groups.includes(0), `groups ${a.groups}`);
  assert.equal(a.status.Uid, `${a.uid} ${a.uid} ${a.uid} ${a.uid}`, 'real, effective, saved and fs uid');
  assert.equal(a.status.Gid, `${a.gid} ${a.gid} ${a.gid} ${a.gid}`);
  for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.equal(a.status[k], ZERO_CAPS, k);
  assert.equal(a.status.NoNewPrivs, '1');
  const s = await probe(apps.fsa, 'setuid');
  assert.deepEqual(s, { setuid: 'EPERM', setgid: 'EPERM', seteuid: 'EPERM', setgroups: 'EPERM', uid: a.uid, euid: a.uid });
  // Its own pid namespace: rampart, the helper and other apps are not there to signal.
  assert.ok(a.pid < 10 && a.pids.length < 10, `pid ${a.pid}, processes seen: ${a.pids}`);
  for (const pid of [srv.proc.pid, process.pid]) {
    assert.deepEqual(await probe(apps.fsa, 'signal', { pid }), { error: 'ESRCH' }, `kill(${pid}, 0)`);
    assert.deepEqual(await readIn(apps.fsa, `/proc/${pid}/environ`), { error: 'ENOENT' }, `/proc/${pid}/environ`);
  }
});

test('each function app has a uid of its own', async (t) => {
  if (lacking(t, 'uid')) return;
  const a = await probe(apps.fsa, 'id');
  const b = await probe(apps.fsb, 'id');
  for (const p of [a, b]) {
    assert.ok(p.uid >= UID_BASE, `uid ${p.uid}`);
    assert.equal(p.gid, p.uid);
  }
  assert.notEqual(a.uid, b.uid);
});

test('a set-uid program does not make it root (no_new_privs, nosuid)', async (t) => {
  if (lacking(t)) return;
  const su = (await probe(apps.fsa, 'which', { names: 'su' })).su;
  if (!su) return t.skip('no su in /usr');
  if (!(statSync(su).mode & 0o4000)) return t.skip(`${su} is not set-uid on this machine: it proves nothing`);
  const me = (await probe(apps.fsa, 'id')).uid;
  // su started and left waiting for a password: the ids it got from its set-uid bit.
  const r = await probe(apps.fsa, 'setuidexec', { path: su, args: 'root' });
  assert.ok(r.status && r.status.Uid, JSON.stringify(r));
  assert.equal(r.status.Uid, `${me} ${me} ${me} ${me}`, `su's uids: ${JSON.stringify(r)}`);
  assert.equal(r.status.CapEff, ZERO_CAPS);
  assert.equal(r.status.NoNewPrivs, '1');
  // And asked to run a command as root, it fails.
  const c = await run(apps.fsa, [su, '-c', 'id -u', 'root']);
  assert.notEqual(c.status, 0, JSON.stringify(c));
  assert.doesNotMatch(c.out, /^0$/m);
});

test('the seccomp filter: ptrace, mount, chroot, setns, keyrings, io_uring, userfaultfd, bpf, unshare are EPERM', async (t) => {
  if (lacking(t, 'seccomp')) return;
  assert.equal((await probe(apps.fsa, 'id')).status.Seccomp, '2');
  const have = await probe(apps.fsa, 'which', { names: 'perl,unshare,strace,bwrap' });
  if (have.perl) {
    // Without the filter, an unprivileged process gets ptrace(TRACEME), add_key, io_uring,
    // userfaultfd and (on most kernels) a user namespace: each must be EPERM here.
    const r = await run(apps.fsa, [have.perl, '-e', SYSCALLS]);
    assert.equal(r.status, 0, JSON.stringify(r));
    const got = Object.fromEntries(r.out.trim().split(' ').map((kv) => kv.split('=')));
    const want = Object.fromEntries(Object.keys(got).map((k) => [k, '1']));
    assert.deepEqual(got, want, r.out);
    assert.equal(Object.keys(got).length, 14, r.out);
  } else t.diagnostic('no perl in /usr: the system calls are tried through the tools only');
  // The same through the tools an attacker would use.
  const tries = [];
  if (have.unshare) tries.push([have.unshare, '--user', '--map-root-user', 'id', '-u'], [have.unshare, '--mount', 'true'], [have.unshare, '--net', 'true']);
  if (have.strace) tries.push([have.strace, '-f', 'true'], [have.strace, '-p', '1']);
  if (have.bwrap) tries.push([have.bwrap, '--unshare-user', '--ro-bind', '/', '/', 'true']);
  for (const argv of tries) {
    const r = await run(apps.fsa, argv);
    assert.notEqual(r.status, 0, `${argv.join(' ')}: ${JSON.stringify(r)}`);
    assert.match(r.out, /Operation not permitted|No permissions to create new namespace/, `${argv.join(' ')}: ${r.out}`);
  }
});

test('its environment holds the documented variables only: nothing of rampart\'s, no key or token', async (t) => {
  if (lacking(t)) return;
  const a = await probe(apps.fsa, 'id');
  const b = await probe(apps.fsb, 'id');
  const e = a.env;
  // docs/sites.md "App processes" (PORT, HOME, PATH, WEBSITE_*, app settings, identity),
  // docs/functions.md "The handler process" (FUNCTIONS_*), and PWD, which /bin/sh -c sets.
  const allowed = new Set(['PORT', 'HOME', 'PATH', 'WEBSITE_SITE_NAME', 'WEBSITE_HOSTNAME',
    'FUNCTIONS_CUSTOMHANDLER_PORT', 'FUNCTIONS_WORKER_RUNTIME', 'FUNCTIONS_CUSTOMHANDLER_WORKER_ID',
    'FUNCTIONS_APP_ROOT_PATH', 'IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'FSB_SETTING', 'PWD']);
  assert.deepEqual(Object.keys(e).filter((k) => !allowed.has(k)), [], JSON.stringify(Object.keys(e)));
  assert.equal(e.FSB_SETTING, `setting-of-${apps.fsa}`, 'its own app setting is there');
  assert.equal(e.HOME, '/tmp');
  assert.equal(e.WEBSITE_SITE_NAME, apps.fsa);
  assert.equal(e.FUNCTIONS_CUSTOMHANDLER_PORT, e.PORT);
  assert.equal(e.FUNCTIONS_WORKER_RUNTIME, 'custom');
  assert.equal(e.FUNCTIONS_APP_ROOT_PATH, '/home/site/wwwroot');
  assert.notEqual(e.IDENTITY_HEADER, b.env.IDENTITY_HEADER, 'each app its own identity header');
  const master = (await apiOk(srv, 'POST', `/api/apps/${apps.fsa}/host/default/listkeys`, {}, 200)).masterKey;
  const text = JSON.stringify(e);
  for (const [what, needle] of [['rampart\'s environment', CANARY], ['the admin token', srv.token], ['the master key', master],
    ['the function key', keys[apps.fsa]], ['another app\'s setting', `setting-of-${apps.fsb}`], ['another app\'s identity header', b.env.IDENTITY_HEADER]])
    assert.ok(!text.includes(needle), `${what} is in the handler's environment`);
  assert.ok(!/"RAMPART_/.test(text), 'a RAMPART_ variable');
  // Nothing else inherited: the descriptors it started with are stdio and Node's own (the
  // sealed memfd with the command and the helper's sockets are closed before the app runs).
  for (const [fd, link] of Object.entries(a.fds))
    assert.match(link, /^(\/dev\/null|pipe:\[\d+\]|anon_inode:\[(eventpoll|eventfd|timerfd)\]|ENOENT)$/, `fd ${fd}: ${link}`);
  // No process it can see has a readable environment with rampart's in it.
  const environs = await probe(apps.fsa, 'environs');
  for (const [pid, r] of Object.entries(environs)) {
    if (r.error) assert.equal(r.error, 'EACCES', `pid ${pid}`);
    else for (const needle of [CANARY, srv.token, 'RAMPART_']) assert.ok(!r.ok.includes(needle), `pid ${pid}'s environment`);
  }
  assert.deepEqual(environs[1], { error: 'EACCES' }, 'the sandbox\'s pid 1 (bubblewrap, root) is not readable');
});

test('files: nothing of the data directory, /etc/shadow, /root or another app; only its release is mounted', async (t) => {
  if (lacking(t)) return;
  const a = apps.fsa;
  const otherRelease = join(srv.dataDir, 'apps', apps.fsb, 'releases', '1');
  // Everything at the top of the data directory and in tls/ (the keys) and keys/, its own
  // log directory, the other app's code, the host's secrets.
  const targets = [srv.dataDir, join(srv.dataDir, 'rampart.db'), join(srv.dataDir, 'apps', a, 'logs', 'app.log'),
    join(otherRelease, 'handler.js'), '/etc/shadow', '/root'];
  for (const p of targets) assert.ok(existsSync(p), `${p} exists on the host (the test looks at the right place)`);
  const tlsFiles = readdirSync(join(srv.dataDir, 'tls')).map((f) => join(srv.dataDir, 'tls', f));
  assert.ok(tlsFiles.some((f) => /\.key/.test(f)), `a TLS key among ${tlsFiles}`);
  for (const d of ['', 'keys']) {
    if (existsSync(join(srv.dataDir, d))) targets.push(...readdirSync(join(srv.dataDir, d)).map((f) => join(srv.dataDir, d, f)));
  }
  targets.push(...tlsFiles);
  for (const p of targets) assert.deepEqual(await readIn(a, p), { error: 'ENOENT' }, p);
  assert.deepEqual(await probe(a, 'list', { path: srv.dataDir }), { error: 'ENOENT' });
  assert.deepEqual(await probe(a, 'list', { path: '/home/site' }), { ok: ['wwwroot'] }, 'no other app beside its own');
  assert.deepEqual(await probe(a, 'list', { path: '/root' }), { error: 'ENOENT' });
  // Its own code is there (the control).
  assert.ok((await readIn(a, '/home/site/wwwroot/handler.js')).ok > 1000);
  // The mount table: of the data directory, only its own release, read-only.
  const mounts = (await probe(a, 'mounts')).trim().split('\n').map((l) => l.split(' '));
  const fromData = mounts.filter((f) => f[3].startsWith(srv.dataDir));
  assert.equal(fromData.length, 1, JSON.stringify(fromData));
  assert.match(fromData[0][3], new RegExp(`^${srv.dataDir}/apps/${a}/releases/\\d+$`));
  assert.equal(fromData[0][4], '/home/site/wwwroot');
  assert.match(fromData[0][5], /^ro,/);
  // Every writable mount is its /tmp, /dev (bubblewrap's, memory) or its own /proc.
  for (const f of mounts.filter((x) => x[5].startsWith('rw')))
    assert.ok(['/', '/tmp', '/proc', '/dev', '/dev/pts'].includes(f[4]) || /^\/dev\/(null|zero|full|random|urandom|tty)$/.test(f[4]), `rw mount ${f.join(' ')}`);
  // The whole tree (but /proc, /sys and /usr): no unix socket, nothing writable outside /tmp.
  const w = await probe(a, 'walk');
  assert.ok(w.entries > 10, `walked ${w.entries}`);
  assert.deepEqual(w.sockets, []);
  assert.deepEqual(w.writable.filter((p) => p !== '/tmp' && !p.startsWith('/tmp/')), [], JSON.stringify(w.writable));
  assert.deepEqual(w.top.filter((x) => !['bin', 'dev', 'etc', 'home', 'lib', 'lib64', 'proc', 'run', 'sbin', 'tmp', 'usr'].includes(x)), [], JSON.stringify(w.top));
});

test('writes: its code and everything outside /tmp are read-only; /tmp is its own', async (t) => {
  if (lacking(t)) return;
  const a = apps.fsa;
  assert.deepEqual(await probe(a, 'write', { path: '/home/site/wwwroot/x' }), { error: 'EROFS' });
  assert.deepEqual(await probe(a, 'write', { path: '/home/site/wwwroot/handler.js', data: 'pwned' }), { error: 'EROFS' });
  assert.deepEqual(await probe(a, 'write', { path: '/usr/x' }), { error: 'EROFS' });
  assert.deepEqual(await probe(a, 'write', { path: '/usr/bin/node' }), { error: 'EROFS' });
  assert.deepEqual(await probe(a, 'write', { path: '/run/rampart/init' }), { error: 'EROFS' }, 'rampart\'s own binary, bound in for the init step');
  for (const path of ['/x', '/etc/x', '/etc/passwd', '/home/site/x', '/run/x', '/run/rampart/x', '/dev/x', '/proc/sys/vm/drop_caches', '/proc/sysrq-trigger', '/sys/fs/cgroup/x']) {
    const r = await probe(a, 'write', { path, data: path.startsWith('/proc') ? '' : 'x' });
    assert.ok(r.error && ['EROFS', 'EACCES', 'EPERM', 'ENOENT'].includes(r.error), `${path}: ${JSON.stringify(r)}`);
  }
  assert.equal((await readIn(a, '/home/site/wwwroot/handler.js')).text.slice(0, 13), '\'use strict\';');
  // /tmp: its own, memory, gone with the sandbox; not the host's, not another app's.
  const name = `/tmp/${uniq('fsb-mine')}`;
  assert.deepEqual(await probe(a, 'write', { path: name }), { ok: true });
  assert.ok((await readIn(a, name)).ok === 1);
  assert.equal(existsSync(name), false, 'the host\'s /tmp');
  assert.deepEqual(await readIn(apps.fsb, name), { error: 'ENOENT' }, 'another app\'s /tmp');
});

test('its output is bounded on disk: the app log rotates at 10 MiB (at most ~20 MiB per app)', async (t) => {
  if (lacking(t)) return;
  const dir = join(srv.dataDir, 'apps', apps.fsb, 'logs');
  assert.deepEqual(await probe(apps.fsb, 'spew', { mb: 30 }, { timeout: 60000 * SCALE }), { mb: 30 });
  const size = (f) => (existsSync(join(dir, f)) ? statSync(join(dir, f)).size : 0);
  await until(async () => size('app.log.1') > 0, 'the rotation', 10000 * SCALE);
  await sleep(300);
  assert.ok(size('app.log') + size('app.log.1') <= 21 << 20, `app.log ${size('app.log')}, app.log.1 ${size('app.log.1')}`);
  assert.deepEqual(readdirSync(dir).filter((f) => !['app.log', 'app.log.1', 'invocations.log'].includes(f)), []);
  assert.equal(await probe(apps.fsb, 'ping'), 'pong');
});

test('no way to rampart\'s helper or a unix socket of the data directory (the shared tier has the host\'s network)', async (t) => {
  if (lacking(t)) return;
  const a = apps.fsa;
  // The privileged helper talks to the server over a socketpair only: nothing to connect to,
  // and nothing of it inherited (the descriptor check above). The isolated app's socket, and
  // any other socket in the data directory or the host's /tmp, are not in the sandbox.
  const iso = join(srv.dataDir, 'apps', apps.iso, 'run', 'app.sock');
  assert.ok(statSync(iso).isSocket(), 'the isolated app\'s socket, on the host');
  const planted = [join(srv.dataDir, 'fsb.sock'), join(work, 'fsb.sock')];
  const servers = await Promise.all(planted.map((p) => new Promise((res, rej) => {
    const s = net.createServer((c) => c.end('hello')).listen(p, () => res(s));
    s.on('error', rej);
  })));
  const abstract = `rampart-fsb-${process.pid}`;
  const abs = await new Promise((res) => { const s = net.createServer((c) => c.end()).listen(`\0${abstract}`, () => res(s)); });
  try {
    assert.deepEqual(await probe(a, 'connect', { path: '/tmp/own.sock', serve: '1' }), { ok: 'connected' }, 'the control: a socket of its own');
    for (const path of [iso, ...planted]) assert.deepEqual(await probe(a, 'connect', { path }), { error: 'ENOENT' }, path);
    // Documented, not asserted: the shared tier shares the host's network namespace, so its
    // abstract unix sockets and loopback ports (another function app's handler among them,
    // which takes invocations without any key) are reachable.
    t.diagnostic(`abstract socket @${abstract}: ${JSON.stringify(await probe(a, 'connect', { path: abstract, abstract: '1' }))}`);
    const bPort = (await probe(apps.fsb, 'id')).env.FUNCTIONS_CUSTOMHANDLER_PORT;
    const direct = await probe(a, 'post', { port: bPort, path: '/probe', body: JSON.stringify({ Data: { req: { Params: { action: 'ping' }, Query: {} } } }) });
    t.diagnostic(`another function app's handler, directly on 127.0.0.1:${bPort}, no key: ${JSON.stringify(direct)}`);
  } finally {
    for (const s of [...servers, abs]) s.close();
  }
});

// The app's tasks as its cgroup counts them (that group is this installation's alone), or null.
const tasksNow = (app) => (layers.pids ? Number(cgroupRead(app, 'pids', 'pids.current')) : null);

// The task limit binds twice: the cgroup's pids.max, and RLIMIT_NPROC for the app's uid. The
// second counts every process of that uid on the machine, and two installations hand out the
// same uids (docs/security-model.md "Not yet / limits"), so with other rampart servers running
// the handler may get fewer children than pids allows: counts are compared with 64 and with the
// group's own count, never with each other.
test('a fork bomb stops at the task limit; the handler, other apps and the platform go on', async (t) => {
  if (lacking(t, 'uid')) return; // without its own uid the app has no task limit at all
  if (layers.pids) assert.equal(cgroupRead(apps.fsa, 'pids', 'pids.max'), '64');
  else t.diagnostic(`no pids controller: RLIMIT_NPROC only (${layers.missing})`);
  const base = tasksNow(apps.fsa);
  const r = await probe(apps.fsa, 'spawnmax', { max: 1000 }, { timeout: 120000 * SCALE });
  assert.ok(r.count > 0 && r.count < 64, `children started: ${r.count}`);
  assert.equal(r.error, 'EAGAIN');
  assert.equal(await probe(apps.fsa, 'ping'), 'pong');
  assert.equal(await probe(apps.fsb, 'ping'), 'pong');
  // The children are gone: the group is back where it was, and a second round hits a limit too.
  if (layers.pids) assert.ok(tasksNow(apps.fsa) <= base + 2, `tasks ${tasksNow(apps.fsa)}, before ${base}`);
  const again = await probe(apps.fsa, 'spawnmax', { max: 1000 }, { timeout: 120000 * SCALE });
  assert.ok(again.count > 0 && again.count < 64, `children started: ${again.count}`);
  assert.equal(again.error, 'EAGAIN');
});

test('a real fork bomb (perl, fork while 1) is held at the limit and killed; everything else goes on', async (t) => {
  if (lacking(t, 'uid')) return; // without its own uid the app has no task limit at all
  const perl = (await probe(apps.fsa, 'which', { names: 'perl' })).perl;
  if (!perl) return t.skip('no perl in /usr to run the bomb');
  const base = tasksNow(apps.fsa);
  const bomb = probe(apps.fsa, 'bombstart', { argv: JSON.stringify([perl, '-e', 'fork while 1']), ms: 3000 }, { timeout: 60000 * SCALE });
  try {
    await sleep(1000);
    // While it runs: the platform, another app and the handler itself answer.
    assert.equal((await api(srv, 'GET', '/api/apps')).status, 200);
    assert.equal(await probe(apps.fsb, 'ping'), 'pong');
    assert.equal(await probe(apps.fsa, 'ping'), 'pong');
    if (layers.pids) {
      const cur = tasksNow(apps.fsa);
      assert.ok(cur > base + 8 && cur <= 64, `tasks in the group: ${cur} (${base} before the bomb)`);
    }
    const b = await bomb;
    assert.equal(b.error, undefined, JSON.stringify(b));
    // It multiplied, was stopped by the limit (the handler cannot start a process either),
    // and never got past it.
    const most = Math.max(...b.samples);
    assert.ok(most > 8 && most < 64, `processes of the bomb: ${b.samples}`);
    assert.equal(b.spawnDuring, 'EAGAIN');
  } finally {
    const k = await probe(apps.fsa, 'bombstop', {}, { timeout: 60000 * SCALE });
    assert.deepEqual(k.left, 0, JSON.stringify(k));
  }
  // Gone: the handler answers, the group is back to the handler alone, processes start again.
  assert.equal(await probe(apps.fsa, 'ping'), 'pong');
  if (layers.pids) await until(async () => tasksNow(apps.fsa) <= base + 2, `the group back to ${base} tasks`, 5000 * SCALE);
  const after = await probe(apps.fsa, 'spawnmax', { max: 1000 });
  assert.ok(after.count > 0 && after.error === 'EAGAIN', JSON.stringify(after));
});

test('a memory bomb past memoryMB: that call is 502, the handler is replaced, the next call answers', async (t) => {
  if (lacking(t, 'memory')) return;
  const m = apps.fsm;
  assert.equal(cgroupRead(m, 'memory', v2() ? 'memory.max' : 'memory.limit_in_bytes'), String(96 << 20));
  const before = (await processState(m)).restarts;
  assert.equal(typeof before, 'number');
  const r = await invoke(m, 'alloc', { mb: 400 }, { timeout: 60000 * SCALE });
  assert.equal(r.status, 502, `allocated past the limit: ${r.text}`);
  // The very next call waits for the new handler and answers (docs/functions.md "Scale to zero
  // and cold starts": "right after ... a crash, calls wait for the new process instead of
  // failing"), even sent before the supervisor has seen the exit.
  const t1 = Date.now();
  const next = await invoke(m, 'ping');
  assert.equal(next.status, 200, `the call right after the kill, ${Date.now() - t1} ms later: ${next.status} ${next.text}`);
  assert.equal(next.json, 'pong');
  await until(async () => (await processState(m)).restarts >= before + 1, 'the restart counted');
  const st = await processState(m);
  assert.match(st.lastFailure, /status 137|signal 9/, JSON.stringify(st));
  const logs = await apiOk(srv, 'GET', `/api/apps/${m}/logs`, {}, 200);
  assert.match(logs.text, /process exited \((status 137|status \d+, signal 9)/);
  // Within the limit it works; other apps were not touched.
  assert.deepEqual(await probe(m, 'alloc', { mb: 32 }), { held: 32 });
  assert.equal(await probe(apps.fsb, 'ping'), 'pong');
  assert.equal(await probe(apps.fsa, 'ping'), 'pong');
  // The killed call's record: Failed, 502.
  let rec;
  await until(async () => (rec = (await apiOk(srv, 'GET', `/api/apps/${m}/invocations?function=probe&limit=500`, {}, 200)).value.find((x) => x.id === r.id)), 'the record of the killed call', 5000 * SCALE);
  assert.equal(rec.outcome, 'Failed', JSON.stringify(rec));
  assert.equal(rec.status, 502);
});

test('a /tmp bomb is bounded by memoryMB too (tmpfs, charged to the app)', async (t) => {
  if (lacking(t, 'memory')) return;
  const m = apps.fsm;
  const before = (await processState(m)).restarts;
  const r = await invoke(m, 'filltmp', { mb: 400 }, { timeout: 60000 * SCALE });
  if (r.status === 200) {
    // Stopped by the file system's size (= memoryMB), not by the host running out.
    assert.equal(r.json.error, 'ENOSPC', r.text);
    assert.ok(r.json.written <= 96 << 20, r.text);
  } else {
    assert.equal(r.status, 502, r.text);
    await until(async () => (await processState(m)).restarts >= before + 1, 'the restart counted');
  }
  assert.equal((await invoke(m, 'ping')).json, 'pong');
  assert.deepEqual(await readIn(m, '/tmp/fill'), { error: 'ENOENT' }, 'gone with its sandbox, or removed by the handler');
  assert.equal(await probe(apps.fsb, 'ping'), 'pong');
});
