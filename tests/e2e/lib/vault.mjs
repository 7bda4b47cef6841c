// vault.mjs - helpers for the Key Vault end-to-end tests (docs/vault.md): vaults through the
// management API, principals with Key Vault roles, raw data-plane requests with bearer tokens,
// and the SDK scenarios of lib/kv-scenarios.mjs run in a child node (lib/kv-probe.mjs).
import { spawn } from 'node:child_process';
import { request, DOMAIN } from './harness.mjs';
import {
  apiOk, createSp, assignRole, clientToken, loginOrigin, sdkEnv, E2E_DIR, LOOPBACK_DNS, uniq,
} from './iam.mjs';

export const KV_PROBE = new URL('./kv-probe.mjs', import.meta.url).pathname;
export const API_VERSION = '2025-07-01';

export const vaultHost = (name) => `${name}.vault.${DOMAIN}`;
export const vaultUrl = (srv, name) => `https://${vaultHost(name)}:${srv.port}`;

// A fresh valid vault name (3-24 of a-z0-9-).
export function vaultName(prefix = 'kv') {
  return uniq(prefix).toLowerCase().replace(/[^a-z0-9-]/g, '').slice(0, 24).replace(/-+$/, '');
}

export async function createVault(srv, name = vaultName(), body = {}) {
  await apiOk(srv, 'PUT', `/api/vaults/${name}`, { body }, 201);
  return name;
}

// A service principal holding `role` at `scope` (default: the vault). Returns the sp plus a
// data-plane token for https://vault.D.
export async function kvPrincipal(srv, vault, role, scope = `/vaults/${vault}`) {
  const sp = await createSp(srv);
  if (role) await assignRole(srv, sp.id, role, scope);
  sp.token = await clientToken(srv, sp.appId, sp.secret, 'vault');
  return sp;
}

// Raw data-plane request. Returns { status, headers, text, json }.
export async function kv(srv, vault, method, path, { token, body, headers = {}, query = `api-version=${API_VERSION}` } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
  }
  const full = query ? `${path}${path.includes('?') ? '&' : '?'}${query}` : path;
  const r = await request(srv, { method, path: full, host: vaultHost(vault), headers: h, body: payload });
  let json;
  try { json = r.text ? JSON.parse(r.text) : undefined; } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text: r.text, json };
}

// Runs scenario (an export of lib/kv-scenarios.mjs) with sp's credentials against vault.
export function runKv(srv, vault, sp, scenario, args = {}, { timeoutMs = 120000, onStderr } = {}) {
  const spec = {
    scenario, args, vaultUrl: vaultUrl(srv, vault), tenant: srv.tenant, clientId: sp.appId,
    secret: sp.secret, authorityHost: loginOrigin(srv),
  };
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', LOOPBACK_DNS, KV_PROBE, JSON.stringify(spec)], {
      cwd: E2E_DIR, env: sdkEnv(srv), stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`kv-probe ${scenario} timed out: ${stderr.slice(-4000)}`)); }, timeoutMs);
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; if (onStderr) onStderr(String(d), p); });
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').filter(Boolean).pop();
      let out;
      try { out = JSON.parse(line); } catch {
        if (signal) { resolve({ ok: false, killed: signal, stderr }); return; }
        reject(new Error(`kv-probe ${scenario} printed no result (exit ${code}):\n${stdout}\n${stderr.slice(-4000)}`));
        return;
      }
      out.stderr = stderr;
      resolve(out);
    });
  });
}

// The Key Vault error shape every failure must have.
export function kvErrorCode(r) {
  return r.json && r.json.error ? r.json.error.code : undefined;
}
