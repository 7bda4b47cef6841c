// kv-probe.mjs - runs one Key Vault scenario with the real @azure/keyvault-secrets and
// @azure/keyvault-keys SDKs (tokens from ClientSecretCredential against rampart) and prints one
// JSON line. Started by lib/vault.mjs (runKv) as
//   node --import lib/loopback-dns.mjs lib/kv-probe.mjs '<spec>'
// with NODE_EXTRA_CA_CERTS set to the install's CA.
//
// spec: { scenario, vaultUrl, tenant, clientId, secret, authorityHost, args }
// Output: { ok, result?, error?: { name, message, code, statusCode }, requests }
// A scenario (lib/kv-scenarios.mjs) returns plain data for the test to assert on, or throws.
import { ClientSecretCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { KeyClient, CryptographyClient } from '@azure/keyvault-keys';
import * as scenarios from './kv-scenarios.mjs';

const spec = JSON.parse(process.argv[2] || '{}');
const out = { ok: true };
try {
  const cred = new ClientSecretCredential(spec.tenant, spec.clientId, spec.secret, {
    authorityHost: spec.authorityHost, disableInstanceDiscovery: true,
  });
  // Default client options: the challenge resource verification stays on.
  const ctx = {
    cred,
    secrets: new SecretClient(spec.vaultUrl, cred),
    keys: new KeyClient(spec.vaultUrl, cred),
    CryptographyClient,
    args: spec.args || {},
  };
  const fn = scenarios[spec.scenario];
  if (!fn) throw new Error(`unknown scenario ${spec.scenario}`);
  out.result = await fn(ctx);
} catch (e) {
  out.ok = false;
  out.error = { name: e.name, message: String(e.message), code: e.code, statusCode: e.statusCode };
}
out.requests = (globalThis.__rpRequests || []).map((r) => `${r.method} ${r.host}${r.path}`);
process.stdout.write(`${JSON.stringify(out)}\n`);
