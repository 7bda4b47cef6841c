// iam.mjs - helpers for the identity and access end-to-end tests (docs/iam.md): management API
// calls, principals and role assignments, tokens from the token service, JWT building and
// forging with node:crypto, and child node processes that run the real @azure/identity SDK.
//
// The SDK runs in a child process (lib/sdk-probe.mjs) started with NODE_EXTRA_CA_CERTS set to
// the install's CA (node reads it only at start-up) and `--import lib/loopback-dns.mjs`, which
// resolves every name to 127.0.0.1 and records the requests the SDK made.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { join } from 'node:path';
import { request, DOMAIN, BIN, SCALE, sleep } from './harness.mjs';

export const E2E_DIR = new URL('..', import.meta.url).pathname;
export const LOOPBACK_DNS = new URL('./loopback-dns.mjs', import.meta.url).pathname;
export const SDK_PROBE = new URL('./sdk-probe.mjs', import.meta.url).pathname;
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const resource = (name) => `https://${name}.${DOMAIN}`;
export const loginOrigin = (srv) => `https://login.${DOMAIN}:${srv.port}`;
export const issuer = (srv) => `${loginOrigin(srv)}/${srv.tenant}/v2.0`;

let seq = 0;
// A fresh name for a test object: unique within this process, valid as a principal name.
export function uniq(prefix = 'x') {
  seq += 1;
  return `${prefix}-${process.pid.toString(36)}-${seq}`;
}

function parseJson(text) {
  if (!text) return undefined;
  try { return JSON.parse(text); } catch { return undefined; }
}

// Management API call. token: the bearer token (admin rpa_… or a JWT); null sends none.
// Returns { status, headers, text, json }.
export async function api(srv, method, path, { token = srv.token, body, headers = {}, host = DOMAIN } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
  }
  const r = await request(srv, { method, path, host, headers: h, body: payload });
  return { status: r.status, headers: r.headers, text: r.text, json: parseJson(r.text) };
}

// Like api, but fails unless the status is `expect` (a number or an array of numbers).
export async function apiOk(srv, method, path, opts = {}, expect = [200, 201, 204]) {
  const r = await api(srv, method, path, opts);
  const want = Array.isArray(expect) ? expect : [expect];
  if (!want.includes(r.status))
    throw new Error(`${method} ${path} ${opts.body ? JSON.stringify(opts.body) : ''} -> ${r.status} ${r.text}`);
  return r.json;
}

// A service principal with one client secret. Returns { id, appId, name, secret, keyId }.
export async function createSp(srv, name = uniq('sp')) {
  const p = await apiOk(srv, 'POST', '/api/servicePrincipals', { body: { name } }, 201);
  const c = await apiOk(srv, 'POST', `/api/servicePrincipals/${name}/credentials`, { body: { type: 'secret' } }, 201);
  return { ...p, name, secret: c.secret, keyId: c.keyId };
}

export async function assignRole(srv, principal, role, scope = '/', extra = {}) {
  return apiOk(srv, 'POST', '/api/roleAssignments', { body: { principal, role, scope, ...extra } }, 201);
}

// The token service's form POST. Returns { status, json, text }.
export async function tokenRequest(srv, form, { tenant = srv.tenant, headers = {} } = {}) {
  const body = new URLSearchParams(form).toString();
  const r = await request(srv, {
    method: 'POST', host: `login.${DOMAIN}`, path: `/${tenant}/oauth2/v2.0/token`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body,
  });
  return { status: r.status, text: r.text, json: parseJson(r.text), headers: r.headers };
}

// An access token for a client (client_credentials + secret) and a resource name.
export async function clientToken(srv, clientId, secret, res = 'management') {
  const r = await tokenRequest(srv, {
    grant_type: 'client_credentials', client_id: clientId, client_secret: secret, scope: `${resource(res)}/.default`,
  });
  if (r.status !== 200) throw new Error(`token for ${clientId}/${res}: ${r.status} ${r.text}`);
  return r.json.access_token;
}

export async function fetchJwks(srv) {
  const r = await request(srv, { host: `login.${DOMAIN}`, path: `/${srv.tenant}/discovery/v2.0/keys` });
  if (r.status !== 200) throw new Error(`JWKS: ${r.status} ${r.text}`);
  return JSON.parse(r.text);
}

// ---------------------------------------------------------------- JWT building

export const b64url = (buf) => Buffer.from(buf).toString('base64url');
export const b64json = (obj) => b64url(JSON.stringify(obj));

export function decodeJwt(t) {
  const [h, p, s] = t.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')), signature: s, signingInput: `${h}.${p}` };
}

// Signs header.payload. alg RS256/PS256 (key: RSA private KeyObject), ES256 (EC P-256,
// IEEE-P1363 r||s), HS256 (key: Buffer or string secret), none (no signature).
export function signJwt(header, payload, key, alg = header.alg) {
  const input = `${b64json(header)}.${b64json(payload)}`;
  let sig;
  switch (alg) {
    case 'none': sig = Buffer.alloc(0); break;
    case 'HS256': sig = crypto.createHmac('sha256', key).update(input).digest(); break;
    case 'RS256': sig = crypto.sign('sha256', Buffer.from(input), key); break;
    case 'PS256': sig = crypto.sign('sha256', Buffer.from(input), { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }); break;
    case 'ES256': sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }); break;
    default: throw new Error(`alg ${alg}`);
  }
  return `${input}.${b64url(sig)}`;
}

let attackerRsa;
// An RSA-2048 key pair that the server has never seen (generated once per process).
export function attackerKey() {
  if (!attackerRsa) attackerRsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return attackerRsa;
}

// ---------------------------------------------------------------- audit

// Reads the audit trail through the API (admin token): every record with seq > after.
export async function auditRecords(srv, after = 0) {
  const out = [];
  let cursor = after;
  for (;;) {
    const r = await apiOk(srv, 'GET', `/api/audit?after=${cursor}&limit=1000`, {}, 200);
    out.push(...r.value);
    if (!r.value.length || r.next === cursor) break;
    cursor = r.next;
  }
  return out;
}

// Polls the audit trail until pred(records) holds (records are written asynchronously by a
// group-commit thread, within about a second). Returns the records, or throws after timeoutMs.
export async function waitAudit(srv, pred, { after = 0, timeoutMs = 5000 * SCALE, what = 'audit records' } = {}) {
  const t0 = Date.now();
  let recs = [];
  for (;;) {
    recs = await auditRecords(srv, after);
    if (pred(recs)) return recs;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}; last ${recs.length} records: ${JSON.stringify(recs.slice(-5))}`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------- SDK in a child process

// Environment for a child node that trusts the install's CA and has no Azure or rampart
// variables of its own (so only what a test sets selects the credential source).
export function sdkEnv(srv, extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(AZURE_|IDENTITY_|MSI_|IMDS_|RAMPART_|NODE_OPTIONS$|NODE_EXTRA_CA_CERTS$|NODE_TEST_CONTEXT$)/.test(k)) continue;
    env[k] = v;
  }
  env.NODE_EXTRA_CA_CERTS = join(srv.dataDir, 'tls', 'ca.crt');
  return { ...env, ...extra };
}

// The argv that runs the probe: node --import loopback-dns.mjs sdk-probe.mjs '<json>'.
export function probeArgv(spec) {
  return [process.execPath, '--import', LOOPBACK_DNS, SDK_PROBE, JSON.stringify(spec)];
}

function parseProbe(stdout, stderr, code) {
  const line = stdout.trim().split('\n').filter(Boolean).pop();
  let out;
  try { out = JSON.parse(line); } catch { throw new Error(`sdk-probe printed no result (exit ${code}):\nstdout: ${stdout}\nstderr: ${stderr}`); }
  out.exitCode = code;
  out.stderr = stderr;
  return out;
}

// Runs lib/sdk-probe.mjs with spec (see that file). Returns its JSON result plus exitCode.
export function runProbe(srv, spec, { env = {}, timeoutMs = 60000 } = {}) {
  const [node, ...args] = probeArgv(spec);
  return new Promise((resolve, reject) => {
    const p = spawn(node, args, { cwd: E2E_DIR, env: sdkEnv(srv, env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`sdk-probe timed out: ${stderr}`)); }, timeoutMs);
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
    p.on('close', (code) => {
      clearTimeout(timer);
      try { resolve(parseProbe(stdout, stderr, code)); } catch (e) { reject(e); }
    });
  });
}

// Runs the rampart CLI without blocking this process's event loop (the CLI's child may call
// the server while the test waits). Rejects if a sanitizer build printed a report.
export function cliAsync(args, { env = {}, timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`rampart ${args.join(' ')} timed out: ${stderr}`)); }, timeoutMs);
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
    p.on('close', (status, signal) => {
      clearTimeout(timer);
      // A sanitizer build reports memory errors on stderr; a CLI run that printed one failed.
      if (/ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/.test(stderr)) reject(new Error(`rampart ${args.join(' ')}: sanitizer report:\n${stderr.slice(-8000)}`));
      else resolve({ status, signal, stdout, stderr });
    });
  });
}

// Environment for client commands against srv (no client file: HOME is a scratch dir).
export function cliEnv(srv, home, extra = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RAMPART_') && k !== 'NODE_TEST_CONTEXT'));
  return {
    ...env, HOME: home, RAMPART_URL: `https://127.0.0.1:${srv.port}`,
    RAMPART_CA: join(srv.dataDir, 'tls', 'ca.crt'), RAMPART_TOKEN: srv.token, ...extra,
  };
}

// Does this build's CLI know `rampart WORDS...`? (Its usage text, `rampart help`, lists every
// command it has.)
export function cliHas(words) {
  const r = spawnSync(BIN, ['help'], { encoding: 'utf8', timeout: 10000 });
  return r.status === 0 && r.stdout.includes(`rampart ${words.join(' ')}`);
}

// Every audit record so far (the API pages by 1,000).
export async function auditAll(srv) {
  const all = [];
  for (let after = 0; ;) {
    const r = await apiOk(srv, 'GET', `/api/audit?after=${after}&limit=1000`, {}, 200);
    all.push(...r.value);
    if (r.value.length < 1000 || !r.next) return all;
    after = r.next;
  }
}
