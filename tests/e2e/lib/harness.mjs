// harness.mjs - start a real `rampart serve` on loopback for end-to-end tests.
//
// Each server gets a fresh data directory (rampart init --output json), ports picked by the
// kernel (--listen 127.0.0.1:0), and is stopped with SIGTERM; a non-zero exit, or anything a
// sanitizer printed, fails the test that owned it. Host names under the platform domain are
// resolved to 127.0.0.1 here (glibc does not resolve *.localhost), never through /etc/hosts.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import net from 'node:net';
import https from 'node:https';

export const BIN = process.env.RAMPART_BIN || new URL('../../../build/rampart', import.meta.url).pathname;
export const SANITIZED = process.env.RAMPART_SANITIZED === '1';
export const DOMAIN = 'rampart.localhost';

export function tmpDir(prefix = 'rp-e2e-') {
  return mkdtempSync(join(tmpdir(), prefix));
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
  const env = { ...process.env, ...(opts.env || {}) };
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
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), text: Buffer.concat(chunks).toString('utf8') }));
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
