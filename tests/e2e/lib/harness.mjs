// harness.mjs - start a real `rampart serve` on loopback for end-to-end tests.
//
// Each server gets a fresh data directory (rampart init --output json), ports picked by the
// kernel (--listen 127.0.0.1:0), and is stopped with SIGTERM; a non-zero exit, or anything a
// sanitizer printed, fails the test that owned it. Host names under the platform domain are
// resolved to 127.0.0.1 here (glibc does not resolve *.localhost), never through /etc/hosts.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import net from 'node:net';
import https from 'node:https';

export const BIN = process.env.RAMPART_BIN || new URL('../../../build/rampart', import.meta.url).pathname;
export const SANITIZED = process.env.RAMPART_SANITIZED === '1';
export const DOMAIN = 'rampart.localhost';

// Test directories are open to read (0755): what a test hands the server (a static root, a
// certificate) is read by the service user rampart serve drops to, not by root.
export function tmpDir(prefix = 'rp-e2e-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

// rampart serve started as root runs as this uid = gid once it has dropped root (RP_SERVICE_UID:
// the test machines have no "rampart" account).
export const SERVICE_UID = 1879048191;

// An operator's private key made readable the recommended way: root's, group the service
// user's, mode 0640 (rampart serve reads it after dropping root).
export function serviceReadable(path) {
  if (process.getuid() === 0) chownSync(path, 0, SERVICE_UID);
  chmodSync(path, 0o640);
}

// The uid and gid a running server has (from /proc): the service user once it dropped root.
export function processIds(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => status.match(new RegExp(`^${name}:\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`, 'm')).slice(1).map(Number);
  const caps = (name) => status.match(new RegExp(`^${name}:\\s+([0-9a-f]+)`, 'm'))[1];
  return { uid: field('Uid'), gid: field('Gid'), capEff: caps('CapEff'), capPrm: caps('CapPrm'), groups: status.match(/^Groups:(.*)$/m)[1].trim() };
}

// rampart init; returns the parsed JSON report.
export function init(dataDir, extra = []) {
  const r = spawnSync(BIN, ['init', '--data', dataDir, '--output', 'json', ...extra], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`init failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export function run(args, opts = {}) {
  return spawnSync(BIN, args, { encoding: 'utf8', timeout: 30000, ...opts });
}

// Starts `rampart serve`. opts: { args: [], env: {}, staticDir, dataDir, init: true }
export async function startServer(opts = {}) {
  const dataDir = opts.dataDir || tmpDir();
  const report = opts.init === false ? null : init(dataDir, opts.initArgs || []);
  const args = ['serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0'];
  if (opts.staticDir) args.push('--static', opts.staticDir);
  args.push(...(opts.args || []));
  // The managed identity endpoint also takes a kernel-picked port (tests run servers side by side).
  const env = { RAMPART_IDENTITY_LISTEN: '127.0.0.1:0', ...process.env, ...(opts.env || {}) };
  const proc = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not become ready: ${stderr}`)), SANITIZED ? 30000 : 10000);
    proc.stdout.on('data', (d) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        try { resolve(JSON.parse(stdout.slice(0, nl))); } catch (e) { reject(e); }
      }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`serve exited ${code}: ${stderr}`)); });
  });
  const port = Number(ready.https.split(':').pop());
  const httpPort = ready.http ? Number(ready.http.split(':').pop()) : 0;
  const ca = readFileSync(join(dataDir, 'tls', 'ca.crt'));
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const srv = {
    proc, dataDir, port, httpPort, ca, report, ready,
    tenant: ready.tenant, identityEndpoint: ready.identity,
    token: report ? report.admin_token : undefined,
    get stderr() { return stderr; },
    exited,
    // Stops with SIGTERM and checks the exit: 0, and no sanitizer report.
    async stop({ keepData = false } = {}) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const r = await exited;
      if (!keepData && !opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
      if (r.code !== 0) throw new Error(`serve exited with ${r.code}/${r.signal}: ${stderr.slice(-4000)}`);
      if (/ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/.test(stderr))
        throw new Error(`sanitizer report:\n${stderr.slice(-8000)}`);
      return r;
    },
  };
  return srv;
}

// Resolve every name to loopback: the platform's host names exist only on this machine.
export function lookupLoopback(hostname, options, cb) {
  if (typeof options === 'function') { cb = options; options = {}; }
  if (options && options.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
}

// HTTPS request with node's client. Returns { status, headers, body (Buffer), socket info }.
export function request(srv, { method = 'GET', path = '/', host = DOMAIN, headers = {}, body, servername, agent = false, timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host, port: srv.port, method, path, headers, ca: srv.ca, agent, lookup: lookupLoopback,
      servername: servername ?? (net.isIP(host) ? undefined : host), timeout,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, statusText: res.statusMessage, headers: res.headers, body: Buffer.concat(chunks), text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timeout')));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// Sends raw bytes over one TLS connection and collects everything until the server closes or
// `idleMs` passes with no data. Returns { data (string), closed (bool) }.
export function rawTls(srv, bytes, { servername = DOMAIN, idleMs = 1500, chunks } = {}) {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: '127.0.0.1', port: srv.port, ca: srv.ca, servername }, async () => {
      if (chunks) {
        for (const c of chunks) { sock.write(c); await new Promise((r) => setTimeout(r, 20)); }
      } else sock.write(bytes);
    });
    let data = Buffer.alloc(0);
    let timer = setTimeout(done, idleMs, false);
    function done(closed) {
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: data.toString('latin1'), closed });
    }
    sock.on('data', (d) => { data = Buffer.concat([data, d]); clearTimeout(timer); timer = setTimeout(done, idleMs, false); });
    sock.on('end', () => done(true));
    sock.on('error', (e) => { if (data.length) done(true); else reject(e); });
  });
}

// Plain TCP (the redirect listener).
export function rawTcp(port, bytes, { idleMs = 1500 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port }, () => sock.write(bytes));
    let data = Buffer.alloc(0);
    let timer = setTimeout(done, idleMs, false);
    function done(closed) { clearTimeout(timer); sock.destroy(); resolve({ data: data.toString('latin1'), closed }); }
    sock.on('data', (d) => { data = Buffer.concat([data, d]); clearTimeout(timer); timer = setTimeout(done, idleMs, false); });
    sock.on('end', () => done(true));
    sock.on('error', (e) => { if (data.length) done(true); else reject(e); });
  });
}

// Splits a raw byte stream of HTTP/1.1 responses into [{status, headers, body}].
export function parseResponses(raw) {
  const out = [];
  let rest = raw;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = rest.slice(0, end).split('\r\n');
    const status = Number(head[0].split(' ')[1]);
    const headers = {};
    for (const l of head.slice(1)) { const i = l.indexOf(':'); headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim(); }
    const len = Number(headers['content-length'] || 0);
    out.push({ status, headers, body: rest.slice(end + 4, end + 4 + len) });
    rest = rest.slice(end + 4 + len);
  }
  return out;
}

export function openssl(args, input = '') {
  return spawnSync('openssl', args, { input, encoding: 'utf8', timeout: 20000 });
}

export { mkdirSync, writeFileSync, rmSync, readFileSync, join };

// Like parseResponses, but also returns what is left over (bytes that are not a complete
// HTTP/1.1 response): { responses, rest }. For responses to HEAD the announced length is not
// sent; pass heads = number of leading responses that belong to HEAD requests.
export function parseResponseStream(raw, { heads = 0 } = {}) {
  const responses = [];
  let rest = raw;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const lines = rest.slice(0, end).split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = {};
    for (const l of lines.slice(1)) { const i = l.indexOf(':'); headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim(); }
    const noBody = responses.length < heads || status === 304 || status === 204 || (status >= 100 && status < 200);
    const len = noBody ? 0 : Number(headers['content-length'] || 0);
    if (rest.length < end + 4 + len) break;
    responses.push({ status, headers, body: rest.slice(end + 4, end + 4 + len) });
    rest = rest.slice(end + 4 + len);
  }
  return { responses, rest };
}

// Raw request bytes from a corpus-style description: a string (each char one byte, latin1, so
// "\u00e9" is the single byte 0xE9) or an array of strings and { repeat: string, count: n }.
export function rawBytes(raw) {
  const parts = Array.isArray(raw) ? raw : [raw];
  return Buffer.from(parts.map((p) => (typeof p === 'string' ? p : p.repeat.repeat(p.count))).join(''), 'latin1');
}

// Splits a Buffer into pieces of n bytes (for rawTls's `chunks`: one TLS record each).
export function splitBytes(buf, n) {
  const out = [];
  for (let i = 0; i < buf.length; i += n) out.push(buf.subarray(i, i + n));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Long-lived raw connections (limits, drain): the caller decides when to write, what to wait
// for and when to give up. Times are performance.now() milliseconds.

export const SCALE = SANITIZED ? 3 : 1; // sanitizer builds run ~3x slower

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const secureContexts = new WeakMap();
// One SecureContext per server (parsing the CA for each of thousands of connects is slow).
export function secureContextFor(srv) {
  let ctx = secureContexts.get(srv);
  if (!ctx) {
    ctx = tls.createSecureContext({ ca: srv.ca });
    secureContexts.set(srv, ctx);
  }
  return ctx;
}

// Complete responses only (head and the whole Content-Length body); raw is latin1 text.
// Returns { responses: [{status, headers, body}], rest } where rest is what follows them.
export function completeResponses(raw) {
  const responses = [];
  let rest = raw;
  for (;;) {
    if (!rest.startsWith('HTTP/1.1 ')) break;
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = rest.slice(0, end).split('\r\n');
    const status = Number(head[0].split(' ')[1]);
    const headers = {};
    for (const l of head.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const len = status === 100 || status === 204 || status === 304 ? 0 : Number(headers['content-length'] || 0);
    if (rest.length < end + 4 + len) break;
    responses.push({ status, headers, body: rest.slice(end + 4, end + 4 + len) });
    rest = rest.slice(end + 4 + len);
  }
  return { responses, rest };
}

// A socket (TLS or TCP) that records everything it receives and when it was closed.
export class RawConn {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.startedAt = performance.now(); // openTls/openTcp: when the connect began
    this.openedAt = performance.now();  // when this wrapper was made (connected)
    this.firstDataAt = 0; // when the first byte arrived
    this.closedAt = 0;    // when the peer ended / the socket closed or failed
    this.error = null;
    this.waiters = new Set();
    sock.on('data', (d) => {
      if (!this.firstDataAt) this.firstDataAt = performance.now();
      this.buf = Buffer.concat([this.buf, d]);
      this._wake();
    });
    const fin = (e) => {
      if (e && !this.error) this.error = e;
      if (!this.closedAt) this.closedAt = performance.now();
      this._wake();
    };
    sock.on('end', () => fin());
    sock.on('close', () => fin());
    sock.on('error', fin);
  }

  get closed() { return this.closedAt !== 0; }
  get text() { return this.buf.toString('latin1'); }
  get responses() { return completeResponses(this.text).responses; }

  _wake() { for (const w of [...this.waiters]) w(); }

  // Writes unless the socket is gone; resolves when handed to the kernel (or failed).
  write(bytes) {
    return new Promise((resolve) => {
      if (this.sock.destroyed || !this.sock.writable) return resolve(false);
      this.sock.write(bytes, (err) => resolve(!err));
    });
  }

  // Resolves true as soon as pred() holds, false after timeoutMs.
  waitUntil(pred, timeoutMs) {
    return new Promise((resolve) => {
      if (pred()) return resolve(true);
      const check = () => {
        if (!pred()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => { this.waiters.delete(check); resolve(pred()); }, timeoutMs);
      this.waiters.add(check);
    });
  }

  waitResponses(n, timeoutMs) { return this.waitUntil(() => this.responses.length >= n, timeoutMs); }
  waitClosed(timeoutMs) { return this.waitUntil(() => this.closed, timeoutMs); }
  destroy() { this.sock.destroy(); }
}

// A TLS connection with the handshake done. opts: { servername, timeout }.
export function openTls(srv, { servername = DOMAIN, timeout = 10000 * SCALE } = {}) {
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: '127.0.0.1', port: srv.port, secureContext: secureContextFor(srv), servername });
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('TLS handshake timeout')); }, timeout);
    const onErr = (e) => { clearTimeout(timer); reject(e); };
    sock.once('error', onErr);
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      sock.off('error', onErr);
      const c = new RawConn(sock);
      c.startedAt = startedAt;
      resolve(c);
    });
  });
}

// A plain TCP connection, connected. Rejects with the connect error (e.g. ECONNREFUSED).
export function openTcp(port, { timeout = 10000 * SCALE } = {}) {
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('TCP connect timeout')); }, timeout);
    const onErr = (e) => { clearTimeout(timer); reject(e); };
    sock.once('error', onErr);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.off('error', onErr);
      const c = new RawConn(sock);
      c.startedAt = startedAt;
      resolve(c);
    });
  });
}

// Runs fn over items with at most `limit` in flight; results in item order.
export async function inBatches(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function lane() {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

// Like rawTls, but the idle clock starts only once every byte has been handed to TLS, so a slow
// handshake or a request sent in many small records is not mistaken for a silent server.
// Returns { data (latin1 string), closed (the server ended the connection) }.
export function rawTlsSettled(srv, bytes, { servername = DOMAIN, idleMs = 1500, chunks, gapMs = 20, maxMs = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    let timer = null;
    let finished = false;
    const cap = setTimeout(() => done(false), maxMs);
    const arm = () => { clearTimeout(timer); timer = setTimeout(done, idleMs, false); };
    const sock = tls.connect({ host: '127.0.0.1', port: srv.port, ca: srv.ca, servername }, async () => {
      for (const c of chunks || [bytes]) {
        if (finished) return;
        await new Promise((r) => sock.write(c, r));
        if (chunks) await new Promise((r) => setTimeout(r, gapMs));
      }
      if (!finished) arm();
    });
    function done(closed) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearTimeout(cap);
      sock.destroy();
      resolve({ data: data.toString('latin1'), closed });
    }
    sock.on('data', (d) => { data = Buffer.concat([data, d]); if (timer) arm(); });
    sock.on('end', () => done(true));
    sock.on('error', (e) => { if (data.length || finished) done(true); else { finished = true; clearTimeout(cap); clearTimeout(timer); reject(e); } });
  });
}

// Asserts that none of needles (Buffers) appears in any file under dir (a canary scan for
// secrets at rest). Files that vanish during the walk (a deleted app's, removed off the loop)
// are skipped. Returns how many files were read.
export function assertNotOnDisk(dir, needles, what = 'a secret') {
  let files = 0;
  const quiet = (fn, dflt) => { try { return fn(); } catch (e) { if (e.code === 'ENOENT') return dflt; throw e; } };
  const walk = (d) => {
    for (const ent of quiet(() => readdirSync(d, { withFileTypes: true }), [])) {
      const p = join(d, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.isFile()) {
        files += 1;
        const data = quiet(() => readFileSync(p), Buffer.alloc(0));
        for (const n of needles) if (data.indexOf(n) !== -1) throw new Error(`${p} holds ${what} in plaintext`);
      }
    }
  };
  walk(dir);
  return files;
}

// An app's cgroup directory for a controller on this machine's layout (v2 or v1), or null; and
// one of its files' contents (trimmed), or null when the group or the file is not there.
export function cgroupDir(name, controller) {
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  const base = v2 ? '/sys/fs/cgroup/rampart' : `/sys/fs/cgroup/${controller}/rampart`;
  if (!existsSync(base)) return null;
  const leaf = readdirSync(base).find((d) => d.startsWith(`app-${name}-`));
  return leaf ? join(base, leaf) : null;
}
export function cgroupRead(name, controller, file) {
  const d = cgroupDir(name, controller);
  return d && existsSync(join(d, file)) ? readFileSync(join(d, file), 'utf8').trim() : null;
}
