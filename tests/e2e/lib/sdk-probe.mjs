// sdk-probe.mjs - runs the real @azure/identity SDK once and prints one JSON line; started by
// lib/iam.mjs (runProbe) as `node --import lib/loopback-dns.mjs lib/sdk-probe.mjs '<spec>'`
// with NODE_EXTRA_CA_CERTS set to the install's CA.
//
// spec: { kind: "secret", tenant, clientId, secret, authorityHost, scope, calls }
//     | { kind: "mi", scope, calls, clientId?, objectId?, resourceId? }  (IDENTITY_ENDPOINT and
//       IDENTITY_HEADER come from the environment, as a workload gets them)
//   echoEnv: true adds { env: { IDENTITY_ENDPOINT, IDENTITY_HEADER, ... } } to the output.
// Output: { ok, results: [{ token, expiresOnTimestamp, ms }], error?: { name, message, ms },
//           requests: [{ scheme, method, host, port, path }] }  (requests made by the SDK)
import { ClientSecretCredential, ManagedIdentityCredential } from '@azure/identity';

const spec = JSON.parse(process.argv[2] || process.env.RP_PROBE || '{}');
const calls = spec.calls || 1;
const out = { ok: true, results: [], requests: [] };

function credential() {
  if (spec.kind === 'secret')
    return new ClientSecretCredential(spec.tenant, spec.clientId, spec.secret, {
      authorityHost: spec.authorityHost, disableInstanceDiscovery: true,
    });
  if (spec.kind === 'mi') {
    if (spec.clientId) return new ManagedIdentityCredential({ clientId: spec.clientId });
    if (spec.objectId) return new ManagedIdentityCredential({ objectId: spec.objectId });
    if (spec.resourceId) return new ManagedIdentityCredential({ resourceId: spec.resourceId });
    return new ManagedIdentityCredential();
  }
  throw new Error(`unknown probe kind ${spec.kind}`);
}

try {
  const cred = credential();
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    try {
      const t = await cred.getToken(spec.scope);
      out.results.push({ token: t.token, expiresOnTimestamp: t.expiresOnTimestamp, tokenType: t.tokenType, ms: performance.now() - t0 });
    } catch (e) {
      out.ok = false;
      out.error = { name: e.name, message: String(e.message), ms: performance.now() - t0 };
      break;
    }
  }
} catch (e) {
  out.ok = false;
  out.error = { name: e.name, message: String(e.message), ms: 0 };
}
out.requests = globalThis.__rpRequests || [];
if (spec.echoEnv) {
  out.env = {};
  for (const k of ['IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'IDENTITY_SERVER_THUMBPRINT', 'MSI_ENDPOINT', 'MSI_SECRET'])
    if (process.env[k] !== undefined) out.env[k] = process.env[k];
}
process.stdout.write(`${JSON.stringify(out)}\n`);
