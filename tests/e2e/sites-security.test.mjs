// sites-security.test.mjs - an app's transport and access settings end to end (docs/sites.md
// "Settings"): minimum TLS version enforced per host name at the handshake (openssl s_client),
// client certificate modes with a trusted CA list and exclusion paths (node's TLS client with
// and without certificates), access restrictions on the site and on its scm host (403 "Ip
// Forbidden"), and every bad setting refused with the property named.
import test from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, request, openssl, lookupLoopback, DOMAIN } from './lib/harness.mjs';
import { api, apiOk, uniq, cliAsync, cliEnv, waitAudit } from './lib/iam.mjs';
import { makeZip } from './lib/zip.mjs';

let srv;
let dir;

const appName = (p) => uniq(p).replace(/[^a-z0-9-]/g, '').slice(0, 40);

async function makeApp(name, files = [{ name: 'index.html', data: 'home' }, { name: 'public/p.txt', data: 'pub' }]) {
  await apiOk(srv, 'PUT', `/api/apps/${name}`, { body: {} }, 201);
  const r = await request(srv, { method: 'POST', host: `${name}.scm.${DOMAIN}`, path: '/api/zipdeploy', headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/zip' }, body: makeZip(files) });
  assert.equal(r.status, 200, r.text);
}

const setProps = (name, properties) => api(srv, 'PUT', `/api/apps/${name}`, { body: { properties } });

function get(name, path = '/', { cert, key, headers = {}, host } = {}) {
  return new Promise((resolve, reject) => {
    const h = host || `${name}.${DOMAIN}`;
    const req = https.request({ host: h, servername: h, port: srv.port, path, ca: srv.ca, cert, key, agent: false, lookup: lookupLoopback, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, statusMessage: res.statusMessage, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

function makeCa(cn) {
  const key = join(dir, `${cn}.key`);
  const crt = join(dir, `${cn}.crt`);
  const r = openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
    '-days', '2', '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  assert.equal(r.status, 0, r.stderr);
  return { key, crt };
}

function makeClient(ca, cn) {
  const key = join(dir, `${cn}.key`);
  const csr = join(dir, `${cn}.csr`);
  const crt = join(dir, `${cn}.crt`);
  const ext = join(dir, `${cn}.ext`);
  writeFileSync(ext, 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  let r = openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  assert.equal(r.status, 0, r.stderr);
  r = openssl(['x509', '-req', '-in', csr, '-CA', ca.crt, '-CAkey', ca.key, '-CAcreateserial', '-out', crt, '-days', '1', '-extfile', ext]);
  assert.equal(r.status, 0, r.stderr);
  return { cert: readFileSync(crt), key: readFileSync(key) };
}

test.before(async () => {
  srv = await startServer();
  dir = mkdtempSync(join(tmpdir(), 'rp-sites-sec-'));
});
test.after(async () => {
  if (srv) await srv.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('minimum TLS version per app, enforced at the handshake for that host name only', async () => {
  const strict = appName('tls13');
  const lax = appName('tls12');
  await makeApp(strict);
  await makeApp(lax);
  const r = await setProps(strict, { minTlsVersion: '1.3' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.properties.minTlsVersion, '1.3');
  const hs = (name, v) => openssl(['s_client', '-connect', `127.0.0.1:${srv.port}`, '-servername', `${name}.${DOMAIN}`, v, '-CAfile', join(srv.dataDir, 'tls', 'ca.crt')], 'Q\n');
  const s12 = hs(strict, '-tls1_2');
  assert.notEqual(s12.status, 0, 'TLS 1.2 to a 1.3-only app must fail');
  assert.match(s12.stdout + s12.stderr, /alert|handshake failure|protocol version/i);
  assert.equal(hs(strict, '-tls1_3').status, 0);
  assert.equal(hs(lax, '-tls1_2').status, 0, 'other apps keep TLS 1.2');
  const scm12 = openssl(['s_client', '-connect', `127.0.0.1:${srv.port}`, '-servername', `${strict}.scm.${DOMAIN}`, '-tls1_2'], 'Q\n');
  assert.notEqual(scm12.status, 0, 'the scm host follows the app');
  assert.equal((await get(strict)).text, 'home');
  // Back to 1.2 with null (the default).
  assert.equal((await setProps(strict, { minTlsVersion: null })).json.properties.minTlsVersion, '1.2');
  assert.equal(hs(strict, '-tls1_2').status, 0);
});

test('client certificates: Required with trusted CAs and exclusion paths; Optional never refuses', async () => {
  const name = appName('mtls');
  await makeApp(name);
  const ca = makeCa('trusted-ca');
  const other = makeCa('other-ca');
  const good = makeClient(ca, 'alice');
  const stranger = makeClient(other, 'mallory');
  // A mode without trusted CAs is refused: the platform checks what it forwards.
  const bad = await setProps(name, { clientCertEnabled: true, clientCertMode: 'Required' });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /clientCertTrustedCAs/);
  const r = await setProps(name, { clientCertEnabled: true, clientCertMode: 'Required', clientCertExclusionPaths: '/public;/health', clientCertTrustedCAs: readFileSync(ca.crt, 'utf8') });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.properties.clientCertMode, 'Required');
  assert.deepEqual(r.json.properties.clientCertTrustedCAs, ['/CN=trusted-ca']);
  const none = await get(name);
  assert.equal(none.status, 403);
  assert.equal(JSON.parse(none.text).error.code, 'ClientCertificateRequired');
  assert.equal((await get(name, '/', good)).text, 'home');
  assert.equal((await get(name, '/', stranger)).status, 403, 'a certificate from another CA');
  assert.equal((await get(name, '/public/p.txt')).text, 'pub', 'excluded path');
  assert.equal((await get(name, '/publicity')).status, 403, 'a prefix is a whole segment');
  assert.equal((await get(name, '/PUBLIC/p.txt')).status, 404, 'excluded (case-insensitive prefix), then just not there');
  // Optional: no certificate is fine.
  assert.equal((await setProps(name, { clientCertMode: 'Optional' })).status, 200);
  assert.equal((await get(name)).text, 'home');
  assert.equal((await get(name, '/', stranger)).text, 'home');
  // Off again.
  assert.equal((await setProps(name, { clientCertEnabled: false })).json.properties.clientCertEnabled, false);
  assert.equal((await get(name)).text, 'home');
});

test('access restrictions: priorities, implicit deny, headers, default action; 403 Ip Forbidden', async () => {
  const name = appName('acl');
  await makeApp(name);
  const set = (rules, extra = {}) => setProps(name, { ipSecurityRestrictions: rules, ...extra });
  // No rules: everyone.
  assert.equal((await get(name)).status, 200);
  // An allow rule that does not match this client: implicit deny.
  let r = await set([{ ipAddress: '10.0.0.0/8', action: 'Allow', priority: 100, name: 'corp' }]);
  assert.equal(r.status, 200, r.text);
  const rules = r.json.properties.ipSecurityRestrictions;
  const last = rules[rules.length - 1];
  assert.deepEqual([last.ipAddress, last.action, last.priority, last.name], ['Any', 'Deny', 2147483647, 'Deny all']);
  let d = await get(name);
  assert.equal(d.status, 403);
  assert.equal(d.statusMessage, 'Ip Forbidden');
  assert.equal(d.headers['x-ms-forbidden-ip'], '127.0.0.1');
  assert.equal(JSON.parse(d.text).error.code, 'IpForbidden');
  // Loopback allowed at lower priority number wins over a later deny.
  r = await set([{ ipAddress: '127.0.0.1/32', action: 'Deny', priority: 200, name: 'deny-lo' },
    { ipAddress: '127.0.0.0/8', action: 'Allow', priority: 100, name: 'allow-lo' }]);
  assert.equal(r.status, 200, r.text);
  assert.equal((await get(name)).status, 200);
  r = await set([{ ipAddress: '127.0.0.1/32', action: 'Deny', priority: 50, name: 'deny-lo' },
    { ipAddress: '127.0.0.0/8', action: 'Allow', priority: 100, name: 'allow-lo' }]);
  assert.equal((await get(name)).status, 403);
  // Header filter: allowed only with the right X-Forwarded-Host (AND with the source).
  r = await set([{ ipAddress: 'Any', action: 'Allow', priority: 100, name: 'fd', headers: { 'x-forwarded-host': ['*.contoso.com'] } }]);
  assert.equal(r.status, 200, r.text);
  assert.equal((await get(name)).status, 403, 'no header');
  assert.equal((await get(name, '/', { headers: { 'x-forwarded-host': 'www.contoso.com:443' } })).status, 200);
  assert.equal((await get(name, '/', { headers: { 'x-forwarded-host': 'a.b.contoso.com' } })).status, 403, 'one level only');
  // X-Forwarded-For: any address of the chain.
  r = await set([{ ipAddress: 'Any', action: 'Deny', priority: 10, name: 'bad-proxy', headers: { 'x-forwarded-for': ['203.0.113.0/24'] } }], { ipSecurityRestrictionsDefaultAction: 'Allow' });
  assert.equal(r.status, 200, r.text);
  assert.equal((await get(name, '/', { headers: { 'x-forwarded-for': '198.51.100.7, 203.0.113.9' } })).status, 403);
  assert.equal((await get(name, '/', { headers: { 'x-forwarded-for': '198.51.100.7' } })).status, 200);
  assert.equal((await get(name)).status, 200, 'explicit default Allow');
  await waitAudit(srv, (recs) => recs.some((x) => x.kind === 'authz' && x.action === 'Microsoft.Web/sites/ipSecurityRestriction' && x.scope === `/apps/${name}` && x.result === 'denied'), { what: 'an access denial record' });
  // Cleared.
  assert.equal((await set(null, { ipSecurityRestrictionsDefaultAction: null })).status, 200);
  assert.equal((await get(name)).status, 200);
});

test('scm host has its own rules, or the main ones with scmIpSecurityRestrictionsUseMain', async () => {
  const name = appName('scmacl');
  await makeApp(name);
  const deploy = () => request(srv, { method: 'POST', host: `${name}.scm.${DOMAIN}`, path: '/api/zipdeploy', headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/zip' }, body: makeZip([{ name: 'index.html', data: 'v2' }]) });
  let r = await setProps(name, { scmIpSecurityRestrictions: [{ ipAddress: '127.0.0.1', action: 'Deny', priority: 1, name: 'no-deploys-from-here' }] });
  assert.equal(r.status, 200, r.text);
  const d = await deploy();
  assert.equal(d.status, 403);
  assert.equal(d.headers['x-ms-forbidden-ip'], '127.0.0.1');
  assert.equal((await get(name)).text, 'home', 'the site itself is open');
  r = await setProps(name, { scmIpSecurityRestrictionsUseMain: true });
  assert.equal(r.status, 200, r.text);
  assert.equal((await deploy()).status, 200, 'main rules (none) now apply to scm');
  r = await setProps(name, { ipSecurityRestrictions: [{ ipAddress: '127.0.0.1/32', action: 'Deny', priority: 1 }] });
  assert.equal((await deploy()).status, 403);
  assert.equal((await get(name)).status, 403);
});

test('CORS: explicit origins, credentials only with them, preflights answered; "*" with credentials refused', async () => {
  const name = appName('cors');
  await makeApp(name);
  const opt = (origin, extra = {}) => new Promise((resolve, reject) => {
    const h = `${name}.${DOMAIN}`;
    const req = https.request({ host: h, servername: h, port: srv.port, path: '/', method: 'OPTIONS', ca: srv.ca, agent: false, lookup: lookupLoopback,
      headers: { origin, 'access-control-request-method': 'GET', ...extra } }, (res) => { res.resume(); res.on('end', () => resolve(res)); });
    req.on('error', reject);
    req.end();
  });
  // Nothing configured: no CORS headers, preflights refused.
  let g = await get(name, '/', { headers: { origin: 'https://shop.example' } });
  assert.equal(g.status, 200);
  assert.equal(g.headers['access-control-allow-origin'], undefined);
  assert.equal((await opt('https://shop.example')).statusCode, 403);
  let r = await setProps(name, { cors: { allowedOrigins: ['https://Shop.example', 'http://localhost:3000'], supportCredentials: true } });
  assert.equal(r.status, 200, r.text);
  g = await get(name, '/', { headers: { origin: 'https://shop.example' } });
  assert.equal(g.headers['access-control-allow-origin'], 'https://shop.example');
  assert.equal(g.headers['access-control-allow-credentials'], 'true');
  assert.match(g.headers.vary, /Origin/);
  g = await get(name, '/', { headers: { origin: 'https://evil.example' } });
  assert.equal(g.status, 200);
  assert.equal(g.headers['access-control-allow-origin'], undefined);
  const p = await opt('http://localhost:3000', { 'access-control-request-headers': 'x-custom, content-type' });
  assert.equal(p.statusCode, 204);
  assert.equal(p.headers['access-control-allow-origin'], 'http://localhost:3000');
  assert.match(p.headers['access-control-allow-methods'], /GET/);
  assert.equal(p.headers['access-control-allow-headers'], 'x-custom, content-type');
  assert.equal((await opt('https://evil.example')).statusCode, 403);
  // "*" with credentials is refused; "*" alone answers every origin without credentials.
  r = await setProps(name, { cors: { allowedOrigins: ['*'], supportCredentials: true } });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /supportCredentials/);
  r = await setProps(name, { cors: { allowedOrigins: ['*'] } });
  assert.equal(r.status, 200, r.text);
  g = await get(name, '/', { headers: { origin: 'https://any.example' } });
  assert.equal(g.headers['access-control-allow-origin'], 'https://any.example');
  assert.equal(g.headers['access-control-allow-credentials'], undefined);
  for (const bad of [{ allowedOrigins: ['https://a.example/path'] }, { allowedOrigins: ['ftp://a'] }, { allowedOrigins: 'https://a' }, { other: 1 }, { supportCredentials: 'yes' }])
    assert.equal((await setProps(name, { cors: bad })).status, 400, JSON.stringify(bad));
});

test('bad settings are refused naming the property; nothing changes', async () => {
  const name = appName('bad');
  await makeApp(name);
  const cases = [
    [{ minTlsVersion: '1.1' }, /minTlsVersion/],
    [{ minTlsVersion: 13 }, /minTlsVersion/],
    [{ clientCertMode: 'Sometimes', clientCertTrustedCAs: 'x' }, /clientCert/],
    [{ clientCertTrustedCAs: 'not a pem' }, /clientCertTrustedCAs/],
    [{ clientCertExclusionPaths: 'relative' }, /clientCertExclusionPaths/],
    [{ ipSecurityRestrictions: [{ ipAddress: '10.0.0.0/33', action: 'Allow', priority: 1 }] }, /ipSecurityRestrictions/],
    [{ ipSecurityRestrictions: [{ ipAddress: '10.0.0.1', action: 'Maybe', priority: 1 }] }, /ipSecurityRestrictions/],
    [{ ipSecurityRestrictions: [{ ipAddress: 'AzureFrontDoor.Backend', tag: 'ServiceTag', action: 'Allow', priority: 1 }] }, /ipSecurityRestrictions/],
    [{ ipSecurityRestrictions: {} }, /ipSecurityRestrictions/],
    [{ ipSecurityRestrictionsDefaultAction: 'Block' }, /ipSecurityRestrictionsDefaultAction/],
    [{ scmIpSecurityRestrictionsUseMain: 'yes' }, /scmIpSecurityRestrictionsUseMain/],
    [{ appSettings: {} }, /unknown property/],
  ];
  for (const [props, re] of cases) {
    const r = await setProps(name, props);
    assert.equal(r.status, 400, `${JSON.stringify(props)} -> ${r.status} ${r.text}`);
    assert.match(r.json.error.message, re, JSON.stringify(props));
  }
  assert.equal((await api(srv, 'PUT', `/api/apps/${name}`, { body: { properties: [] } })).status, 400);
  assert.equal((await api(srv, 'PUT', `/api/apps/${name}`, { body: { other: 1 } })).status, 400);
  const app = await apiOk(srv, 'GET', `/api/apps/${name}`, {}, 200);
  assert.equal(app.properties.minTlsVersion, '1.2');
  assert.equal(app.properties.clientCertEnabled, false);
  assert.equal(app.properties.ipSecurityRestrictions.length, 1, 'only the synthetic Allow all');
  assert.equal((await get(name)).text, 'home');
});

test('CLI: app config sets and shows the settings; they survive a restart', async () => {
  const s2 = await startServer();
  const home = mkdtempSync(join(tmpdir(), 'rp-sites-cli-'));
  try {
    const name = appName('cfg');
    const env = cliEnv(s2, home);
    assert.equal((await cliAsync(['app', 'create', name], { env })).status, 0);
    const rules = join(dir, 'rules.json');
    writeFileSync(rules, JSON.stringify([{ ipAddress: '192.0.2.0/24', action: 'Allow', priority: 100, name: 'office' }]));
    const r = await cliAsync(['app', 'config', name, '--min-tls', '1.3', '--access-rules', rules, '--output', 'json'], { env });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.properties.minTlsVersion, '1.3');
    assert.equal(j.properties.ipSecurityRestrictions[0].name, 'office');
    const bad = await cliAsync(['app', 'config', name, '--client-cert', 'sometimes'], { env });
    assert.equal(bad.status, 2);
    const refused = await cliAsync(['app', 'config', name, '--client-cert', 'required'], { env });
    assert.equal(refused.status, 5);
    assert.match(refused.stderr, /clientCertTrustedCAs/);
    await s2.stop({ keepData: true });
    const s3 = await startServer({ dataDir: s2.dataDir, init: false });
    try {
      s3.token = s2.token;
      const app = await apiOk(s3, 'GET', `/api/apps/${name}`, {}, 200);
      assert.equal(app.properties.minTlsVersion, '1.3');
      assert.equal(app.properties.ipSecurityRestrictions[0].name, 'office');
    } finally {
      await s3.stop({ keepData: true });
    }
  } finally {
    rmSync(s2.dataDir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  }
});
