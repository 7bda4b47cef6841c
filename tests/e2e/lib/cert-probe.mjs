// cert-probe.mjs - runs @azure/identity's ClientCertificateCredential once against a test
// server and prints one JSON line; started like sdk-probe.mjs (`node --import
// lib/loopback-dns.mjs lib/cert-probe.mjs '<spec>'`, NODE_EXTRA_CA_CERTS = the install's CA).
// spec: { tenant, clientId, pemPath, authorityHost, scope, calls }
// Output: { ok, results: [{ token, expiresOnTimestamp }], error?, requests }
import { ClientCertificateCredential } from '@azure/identity';

const spec = JSON.parse(process.argv[2]);
const out = { ok: true, results: [] };
try {
  const cred = new ClientCertificateCredential(spec.tenant, spec.clientId, { certificatePath: spec.pemPath }, {
    authorityHost: spec.authorityHost, disableInstanceDiscovery: true,
  });
  for (let i = 0; i < (spec.calls || 1); i++) {
    const t = await cred.getToken(spec.scope);
    out.results.push({ token: t.token, expiresOnTimestamp: t.expiresOnTimestamp });
  }
} catch (e) {
  out.ok = false;
  out.error = { name: e.name, message: String(e.message) };
}
out.requests = globalThis.__rpRequests || [];
process.stdout.write(`${JSON.stringify(out)}\n`);
