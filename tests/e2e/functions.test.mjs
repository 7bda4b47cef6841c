// functions.test.mjs - function apps (docs/functions.md "Function apps"): an app without a
// command whose release has host.json runs its custom handler (examples/functions/node) and
// answers its HTTP functions at /api/...: routes and constraints, every auth level with the
// key in the header, in ?code=, wrong and missing (401, empty body), the master key only in
// the header for admin calls, the invocation envelope the handler gets, forwarding mode,
// functionTimeout (504), the keys through the management API (RBAC, durable audit) and the
// host's /admin keys API (set, regenerate, delete), keys never on disk in plaintext, and bad
// deploys refused with the file and field named while the previous release keeps serving.
import test from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startServer, request, DOMAIN, SCALE, sleep, assertNotOnDisk } from './lib/harness.mjs';
import { api, apiOk, uniq, cliAsync, cliEnv, createSp, assignRole, clientToken, waitAudit } from './lib/iam.mjs';
import { createVault, kv, kvPrincipal, vaultName } from './lib/vault.mjs';

const EXAMPLE = new URL('../../examples/functions/node', import.meta.url).pathname;
let srv;
let home;
let env;
let work; // scratch copies of the example
let name; // the function app
let keys; // { masterKey, functionKeys, systemKeys }
let keepDir; // the data directory once the server was restarted on it

const appName = (p) => uniq(p).replace(/[^a-z0-9-]/g, '').slice(0, 40);
const call = (path, { headers = {}, method = 'GET', body, app = name } = {}) =>
  request(srv, { host: `${app}.${DOMAIN}`, path, headers, method, body, timeout: 30000 * SCALE });
const listKeys = async (app = name, opts = {}) => apiOk(srv, 'POST', `/api/apps/${app}/host/default/listkeys`, opts, 200);

// A copy of the example with edits: files maps relative paths to contents (null deletes).
function variant(files = {}) {
  const dir = mkdtempSync(join(work, 'v-'));
  cpSync(EXAMPLE, dir, { recursive: true });
  for (const [p, text] of Object.entries(files)) {
    if (text === null) rmSync(join(dir, p), { recursive: true, force: true });
    else {
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      writeFileSync(join(dir, p), typeof text === 'string' ? text : JSON.stringify(text));
    }
  }
  return dir;
}

// The example has anonymous functions: a deploy must say it means them.
async function deploy(app, dir, flags = ['--allow-anonymous']) {
  return cliAsync(['app', 'deploy', app, dir, ...flags], { env, timeoutMs: 120000 * SCALE });
}

async function until(pred, what) {
  const t0 = Date.now();
  for (;;) {
    if (await pred()) return;
    if (Date.now() - t0 > 30000 * SCALE) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function createFunctionApp(app, dir) {
  const c = await cliAsync(['app', 'create', app], { env });
  assert.equal(c.status, 0, c.stderr + c.stdout);
  const d = await deploy(app, dir);
  assert.equal(d.status, 0, d.stderr + d.stdout);
  await until(async () => (await call('/api/public/ping', { app })).status === 200, `${app}'s handler`);
}

test.before(async () => {
  srv = await startServer();
  home = mkdtempSync(join(tmpdir(), 'rp-fn-home-'));
  work = mkdtempSync(join(tmpdir(), 'rp-fn-work-'));
  env = cliEnv(srv, home);
  name = appName('fn');
  await createFunctionApp(name, EXAMPLE);
  keys = await listKeys();
});

test.after(async () => {
  if (srv) await srv.stop();
  if (keepDir) rmSync(keepDir, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

test('a deployed function app has keys: master, a host default and one per function', async () => {
  assert.match(keys.masterKey, /^[A-Za-z0-9_-]{54}==$/);
  assert.match(keys.functionKeys.default, /^[A-Za-z0-9_-]{54}==$/);
  assert.deepEqual(keys.systemKeys, {});
  const hello = await apiOk(srv, 'POST', `/api/apps/${name}/functions/hello/listkeys`, {}, 200);
  assert.ok(hello.default && hello.default !== keys.functionKeys.default);
  await waitAudit(srv, (rs) => rs.some((r) => r.action === 'Microsoft.Web/sites/host/listkeys/action' && r.result === 'success'), { what: 'the listkeys record' });
  // A reader may see the app but not its keys.
  const reader = await createSp(srv);
  await assignRole(srv, reader.id, 'Reader', `/apps/${name}`);
  const rt = await clientToken(srv, reader.appId, reader.secret, 'management');
  assert.equal((await api(srv, 'POST', `/api/apps/${name}/host/default/listkeys`, { token: rt })).status, 403);
  assert.equal((await api(srv, 'POST', `/api/apps/${name}/functions/nope/listkeys`)).status, 404);
});

test('auth levels: anonymous, function (header beats ?code=), admin (master key, header only)', async () => {
  const fnKey = (await apiOk(srv, 'POST', `/api/apps/${name}/functions/hello/listkeys`, {}, 200)).default;
  const echoKey = (await apiOk(srv, 'POST', `/api/apps/${name}/functions/echo/listkeys`, {}, 200)).default;
  assert.equal((await call('/api/public/ping')).text, 'pong');
  // function level
  const none = await call('/api/hello/ann');
  assert.equal(none.status, 401);
  assert.equal(none.text, '');
  assert.equal((await call('/api/hello/ann', { headers: { 'x-functions-key': 'wrong-key-0123456789' } })).status, 401);
  assert.equal((await call(`/api/hello/ann?code=${encodeURIComponent(fnKey)}`)).text, 'Hello, ann');
  assert.equal((await call('/api/hello/ann', { headers: { 'x-functions-key': keys.functionKeys.default } })).text, 'Hello, ann');
  assert.equal((await call('/api/hello/ann', { headers: { 'x-functions-key': keys.masterKey } })).status, 200);
  // The master key never counts from a URL, whatever the level.
  assert.equal((await call(`/api/hello/ann?code=${encodeURIComponent(keys.masterKey)}`)).status, 401);
  assert.equal((await call(`/api/hello/ann?CODE=${encodeURIComponent(fnKey)}`)).status, 200, '?code= ignores case');
  // Another function's key is not this one's.
  assert.equal((await call('/api/hello/ann', { headers: { 'x-functions-key': echoKey } })).status, 401);
  // The header wins over ?code= even when the header is wrong.
  assert.equal((await call(`/api/hello/ann?code=${encodeURIComponent(fnKey)}`, { headers: { 'x-functions-key': 'wrong-key-0123456789' } })).status, 401);
  // admin level
  assert.equal((await call('/api/secret', { headers: { 'x-functions-key': fnKey } })).status, 401);
  assert.equal((await call('/api/secret', { headers: { 'x-functions-key': keys.functionKeys.default } })).status, 401);
  assert.equal((await call(`/api/secret?code=${encodeURIComponent(keys.masterKey)}`)).status, 401, 'a master key in the URL is refused');
  const adm = await call('/api/secret', { headers: { 'x-functions-key': keys.masterKey } });
  assert.equal(adm.status, 200);
  assert.equal(adm.text, 'only with the master key');
});

test('routes: optional parameters, constraints, methods, the prefix, reserved paths', async () => {
  const h = { 'x-functions-key': keys.functionKeys.default };
  assert.equal((await call('/api/hello', { headers: h })).text, 'Hello, world');
  assert.equal((await call('/api/HELLO/Bo', { headers: h })).text, 'Hello, Bo', 'literals ignore case');
  assert.equal((await call('/api/hello/x', { headers: h, method: 'DELETE' })).status, 404);
  const item = await call('/api/items/42');
  assert.equal(item.status, 200);
  assert.deepEqual(JSON.parse(item.text), { id: 42 });
  assert.equal((await call('/api/items/abc')).status, 404);
  assert.equal((await call('/hello/x', { headers: h })).status, 404, 'outside the route prefix');
  assert.equal((await call('/api/nothing-here')).status, 404);
  assert.equal((await call('/runtime/webhooks/eventgrid')).status, 404);
});

test('the invocation envelope the handler gets, and its answer', async () => {
  const r = await call('/api/echo?a=1&a=2&b=x&code=ignored&s=c+d%2Be', {
    method: 'POST', body: '{"n":1}',
    headers: { 'x-functions-key': keys.functionKeys.default, 'content-type': 'application/json', 'x-ms-client-principal-id': 'spoofed' },
  });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'], /application\/json/);
  const inv = JSON.parse(r.text);
  const req = inv.Data.req;
  assert.equal(req.Method, 'POST');
  assert.equal(req.Body, '{"n":1}');
  assert.deepEqual(req.Query, { a: '1,2', b: 'x', s: 'c d+e' }, "'+' is a space, as ASP.NET reads a query");
  assert.equal(req.Url, `https://${name}.${DOMAIN}:${srv.port}/api/echo?a=1&a=2&b=x&s=c+d%2Be`, 'no key in the Url');
  assert.deepEqual(req.Headers['content-type'], ['application/json']);
  assert.equal(req.Headers['x-functions-key'], undefined, 'the key is not passed on');
  assert.equal(req.Headers['x-ms-client-principal-id'], undefined, 'client principal headers are stripped');
  assert.equal(inv.Metadata.sys.MethodName, 'echo');
  assert.match(inv.Metadata.sys.RandGuid, /^[0-9a-f-]{36}$/);
  // Route parameters arrive as Params.
  const p = await call('/api/items/7');
  assert.deepEqual(JSON.parse(p.text), { id: 7 });
  // Bytes that are not UTF-8 arrive as base64 rather than being dropped.
  const bin = Buffer.from([0xff, 0xfe, 0x00, 0x41]);
  const b = await call('/api/echo', { method: 'POST', body: bin, headers: { 'x-functions-key': keys.functionKeys.default, 'content-type': 'text/plain; charset=latin1' } });
  assert.equal(JSON.parse(b.text).Data.req.Body, bin.toString('base64'));
});

test('functionTimeout ends the call with 504; the handler keeps serving others', async () => {
  const t0 = Date.now();
  const r = await call('/api/slow');
  assert.equal(r.status, 504);
  assert.ok(Date.now() - t0 < 20000 * SCALE, 'ended by the 5 s functionTimeout, not the handler');
  assert.equal((await call('/api/public/ping')).text, 'pong');
});

test('forwarding mode passes the request to the handler as it came', async () => {
  const app = appName('fwd');
  const host = JSON.parse(readFileSync(join(EXAMPLE, 'host.json'), 'utf8'));
  host.customHandler.enableForwardingHttpRequest = true;
  await createFunctionApp(app, variant({ 'host.json': host }));
  const k = await listKeys(app);
  const r = await call('/api/hello/zed?x=1', { app, headers: { 'x-functions-key': k.functionKeys.default } });
  assert.equal(r.status, 200, r.text);
  const seen = JSON.parse(r.text);
  assert.equal(seen.forwarded, true);
  assert.equal(seen.url, '/api/hello/zed?x=1');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
  // An http output named $return counts as the http output: forwarded too (as in Azure).
  assert.equal(JSON.parse((await call('/api/public/ping', { app })).text).url, '/api/public/ping');
  assert.equal((await call('/api/hello/zed', { app })).status, 401, 'keys are checked before forwarding');
  // The handler gets the path that was checked, never the client's dot segments, and no key.
  for (const raw of ['/api/hello/x/../../public/ping', '/api/hello/%2e%2e/public/ping']) {
    const x = await call(raw, { app });
    assert.equal(x.status, 200, raw);
    assert.equal(JSON.parse(x.text).url, '/api/public/ping', raw);
  }
  const keyed = JSON.parse((await call(`/api/hello/a%20b?code=${encodeURIComponent(k.functionKeys.default)}&y=2`, { app, headers: {} })).text);
  assert.equal(keyed.url, '/api/hello/a%20b?y=2');
  const hdr = JSON.parse((await call('/api/hello/q', { app, headers: { 'x-functions-key': k.functionKeys.default } })).text);
  assert.equal(hdr.headers['x-functions-key'], undefined);
});

test('workingDirectory: the handler starts there, whatever characters the name has', async () => {
  const app = appName('wd');
  const host = JSON.parse(readFileSync(join(EXAMPLE, 'host.json'), 'utf8'));
  host.customHandler.description.workingDirectory = "it's here";
  host.customHandler.description.arguments = ['../handler.js'];
  await createFunctionApp(app, variant({ 'host.json': host, "it's here/README": 'the handler runs from here\n' }));
  assert.equal((await call('/api/public/ping', { app })).text, 'pong');
});

test('the host keys API: master key in the header only; set, regenerate and delete keys', async () => {
  const adm = { 'x-functions-key': keys.masterKey };
  assert.equal((await call('/admin/host/keys')).status, 401);
  assert.equal((await call(`/admin/host/keys?code=${encodeURIComponent(keys.masterKey)}`)).status, 401);
  assert.equal((await call('/admin/host/keys', { headers: { 'x-functions-key': keys.functionKeys.default } })).status, 401);
  const list = await call('/admin/host/keys', { headers: adm });
  assert.equal(list.status, 200);
  assert.equal((await call('/ADMIN/Host/Keys', { headers: adm })).status, 200, 'the host\'s paths ignore case');
  assert.deepEqual(JSON.parse(list.text).keys, [{ name: 'default', value: keys.functionKeys.default }]);
  // A key set by hand works for that function only.
  const value = `ci-key-${uniq('v')}-0123456789`.replace(/[^A-Za-z0-9_-]/g, '');
  let r = await call('/admin/functions/hello/keys/ci', { method: 'PUT', headers: { ...adm, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ci', value }) });
  assert.equal(r.status, 201, r.text);
  assert.equal(JSON.parse(r.text).value, value);
  assert.equal((await call('/api/hello/q', { headers: { 'x-functions-key': value } })).status, 200);
  assert.equal((await call('/api/echo', { headers: { 'x-functions-key': value } })).status, 401);
  r = await call('/admin/functions/hello/keys/ci', { method: 'PUT', headers: { ...adm, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ci', value: 'short' }) });
  assert.equal(r.status, 400);
  r = await call('/admin/functions/hello/keys/bad%20name', { method: 'POST', headers: adm });
  assert.equal(r.status, 400);
  assert.equal((await call('/admin/functions/nope/keys', { headers: adm })).status, 404);
  // Delete: it stops working at once.
  assert.equal((await call('/admin/functions/hello/keys/ci', { method: 'DELETE', headers: adm })).status, 204);
  assert.equal((await call('/api/hello/q', { headers: { 'x-functions-key': value } })).status, 401);
  assert.equal((await call('/admin/functions/hello/keys/ci', { method: 'DELETE', headers: adm })).status, 404);
  assert.equal((await call('/admin/host/systemkeys/_master', { method: 'DELETE', headers: adm })).status, 400);
  // Regenerate the master key: the old one is dead, the new one lists keys.
  r = await call('/admin/host/systemkeys/_master', { method: 'POST', headers: adm });
  assert.equal(r.status, 200, r.text);
  const fresh = JSON.parse(r.text).value;
  assert.notEqual(fresh, keys.masterKey);
  assert.equal((await call('/admin/host/keys', { headers: adm })).status, 401);
  assert.equal((await call('/admin/host/keys', { headers: { 'x-functions-key': fresh } })).status, 200);
  keys = await listKeys();
  assert.equal(keys.masterKey, fresh);
  await waitAudit(srv, (rs) => rs.some((x) => x.action === 'Microsoft.Web/sites/functions/keys' && x.detail?.scope === 'master'), { what: 'the key change record' });
});

test('bad deploys name the file and field, and the live release keeps serving', async () => {
  const cases = [
    [{ 'host.json': '{"version": "2.0",' }, /host\.json/],
    [{ 'host.json': { version: '2.0' } }, /host\.json: customHandler/],
    [{ 'host.json': { version: '2.0', customHandler: { description: { defaultExecutablePath: './missing' } } } }, /defaultExecutablePath/],
    [{ 'hello/function.json': { bindings: [{ type: 'httpTrigger', direction: 'in', name: 'req', authLevel: 'superuser' }] } }, /hello\/function\.json: bindings\[0\]\.authLevel/],
    [{ 'hello/function.json': { bindings: [{ type: 'queueTrigger', direction: 'in', name: 'q' }] } }, /hello\/function\.json/],
    [{ 'hello/function.json': { bindings: [{ type: 'httpTrigger', direction: 'in', name: 'req', route: 'admin/x' }] } }, /route/],
    [{ 'items/function.json': { bindings: [{ type: 'httpTrigger', direction: 'in', name: 'req', route: 'items/{id:foo}' }] } }, /items\/function\.json: bindings\[0\]\.route/],
    [{ 'echo/function.json': { bindings: [{ type: 'httpTrigger', direction: 'in', name: 'req', route: 'hello/{name?}' }, { type: 'http', direction: 'out', name: 'res' }] } }, /conflicts/],
  ];
  for (const [files, msg] of cases) {
    const d = await deploy(name, variant(files));
    assert.notEqual(d.status, 0, JSON.stringify(files));
    assert.match(d.stderr + d.stdout, msg, JSON.stringify(files));
    assert.match(d.stderr + d.stdout, /InvalidFunctionApp|host\.json|function\.json/);
  }
  assert.equal((await call('/api/public/ping')).text, 'pong', 'the previous release still serves');
  const fnKey = (await apiOk(srv, 'POST', `/api/apps/${name}/functions/hello/listkeys`, {}, 200)).default;
  assert.equal((await call('/api/hello/again', { headers: { 'x-functions-key': fnKey } })).text, 'Hello, again');
});

test('secure default: anonymous functions are deployed only when the deploy says so', async () => {
  const app = appName('anon');
  assert.equal((await cliAsync(['app', 'create', app], { env })).status, 0);
  let d = await deploy(app, EXAMPLE, []);
  assert.notEqual(d.status, 0);
  assert.match(d.stderr + d.stdout, /\/function\.json: bindings\[0\]\.authLevel: "anonymous" lets anyone call it; deploy with allowAnonymous=true/);
  // Nothing went live.
  assert.equal((await call('/api/public/ping', { app })).status, 404);
  // Every function behind a key: deployed without the flag.
  const keyed = variant(Object.fromEntries(['ping', 'items', 'slow', 'nap', 'ticks'].map((f) => {
    const j = JSON.parse(readFileSync(join(EXAMPLE, f, 'function.json'), 'utf8'));
    j.bindings[0].authLevel = 'function';
    return [`${f}/function.json`, j];
  })));
  d = await deploy(app, keyed, []);
  assert.equal(d.status, 0, d.stderr + d.stdout);
  assert.equal((await call('/api/public/ping', { app })).status, 401);
  // With the flag the example goes live as it is.
  d = await deploy(app, EXAMPLE);
  assert.equal(d.status, 0, d.stderr + d.stdout);
  await until(async () => (await call('/api/public/ping', { app })).status === 200, 'the anonymous ping');
  assert.equal((await cliAsync(['app', 'delete', app], { env })).status, 0);
  // No way around it: a release deployed while the app had a command (no function checks then)
  // cannot be rolled back to once the app is a function app.
  const cmd = appName('anoncmd');
  assert.equal((await cliAsync(['app', 'create', cmd, '--command', 'sleep 3600'], { env })).status, 0);
  d = await deploy(cmd, EXAMPLE, []);
  assert.equal(d.status, 0, d.stderr + d.stdout);
  await apiOk(srv, 'PUT', `/api/apps/${cmd}`, { body: { properties: { appCommandLine: '' } } }, 200);
  d = await deploy(cmd, keyed, []);
  assert.equal(d.status, 0, d.stderr + d.stdout);
  const rb = await cliAsync(['app', 'rollback', cmd, '--to', '1'], { env });
  assert.notEqual(rb.status, 0);
  assert.match(rb.stderr + rb.stdout, /authLevel: "anonymous" lets anyone call it/);
  assert.equal((await call('/api/public/ping', { app: cmd })).status, 401, 'the keyed release still serves');
  assert.equal((await cliAsync(['app', 'delete', cmd], { env })).status, 0);
});

test('a redeploy adds keys for new functions and keeps the old ones', async () => {
  const before = await listKeys();
  const dir = variant({ 'extra/function.json': { bindings: [{ type: 'httpTrigger', direction: 'in', name: 'req', methods: ['get'] }, { type: 'http', direction: 'out', name: 'res' }] } });
  const d = await deploy(name, dir);
  assert.equal(d.status, 0, d.stderr + d.stdout);
  const after = await listKeys();
  assert.equal(after.masterKey, before.masterKey);
  assert.equal(after.functionKeys.default, before.functionKeys.default);
  const extra = await apiOk(srv, 'POST', `/api/apps/${name}/functions/extra/listkeys`, {}, 200);
  assert.ok(extra.default);
});

test('rampart fn keys and the management API: list, set, rotate, delete under RBAC', async () => {
  const cli = async (...args) => cliAsync(['fn', 'keys', ...args], { env });
  let r = await cli('list', name, '--output', 'json');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).masterKey, keys.masterKey);
  r = await cli('list', name);
  assert.match(r.stdout, /_master \(master key\)/);
  assert.match(r.stdout, /default \(host\)/);
  r = await cli('list', name, '--function', 'hello', '--output', 'json');
  assert.ok(JSON.parse(r.stdout).default);
  // set: a key for one function
  const value = `cli-key-${uniq('v')}-0123456789`.replace(/[^A-Za-z0-9_-]/g, '');
  r = await cli('set', name, 'cli', value, '--function', 'hello');
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.equal((await call('/api/hello/c', { headers: { 'x-functions-key': value } })).status, 200);
  assert.equal((await call('/api/echo', { headers: { 'x-functions-key': value } })).status, 401);
  // rotate: the host default gets a new value; the old one stops working at once
  const old = keys.functionKeys.default;
  r = await cli('rotate', name, 'default', '--output', 'json');
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const fresh = JSON.parse(r.stdout).value;
  assert.notEqual(fresh, old);
  assert.equal((await call('/api/hello/c', { headers: { 'x-functions-key': old } })).status, 401);
  assert.equal((await call('/api/hello/c', { headers: { 'x-functions-key': fresh } })).status, 200);
  // delete
  r = await cli('delete', name, 'cli', '--function', 'hello');
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.equal((await call('/api/hello/c', { headers: { 'x-functions-key': value } })).status, 401);
  assert.notEqual((await cli('delete', name, 'cli', '--function', 'hello')).status, 0);
  assert.notEqual((await cli('delete', name, '_master', '--system')).status, 0, 'the master key cannot be deleted');
  assert.notEqual((await cli('set', name, 'x', 'short', '--function', 'hello')).status, 0);
  assert.equal((await cli('rotate', name, 'x', '--function', 'hello', '--system')).status, 2);
  // The master key through the CLI.
  r = await cli('rotate', name, '_master', '--system', '--output', 'json');
  assert.equal(r.status, 0, r.stderr + r.stdout);
  keys = await listKeys();
  assert.equal(keys.masterKey, JSON.parse(r.stdout).value);
  // RBAC: a reader can neither read nor change keys.
  const reader = await createSp(srv);
  await assignRole(srv, reader.id, 'Reader', `/apps/${name}`);
  const rt = await clientToken(srv, reader.appId, reader.secret, 'management');
  assert.equal((await api(srv, 'PUT', `/api/apps/${name}/host/default/functionKeys/x`, { token: rt, body: {} })).status, 403);
  assert.equal((await api(srv, 'DELETE', `/api/apps/${name}/functions/hello/keys/default`, { token: rt })).status, 403);
  await waitAudit(srv, (rs) => rs.some((x) => x.action === 'Microsoft.Web/sites/functions/keys' && x.detail?.via === 'management API' && x.principal !== 'anonymous'), { what: 'the management key change record' });
});

test('timers: runOnStartup, on schedule, never overlapping themselves, with TimerInfo', async () => {
  // The example's timer: every 5 s and on start-up; it has run once already, right after deploy.
  let first;
  await until(async () => (first = JSON.parse((await call('/api/public/ticks')).text)).runs >= 1, 'the first run');
  assert.equal(first.last.IsPastDue, false);
  assert.match(first.last.ScheduleStatus.Next, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  // Every second, while each run takes 1.5 s: runs happen, but never two at once.
  const app = appName('tick');
  await createFunctionApp(app, variant({ 'tick/function.json': { bindings: [{ type: 'timerTrigger', direction: 'in', name: 'myTimer', schedule: '* * * * * *' }] } }));
  await sleep(6000);
  const r = JSON.parse((await call('/api/public/ticks', { app })).text);
  assert.ok(r.runs >= 2 && r.runs <= 5, JSON.stringify(r));
  assert.equal(r.maxActive, 1, 'a timer never overlaps itself');
  assert.match(srv.stderr, /skipped: the previous run is still going/);
  const del = await cliAsync(['app', 'delete', app], { env });
  assert.equal(del.status, 0, del.stderr);
  // runOnStartup alone: a yearly schedule still runs once as soon as the app is up.
  const yearly = appName('yearly');
  await createFunctionApp(yearly, variant({ 'tick/function.json': { bindings: [{ type: 'timerTrigger', direction: 'in', name: 'myTimer', schedule: '0 0 0 1 1 *', runOnStartup: true }] } }));
  await until(async () => JSON.parse((await call('/api/public/ticks', { app: yearly })).text).runs === 1, 'the start-up run');
  await sleep(1500);
  assert.equal(JSON.parse((await call('/api/public/ticks', { app: yearly })).text).runs, 1);
  // Without runOnStartup (and a schedule far away) nothing runs.
  const quiet = appName('quiet');
  await createFunctionApp(quiet, variant({ 'tick/function.json': { bindings: [{ type: 'timerTrigger', direction: 'in', name: 'myTimer', schedule: '0 0 0 1 1 *' }] } }));
  await sleep(1500);
  assert.equal(JSON.parse((await call('/api/public/ticks', { app: quiet })).text).runs, 0);
});

test('throttle: maxConcurrentRequests at once, the rest wait in line, past maxOutstandingRequests 429', async () => {
  const app = appName('busy');
  const host = JSON.parse(readFileSync(join(EXAMPLE, 'host.json'), 'utf8'));
  host.extensions = { http: { maxConcurrentRequests: 1, maxOutstandingRequests: 3 } };
  await createFunctionApp(app, variant({ 'host.json': host }));
  // Five at once: one runs, two wait, two are refused at once.
  const t0 = Date.now();
  const rs = await Promise.all([0, 1, 2, 3, 4].map(() => call('/api/nap?ms=2000', { app })));
  const took = Date.now() - t0;
  const ok = rs.filter((r) => r.status === 200);
  const busy = rs.filter((r) => r.status === 429);
  assert.equal(ok.length, 3, rs.map((r) => r.status).join());
  assert.equal(busy.length, 2, rs.map((r) => r.status).join());
  for (const b of busy) {
    assert.equal(b.text, '', 'Azure answers 429 with an empty body');
    assert.equal(b.headers['retry-after'], '1');
    assert.equal(b.statusText, 'Too Busy');
  }
  for (const r of ok) assert.equal(JSON.parse(r.text).maxActive, 1, 'never two calls inside the handler');
  assert.ok(took >= 6000, `three 2 s calls one after another took ${took} ms`);
  // A client still sending its body holds no slot: the handler is not busy with it yet.
  const k = await listKeys(app);
  const sock = tls.connect({ host: '127.0.0.1', port: srv.port, servername: `${app}.${DOMAIN}`, ca: srv.ca });
  await new Promise((resolve, reject) => { sock.once('secureConnect', resolve); sock.once('error', reject); });
  let answer = '';
  sock.on('data', (d) => { answer += d; });
  sock.write(`POST /api/echo HTTP/1.1\r\nHost: ${app}.${DOMAIN}\r\nx-functions-key: ${k.functionKeys.default}\r\nContent-Length: 5\r\n\r\nh`);
  await sleep(300);
  const t1 = Date.now();
  assert.equal((await call('/api/nap?ms=10', { app })).status, 200);
  assert.ok(Date.now() - t1 < 5000, 'not stuck behind the slow upload');
  sock.write('ello');
  await until(async () => answer.includes('\r\n\r\n') && answer.includes('hello'), 'the slow upload\'s answer');
  assert.match(answer, /^HTTP\/1.1 200/);
  sock.destroy();
  // The counters saw the same: three ran, two were throttled, nothing runs or waits now.
  let m;
  await until(async () => (m = await apiOk(srv, 'GET', `/api/apps/${app}/metrics`, {}, 200)).functions.nap?.invocations === 6, 'six nap records');
  assert.equal(m.functions.nap.succeeded, 4, JSON.stringify(m));
  assert.equal(m.functions.nap.throttled, 2, JSON.stringify(m));
  assert.equal(m.running, 0);
  assert.equal(m.waiting, 0);
  const log = await apiOk(srv, 'GET', `/api/apps/${app}/invocations?function=nap`, {}, 200);
  assert.deepEqual(log.value.map((x) => x.outcome).sort(), ['Succeeded', 'Succeeded', 'Succeeded', 'Succeeded', 'Throttled', 'Throttled']);
  assert.deepEqual(log.value.filter((x) => x.outcome === 'Throttled').map((x) => x.status), [429, 429]);
  // A larger bound from a redeploy applies to the next calls.
  host.extensions.http = { maxConcurrentRequests: 4, maxOutstandingRequests: 8 };
  const d = await deploy(app, variant({ 'host.json': host }));
  assert.equal(d.status, 0, d.stderr + d.stdout);
  await until(async () => {
    const r = await Promise.all([0, 1, 2, 3].map(() => call('/api/nap?ms=400', { app })));
    return r.every((x) => x.status === 200) && JSON.parse(r[0].text).maxActive >= 2;
  }, 'four calls at once after the redeploy');
});

test('a crashing handler is replaced; only the calls inside it fail, other apps never notice', async () => {
  const app = appName('crash');
  await createFunctionApp(app, EXAMPLE);
  const k = await listKeys(app);
  const inflight = call('/api/nap?ms=4000', { app });
  await sleep(500);
  const t0 = Date.now();
  const c = await call('/api/crash', { app, method: 'POST', headers: { 'x-functions-key': k.masterKey } });
  assert.equal(c.status, 502, c.text);
  assert.equal((await inflight).status, 502, 'the call inside the crashed process fails');
  assert.ok(Date.now() - t0 < 3000, 'at once, not when its own time was up');
  assert.equal((await call('/api/public/ping')).text, 'pong', 'another app is untouched');
  await until(async () => (await call('/api/public/ping', { app })).status === 200, 'the replacement handler');
  assert.equal((await call('/api/nap?ms=1', { app })).status, 200);
  const st = await apiOk(srv, 'GET', `/api/apps/${app}`, {}, 200);
  assert.ok(st.properties.process.restarts >= 1, JSON.stringify(st.properties.process));
  assert.match(st.properties.process.lastFailure, /exit/, 'the app shows why it was restarted');
  const log = (await apiOk(srv, 'GET', `/api/apps/${app}/invocations?limit=500`, {}, 200)).value;
  assert.ok(log.some((x) => x.function === 'crash' && x.outcome === 'Failed' && x.status === 502), 'the crash record');
  assert.ok(log.some((x) => x.function === 'nap' && x.outcome === 'Failed' && x.status === 502), 'the record of the call inside');
  assert.ok(log.some((x) => x.function === 'nap' && x.outcome === 'Succeeded'), 'the call after');
});

test('OPTIONS reaches the functions; with CORS set the platform answers preflights for any method', async () => {
  const app = appName('cors');
  await createFunctionApp(app, EXAMPLE);
  const k = await listKeys(app);
  // A function without a methods list takes OPTIONS too (as in Azure); one without it is 404.
  const o = await call('/api/echo', { app, method: 'OPTIONS', headers: { 'x-functions-key': k.functionKeys.default } });
  assert.equal(o.status, 200, o.text);
  assert.equal(JSON.parse(o.text).Data.req.Method, 'OPTIONS');
  assert.equal((await call('/api/public/ping', { app, method: 'OPTIONS' })).status, 404);
  // Without CORS settings a preflight is the app's business too: no platform answer.
  const pre = { origin: 'https://shop.example', 'access-control-request-method': 'POST' };
  assert.equal((await call('/api/public/ping', { app, method: 'OPTIONS', headers: pre })).status, 404);
  const r = await api(srv, 'PUT', `/api/apps/${app}`, { body: { properties: { cors: { allowedOrigins: ['https://shop.example'] } } } });
  assert.equal(r.status, 200, r.text);
  const p = await call('/api/echo', { app, method: 'OPTIONS', headers: pre });
  assert.equal(p.status, 204);
  assert.equal(p.headers['access-control-allow-origin'], 'https://shop.example');
  assert.equal(p.headers['access-control-allow-methods'], 'POST');
  const bad = await call('/api/echo', { app, method: 'OPTIONS', headers: { ...pre, origin: 'https://evil.example' } });
  assert.equal(bad.status, 403);
  const post = await call('/api/echo', { app, method: 'POST', body: 'x', headers: { origin: 'https://shop.example', 'x-functions-key': k.functionKeys.default } });
  assert.equal(post.status, 200);
  assert.equal(post.headers['access-control-allow-origin'], 'https://shop.example');
});

// A function app whose three functions read one Key Vault secret with the managed identity
// their process got (IDENTITY_ENDPOINT / IDENTITY_HEADER, plain REST): a and b have identities
// of their own (function.json identity), c runs with the app's.
const ID_HANDLER = `'use strict';
const http = require('node:http');
const https = require('node:https');
const crypto = require('node:crypto');
const fs = require('node:fs');
const ca = fs.readFileSync(__dirname + '/ca.crt');
const boot = crypto.randomUUID(); // this process (each sandbox has its own pid namespace)
function vaultGet(q, token) {
  return new Promise((resolve, reject) => {
    const r = https.request({ host: '127.0.0.1', port: Number(q.port), servername: q.host, ca, method: 'GET',
      path: '/secrets/' + encodeURIComponent(q.name) + '?api-version=2025-07-01',
      headers: { host: q.host + ':' + q.port, authorization: 'Bearer ' + token } }, (res) => {
      let b = ''; res.on('data', (c) => { b += c; }); res.on('end', () => resolve({ status: res.statusCode, body: b }));
    });
    r.on('error', reject); r.end();
  });
}
async function read(q) {
  const ep = process.env.IDENTITY_ENDPOINT, hdr = process.env.IDENTITY_HEADER;
  const who = { boot, header: hdr ? crypto.createHash('sha256').update(hdr).digest('hex').slice(0, 16) : null };
  if (!ep || !hdr) return { ...who, status: 0 };
  const t = await fetch(ep + '?api-version=2019-08-01&resource=' + encodeURIComponent(q.resource), { headers: { 'X-IDENTITY-HEADER': hdr } });
  if (t.status !== 200) return { ...who, status: -t.status };
  const v = await vaultGet(q, (await t.json()).access_token);
  return { ...who, status: v.status, value: v.status === 200 ? JSON.parse(v.body).value : undefined };
}
http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', async () => {
    const inv = JSON.parse(body);
    const out = await read(inv.Data.req.Query);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ Outputs: { res: { statusCode: 200, body: JSON.stringify(out) } }, Logs: [] }));
  });
}).listen(Number(process.env.FUNCTIONS_CUSTOMHANDLER_PORT), '127.0.0.1');
`;

test('the example reads a Key Vault secret through an app setting reference', async () => {
  const v = vaultName('fnref');
  await createVault(srv, v);
  const w = await kvPrincipal(srv, v, 'Key Vault Secrets Officer');
  const secret = `ref-${uniq('s')}-value`;
  assert.equal((await kv(srv, v, 'PUT', '/secrets/api-secret', { token: w.token, body: { value: secret } })).status, 200);
  const app = appName('ref');
  await createFunctionApp(app, EXAMPLE);
  const k = await listKeys(app);
  const id = (await apiOk(srv, 'GET', `/api/apps/${app}`, {}, 200)).identity;
  const ref = `@Microsoft.KeyVault(VaultName=${v};SecretName=api-secret)`;
  const seen = async () => JSON.parse((await call('/api/vaultref', { app, headers: { 'x-functions-key': k.functionKeys.default } })).text);
  // Without a role the reference stays a literal (Azure's behaviour): not resolved.
  await apiOk(srv, 'PUT', `/api/apps/${app}/config/appsettings`, { body: { properties: { API_SECRET: ref } } }, 200);
  let st;
  await until(async () => (st = (await apiOk(srv, 'GET', `/api/apps/${app}/config/configreferences/appsettings`, {}, 200)).value?.find((x) => x.name === 'API_SECRET')?.properties?.status) && st !== 'Initialized', 'the reference\'s status');
  assert.notEqual(st, 'Resolved');
  assert.equal((await seen()).resolved, false);
  await assignRole(srv, id.principalId, 'Key Vault Secrets User', `/vaults/${v}/secrets/api-secret`);
  // The same setting again: resolved now, and the function sees the value (shown as a fingerprint).
  await apiOk(srv, 'PUT', `/api/apps/${app}/config/appsettings`, { body: { properties: { API_SECRET: ref, AGAIN: '1' } } }, 200);
  const want = createHash('sha256').update(secret).digest('hex').slice(0, 16);
  await until(async () => (await seen()).sha256 === want, 'the resolved secret in the function');
  assert.equal((await cliAsync(['app', 'delete', app], { env })).status, 0);
});

test('per-function identity: each function reads only what its own identity may', async () => {
  const v = vaultName('fnid');
  await createVault(srv, v);
  const w = await kvPrincipal(srv, v, 'Key Vault Secrets Officer');
  for (const n of ['s1', 's2']) assert.equal((await kv(srv, v, 'PUT', `/secrets/${n}`, { token: w.token, body: { value: `value-${n}` } })).status, 200);
  const dir = mkdtempSync(join(work, 'id-'));
  const fn = (identity) => ({ ...(identity ? { identity: { type: 'SystemAssigned' } } : {}), bindings: [{ type: 'httpTrigger', direction: 'in', name: 'req', authLevel: 'anonymous', methods: ['get'] }, { type: 'http', direction: 'out', name: 'res' }] });
  writeFileSync(join(dir, 'host.json'), JSON.stringify({ version: '2.0', customHandler: { description: { defaultExecutablePath: 'node', arguments: ['handler.js'] } } }));
  writeFileSync(join(dir, 'handler.js'), ID_HANDLER);
  cpSync(join(srv.dataDir, 'tls', 'ca.crt'), join(dir, 'ca.crt'));
  for (const [f, own] of [['a', true], ['b', true], ['c', false]]) {
    mkdirSync(join(dir, f));
    writeFileSync(join(dir, f, 'function.json'), JSON.stringify(fn(own)));
  }
  const app = appName('fnid');
  assert.equal((await cliAsync(['app', 'create', app], { env })).status, 0);
  assert.equal((await deploy(app, dir)).status, 0);
  const q = (name) => `?host=${v}.vault.${DOMAIN}&port=${srv.port}&name=${name}&resource=${encodeURIComponent(`https://vault.${DOMAIN}`)}`;
  const read = async (f, name) => {
    const r = await call(`/api/${f}${q(name)}`, { app });
    return r.status === 200 ? JSON.parse(r.text) : { status: `http ${r.status}` };
  };
  let view;
  await until(async () => (view = await apiOk(srv, 'GET', `/api/apps/${app}`, {}, 200)).properties.functionIdentities?.b && view.identity, 'the identities');
  const ids = view.properties.functionIdentities;
  assert.deepEqual(Object.keys(ids).sort(), ['a', 'b']);
  assert.notEqual(ids.a.principalId, ids.b.principalId);
  assert.notEqual(ids.a.principalId, view.identity.principalId);
  await until(async () => (await read('a', 's1')).status === 403 && (await read('c', 's1')).status === 403, 'every worker');
  // One role, for a's identity on s1: only a reads it.
  await assignRole(srv, ids.a.principalId, 'Key Vault Secrets User', `/vaults/${v}/secrets/s1`);
  const ra = await read('a', 's1');
  assert.equal(ra.status, 200, JSON.stringify(ra));
  assert.equal(ra.value, 'value-s1');
  assert.equal((await read('a', 's2')).status, 403, 'a role on s1 is no role on s2');
  const rb = await read('b', 's1');
  const rc = await read('c', 's1');
  assert.equal(rb.status, 403, JSON.stringify(rb));
  assert.equal(rc.status, 403, JSON.stringify(rc));
  // Three processes, three headers: no function's code holds another's.
  assert.equal(new Set([ra.boot, rb.boot, rc.boot]).size, 3);
  assert.equal(new Set([ra.header, rb.header, rc.header]).size, 3);
  // The app's identity gets s2: c reads it, a and b (their own identities only) do not.
  await assignRole(srv, view.identity.principalId, 'Key Vault Secrets User', `/vaults/${v}/secrets/s2`);
  assert.equal((await read('c', 's2')).value, 'value-s2');
  assert.equal((await read('a', 's2')).status, 403);
  assert.equal((await read('b', 's2')).status, 403);
  // A redeploy without a's identity: a runs with the app's, and its identity is gone with its role.
  writeFileSync(join(dir, 'a', 'function.json'), JSON.stringify(fn(false)));
  assert.equal((await deploy(app, dir)).status, 0);
  await until(async () => !(await apiOk(srv, 'GET', `/api/apps/${app}`, {}, 200)).properties.functionIdentities?.a, 'a without its identity');
  await until(async () => (await read('a', 's2')).value === 'value-s2', 'a with the app identity');
  assert.equal((await read('a', 's1')).status, 403);
  assert.equal((await read('b', 's1')).status, 403);
  await until(async () => (await apiOk(srv, 'GET', `/api/roleAssignments?principal=${ids.a.principalId}`, {}, 200)).value.length === 0, 'the old identity\'s roles gone');
  // Forwarding mode would let the handler pick the code that runs with an identity: refused.
  writeFileSync(join(dir, 'b', 'function.json'), JSON.stringify(fn(true)));
  writeFileSync(join(dir, 'host.json'), JSON.stringify({ version: '2.0', customHandler: { enableForwardingHttpRequest: true, description: { defaultExecutablePath: 'node', arguments: ['handler.js'] } } }));
  const fwd = await deploy(app, dir);
  assert.notEqual(fwd.status, 0);
  assert.match(fwd.stderr + fwd.stdout, /b\/function\.json: identity: a function with its own identity needs invocation mode/);
  // Deleting the app removes every function identity.
  assert.equal((await cliAsync(['app', 'delete', app], { env })).status, 0);
  await until(async () => (await api(srv, 'GET', `/api/roleAssignments?principal=${ids.b.principalId}`)).json?.value?.length === 0, 'b\'s identity gone');
});

test('a timer occurrence runs once: never twice at the same moment, never skipped for itself', async () => {
  // Every 3 s, each run 1.5 s, no start-up run: every record a success, about 3 s apart.
  const app = appName('once');
  await createFunctionApp(app, variant({ 'tick/function.json': { bindings: [{ type: 'timerTrigger', direction: 'in', name: 'myTimer', schedule: '*/3 * * * * *' }] } }));
  let recs;
  await until(async () => (recs = (await apiOk(srv, 'GET', `/api/apps/${app}/invocations?function=tick`, {}, 200)).value).length >= 4, 'four runs');
  assert.deepEqual(recs.filter((x) => x.outcome !== 'Succeeded'), [], JSON.stringify(recs));
  const at = recs.map((x) => Date.parse(x.start));
  for (let i = 1; i < at.length; i++) assert.ok(at[i] - at[i - 1] >= 2000, `runs ${at[i] - at[i - 1]} ms apart`);
  assert.equal((await cliAsync(['app', 'delete', app], { env })).status, 0);
});

test('scale to zero: an idle app stops its handler, the next call starts it and waits (cold)', async () => {
  const app = appName('zero');
  await createFunctionApp(app, variant({ tick: null, ticks: null }));
  await apiOk(srv, 'PUT', `/api/apps/${app}/config/appsettings`, { body: { properties: { RAMPART_FUNCTIONS_IDLE_SECONDS: '5' } } }, 200);
  await until(async () => (await call('/api/nap?ms=1', { app })).status === 200, 'the handler with the setting');
  const view = async () => (await apiOk(srv, 'GET', `/api/apps/${app}`, {}, 200)).properties.process;
  assert.equal((await view()).running, true);
  // Idle for 5 s: scaled to zero.
  await until(async () => !(await view())?.running, 'scaled to zero');
  assert.match(srv.stderr, new RegExp(`"app":"${app}","message":"idle: scaled to zero"`));
  // The keys API needs no handler; the next call starts it and waits for it.
  assert.equal((await call('/admin/host/keys', { app, headers: { 'x-functions-key': (await listKeys(app)).masterKey } })).status, 200);
  assert.ok(!(await view())?.running, 'still at zero');
  const cold = await call('/api/nap?ms=1', { app });
  assert.equal(cold.status, 200, cold.text);
  const warm = await call('/api/nap?ms=1', { app });
  assert.equal(warm.status, 200);
  const recs = (await apiOk(srv, 'GET', `/api/apps/${app}/invocations?function=nap`, {}, 200)).value;
  const byId = (r) => recs.find((x) => x.id === r.headers['x-ms-request-id']);
  assert.equal(byId(cold).cold, true, JSON.stringify(byId(cold)));
  assert.equal(byId(warm).cold, false);
  assert.ok(byId(cold).durationMs > byId(warm).durationMs, 'the cold call waited for the start');
  assert.equal((await apiOk(srv, 'GET', `/api/apps/${app}/metrics`, {}, 200)).functions.nap.cold, 1);
  // Without the setting (or with timers) an app never scales to zero.
  assert.equal((await view()).running, true);
  assert.equal((await cliAsync(['app', 'delete', app], { env })).status, 0);
});

test('a schedule from an app setting; a timer wakes an app scaled to zero', async () => {
  const app = appName('wake');
  await createFunctionApp(app, variant({ 'tick/function.json': { bindings: [{ type: 'timerTrigger', direction: 'in', name: 'myTimer', schedule: '%TICK_SCHEDULE%' }] } }));
  await until(async () => srv.stderr.includes('the schedule names the app setting TICK_SCHEDULE, which is not set'), 'the unscheduled timer');
  await apiOk(srv, 'PUT', `/api/apps/${app}/config/appsettings`, { body: { properties: { TICK_SCHEDULE: '*/15 * * * * *', RAMPART_FUNCTIONS_IDLE_SECONDS: '5' } } }, 200);
  const runs = async () => (await apiOk(srv, 'GET', `/api/apps/${app}/invocations?function=tick`, {}, 200)).value.filter((x) => x.outcome === 'Succeeded').length;
  await until(async () => (await runs()) >= 1, 'the first run on the setting\'s schedule');
  await until(async () => srv.stderr.includes(`"app":"${app}","message":"idle: scaled to zero"`), 'scaled to zero between runs');
  await until(async () => (await runs()) >= 2, 'the next run, waking the app');
  assert.match(srv.stderr, new RegExp(`"app":"${app}","message":"a call: starting from zero"`));
  assert.equal((await cliAsync(['app', 'delete', app], { env })).status, 0);
});

test('scale out: calls waiting in line start another instance (WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT), which stops when the line is empty', async () => {
  const app = appName('out');
  const host = JSON.parse(readFileSync(join(EXAMPLE, 'host.json'), 'utf8'));
  host.extensions = { http: { maxConcurrentRequests: 1, maxOutstandingRequests: 20 } };
  await createFunctionApp(app, variant({ 'host.json': host, tick: null, ticks: null }));
  const before = JSON.parse((await call('/api/nap?ms=1', { app })).text).instance;
  await apiOk(srv, 'PUT', `/api/apps/${app}/config/appsettings`, { body: { properties: { WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT: '2' } } }, 200);
  // A settings change restarts the handler: wait for the new process (and the old one's drain).
  await until(async () => { const r = await call('/api/nap?ms=1', { app }); return r.status === 200 && JSON.parse(r.text).instance !== before; }, 'the handler with the setting');
  await sleep(2500);
  const view = async () => (await apiOk(srv, 'GET', `/api/apps/${app}`, {}, 200)).properties.process;
  assert.equal((await view()).instances, 1);
  // Ten calls of a second each, one at a time per instance: the line makes a second instance.
  const rs = await Promise.all(Array.from({ length: 10 }, () => call('/api/nap?ms=1000', { app })));
  assert.deepEqual(rs.map((r) => r.status), Array(10).fill(200));
  const seen = new Set(rs.map((r) => JSON.parse(r.text).instance));
  assert.equal(seen.size, 2, 'two instances answered');
  for (const r of rs) assert.equal(JSON.parse(r.text).maxActive, 1, 'one call at a time in each: ' + rs.map((x) => x.text).join(' '));
  assert.match(srv.stderr, new RegExp(`"app":"${app}","message":"calls wait: one more instance"`));
  assert.equal((await view()).instances, 2);
  // No line for a while: back to one.
  await until(async () => (await view()).instances === 1, 'the scale in');
  assert.match(srv.stderr, new RegExp(`"app":"${app}","message":"no calls wait: one instance fewer"`));
  assert.equal((await call('/api/nap?ms=1', { app })).status, 200);
  assert.equal((await cliAsync(['app', 'delete', app], { env })).status, 0);
});

test('the invocation log and metrics: every call, its outcome and the handler Logs; rampart fn logs', async () => {
  const hello = await call('/api/hello/log', { headers: { 'x-functions-key': keys.functionKeys.default } });
  assert.equal(hello.status, 200);
  assert.equal((await call('/api/hello/log')).status, 401, 'a call without its key is no invocation');
  const page = async (q = '') => apiOk(srv, 'GET', `/api/apps/${name}/invocations${q}`, {}, 200);
  let rec;
  await until(async () => (rec = (await page('?function=hello&limit=500')).value.find((x) => x.id === hello.headers['x-ms-request-id'])), 'the hello record');
  assert.equal(rec.outcome, 'Succeeded');
  assert.equal(rec.status, 200);
  assert.equal(rec.trigger, 'httpTrigger');
  assert.equal(rec.function, 'hello');
  assert.deepEqual(rec.logs, ['hello ran']);
  assert.ok(rec.durationMs > 0 && rec.durationMs < 30000, String(rec.durationMs));
  assert.match(rec.start, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  // A timed-out call, and the timer's runs (the example's runs on start-up) with their trigger.
  assert.equal((await call('/api/slow')).status, 504);
  let all;
  await until(async () => (all = await page('?limit=500')).value.some((x) => x.function === 'slow' && x.outcome === 'TimedOut' && x.status === 504), 'the timed-out call');
  assert.ok(all.value.some((x) => x.function === 'tick' && x.trigger === 'timerTrigger' && x.outcome === 'Succeeded'), 'a timer run');
  assert.ok(all.value.every((x, i) => i === 0 || x.seq > all.value[i - 1].seq));
  // Paging: after the last one there is nothing new until another call.
  const tail = await page(`?after=${all.next}&function=hello`);
  assert.deepEqual(tail.value, []);
  // Nothing of the request is in a record: no path, query, header or key.
  const keyed = await call(`/api/hello/secretpath?code=${encodeURIComponent(keys.functionKeys.default)}`);
  assert.equal(keyed.status, 200);
  await until(async () => (await page(`?after=${all.next}&function=hello`)).value.length >= 1, 'the keyed call');
  const text = JSON.stringify(await page('?limit=500'));
  assert.ok(!text.includes(keys.functionKeys.default) && !text.includes('secretpath'), 'no key or path in the log');
  // Bad paging parameters.
  assert.equal((await api(srv, 'GET', `/api/apps/${name}/invocations?limit=0`)).status, 400);
  assert.equal((await api(srv, 'GET', `/api/apps/${name}/invocations?after=x`)).status, 400);
  assert.equal((await api(srv, 'GET', `/api/apps/nosuchapp1/invocations`)).status, 404);
  // The CLI.
  let r = await cliAsync(['fn', 'logs', name, '--function', 'hello'], { env });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /hello\s+httpTrigger\s+Succeeded\s+200/);
  assert.match(r.stdout, /\| hello ran/);
  r = await cliAsync(['fn', 'logs', name, '--output', 'json', '--limit', '3'], { env });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 3);
  r = await cliAsync(['fn', 'metrics', name], { env });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /hello\s+\d+\s+\d+/);
  assert.match(r.stdout, /running now: \d+, waiting: 0/);
  // The log file: one JSON line per record, in the app's log directory.
  // (written in batches, within a second)
  await until(() => readFileSync(join(srv.dataDir, 'apps', name, 'logs', 'invocations.log'), 'utf8').trim().split('\n')
    .some((l) => JSON.parse(l).id === hello.headers['x-ms-request-id'] && JSON.parse(l).logs[0] === 'hello ran'), 'the hello record on disk');
  // RBAC: a Reader sees the counters but not the log (the handler's Logs are what it printed).
  const reader = await createSp(srv);
  await assignRole(srv, reader.id, 'Reader', `/apps/${name}`);
  const rt = await clientToken(srv, reader.appId, reader.secret, 'management');
  assert.equal((await api(srv, 'GET', `/api/apps/${name}/invocations`, { token: rt })).status, 403);
  assert.equal((await api(srv, 'GET', `/api/apps/${name}/metrics`, { token: rt })).status, 200);
  assert.equal((await api(srv, 'GET', `/api/apps/${name}/metrics`, { token: '' })).status, 401);
});

test('keys survive a restart and are never on disk in plaintext; a missed timer runs past due', async () => {
  // useMonitor: a timer that ran before the restart and missed an occurrence while the server
  // was down runs once at start-up with IsPastDue.
  const due = appName('due');
  await createFunctionApp(due, variant({ 'tick/function.json': { bindings: [{ type: 'timerTrigger', direction: 'in', name: 'myTimer', schedule: '*/10 * * * * *', useMonitor: true }] } }));
  await until(async () => JSON.parse((await call('/api/public/ticks', { app: due })).text).runs >= 1, 'a run before the restart');
  const before = await listKeys();
  const { dataDir, token } = srv;
  await srv.stop({ keepData: true });
  await sleep(11000); // an occurrence passes while nothing runs
  srv = await startServer({ dataDir, init: false });
  srv.token = token;
  keepDir = dataDir;
  env = cliEnv(srv, home);
  await until(async () => (await call('/api/public/ping')).status === 200, 'the handler after the restart');
  assert.deepEqual(await listKeys(), before);
  const fnKey = (await apiOk(srv, 'POST', `/api/apps/${name}/functions/hello/listkeys`, {}, 200)).default;
  assert.equal((await call('/api/hello/back', { headers: { 'x-functions-key': fnKey } })).text, 'Hello, back');
  const needles = [before.masterKey, before.functionKeys.default, fnKey].map((k) => Buffer.from(k));
  assert.ok(assertNotOnDisk(srv.dataDir, needles, 'a function key') > 5, 'the walk saw the data directory');
  await until(async () => {
    const r = await call('/api/public/ticks', { app: due });
    return r.status === 200 && JSON.parse(r.text).pastDue >= 1;
  }, 'the past-due run');
});
