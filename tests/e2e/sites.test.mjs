// sites.test.mjs - App Service end to end (docs/sites.md): apps as resources, static content
// served at https://NAME.D/ from the live release, zip deploy over HTTPS on NAME.scm.D with
// the CLI (progress, directory zipped) and with plain HTTP clients, redeploy and rollback,
// RBAC on the deploy, a corpus of malicious archives that must each be refused with the live
// release untouched, restart and crash leftovers.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, existsSync, mkdirSync, writeFileSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, request, rawTcp, parseResponses, DOMAIN, SCALE } from './lib/harness.mjs';
import { api, apiOk, createSp, assignRole, clientToken, uniq, cliAsync, cliEnv, waitAudit } from './lib/iam.mjs';
import { makeZip } from './lib/zip.mjs';

const EXAMPLE = new URL('../../examples/site', import.meta.url).pathname;
let srv;
let home;

const appName = (p) => uniq(p).replace(/[^a-z0-9-]/g, '').slice(0, 40);
const get = (name, path = '/') => request(srv, { host: `${name}.${DOMAIN}`, path });

function deploy(name, zip, { token = srv.token, type = 'application/zip' } = {}) {
  const headers = { 'content-type': type };
  if (token) headers.authorization = `Bearer ${token}`;
  return request(srv, { method: 'POST', host: `${name}.scm.${DOMAIN}`, path: '/api/zipdeploy', headers, body: zip, timeout: 60000 * SCALE })
    .then((r) => ({ ...r, json: r.text ? JSON.parse(r.text) : undefined }));
}

const releasesDir = (name) => join(srv.dataDir, 'apps', name, 'releases');
// The release directories (.owner names the app they belong to: a swap moves them, docs/sites.md).
const releaseDirs = (name) => readdirSync(releasesDir(name)).filter((d) => d !== '.owner').sort();

async function createApp(name) {
  return apiOk(srv, 'PUT', `/api/apps/${name}`, { body: {} }, 201);
}

test.before(async () => {
  srv = await startServer();
  home = mkdtempSync(join(tmpdir(), 'rp-sites-home-'));
});
test.after(async () => {
  if (srv) await srv.stop();
  rmSync(home, { recursive: true, force: true });
});

test('CLI: app create --static serves the directory at https://NAME.D/ over HTTPS only', async () => {
  const name = appName('cli');
  const env = cliEnv(srv, home);
  const r = await cliAsync(['app', 'create', name, '--static', EXAMPLE], { env });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /Created app/);
  assert.match(r.stdout, /Deployed release 1 to/);
  const page = await get(name);
  assert.equal(page.status, 200);
  assert.equal(page.text, readFileSync(join(EXAMPLE, 'index.html'), 'utf8'));
  assert.match(page.headers['strict-transport-security'], /max-age=\d+/);
  const css = await get(name, '/style.css');
  assert.equal(css.status, 200);
  assert.match(css.headers['content-type'], /text\/css/);
  // Management view and list.
  const show = await cliAsync(['app', 'show', name, '--output', 'json'], { env });
  assert.equal(show.status, 0, show.stderr);
  const j = JSON.parse(show.stdout);
  assert.equal(j.properties.release, 1);
  assert.equal(j.properties.httpsOnly, true);
  assert.equal(j.properties.url, `https://${name}.${DOMAIN}:${srv.port}/`);
  assert.equal(j.properties.scmUri, `https://${name}.scm.${DOMAIN}:${srv.port}/`);
  const list = await apiOk(srv, 'GET', '/api/apps', {}, 200);
  assert.ok(list.value.some((a) => a.name === name));
  // Plain HTTP is only ever redirected to HTTPS.
  const raw = await rawTcp(srv.httpPort, `GET /style.css HTTP/1.1\r\nHost: ${name}.${DOMAIN}\r\n\r\n`, { idleMs: 400 });
  const [red] = parseResponses(raw.data);
  assert.equal(red.status, 301);
  assert.equal(red.headers.location, `https://${name}.${DOMAIN}:${srv.port}/style.css`);
  // Bad names never reach the server.
  const bad = await cliAsync(['app', 'create', 'Bad_Name'], { env });
  assert.equal(bad.status, 2);
});

test('CLI deploy of a directory leaves out .git, .env and symlinks; redeploy, releases, rollback', async () => {
  const name = appName('dep');
  const env = cliEnv(srv, home);
  const src = mkdtempSync(join(tmpdir(), 'rp-site-src-'));
  try {
    writeFileSync(join(src, 'index.html'), '<h1>one</h1>');
    mkdirSync(join(src, 'assets', 'img'), { recursive: true });
    writeFileSync(join(src, 'assets', 'img', 'a.txt'), 'nested');
    mkdirSync(join(src, '.git'));
    writeFileSync(join(src, '.git', 'config'), '[core]');
    writeFileSync(join(src, '.env'), 'SECRET=1');
    symlinkSync('/etc/passwd', join(src, 'passwd'));
    assert.equal((await cliAsync(['app', 'create', name], { env })).status, 0);
    let r = await cliAsync(['app', 'deploy', name, src], { env });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Deployed release 1/);
    assert.equal((await get(name)).text, '<h1>one</h1>');
    assert.equal((await get(name, '/assets/img/a.txt')).text, 'nested');
    for (const p of ['/.git/config', '/.env', '/passwd'])
      assert.equal((await get(name, p)).status, 404, p);
    const rel1 = join(releasesDir(name), '1');
    assert.deepEqual(readdirSync(rel1).sort(), ['assets', 'index.html']);

    writeFileSync(join(src, 'index.html'), '<h1>two</h1>');
    r = await cliAsync(['app', 'deploy', name, src, '--output', 'json'], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).id, '2');
    assert.equal((await get(name)).text, '<h1>two</h1>');
    const rel = await cliAsync(['app', 'releases', name, '--output', 'json'], { env });
    const rows = JSON.parse(rel.stdout).value;
    assert.deepEqual(rows.map((x) => [x.id, x.active]), [['2', true], ['1', false]]);

    r = await cliAsync(['app', 'rollback', name], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /release 1 is live/);
    assert.equal((await get(name)).text, '<h1>one</h1>');
    // Nothing earlier than 1: a conflict, exit 4; --to goes forward again.
    r = await cliAsync(['app', 'rollback', name], { env });
    assert.equal(r.status, 4, r.stderr);
    r = await cliAsync(['app', 'rollback', name, '--to', '2'], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((await get(name)).text, '<h1>two</h1>');
    r = await cliAsync(['app', 'rollback', name, '--to', '99'], { env });
    assert.equal(r.status, 4);
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
});

test('zip deploy over HTTPS: Kudu-shaped answer, old releases pruned, audited', async () => {
  const name = appName('zip');
  await createApp(name);
  const r0 = await get(name);
  assert.equal(r0.status, 404);
  assert.equal(JSON.parse(r0.text).error.code, 'NoContent');
  for (let i = 1; i <= 7; i++) {
    const r = await deploy(name, makeZip([{ name: 'index.html', data: `v${i}` }, { name: 'dir/', data: '' }, { name: 'dir/x.txt', data: 'x', method: 'store' }]));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.id, String(i));
    assert.equal(r.json.status, 4);
    assert.equal(r.json.complete, true);
    assert.equal(r.json.files, 2);
    assert.equal((await get(name)).text, `v${i}`);
  }
  // Five kept: 3..7, on disk and in the list; 1 and 2 are gone.
  const deadline = Date.now() + 5000 * SCALE;
  while (releaseDirs(name).length > 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(releaseDirs(name), ['3', '4', '5', '6', '7']);
  const rel = await apiOk(srv, 'GET', `/api/apps/${name}/releases`, {}, 200);
  assert.deepEqual(rel.value.map((x) => x.id), ['7', '6', '5', '4', '3']);
  const latest = await request(srv, { host: `${name}.scm.${DOMAIN}`, path: '/api/deployments/latest', headers: { authorization: `Bearer ${srv.token}` } });
  assert.equal(JSON.parse(latest.text).id, '7');
  await waitAudit(srv, (recs) => recs.some((r) => r.action === 'Microsoft.Web/sites/publish/action' && r.scope === `/apps/${name}` && r.result === 'success' && r.detail?.release === 7), { what: 'the deploy record' });
});

test('malicious and broken archives are refused with a clear error; the live release is untouched', async () => {
  const name = appName('evil');
  await createApp(name);
  const good = await deploy(name, makeZip([{ name: 'index.html', data: 'live' }]));
  assert.equal(good.status, 200, good.text);
  const zeros = Buffer.alloc(60 * 1024 * 1024);
  const cases = [
    ['zip-slip', makeZip([{ name: 'ok.txt', data: 'a' }, { name: '../evil.txt', data: 'x' }]), 400, 'UnsafeArchive'],
    ['deep zip-slip', makeZip([{ name: 'a/b/../../../evil.txt', data: 'x' }]), 400, 'UnsafeArchive'],
    ['absolute path', makeZip([{ name: '/tmp/evil.txt', data: 'x' }]), 400, 'UnsafeArchive'],
    ['backslash path', makeZip([{ name: '..\\evil.txt', data: 'x' }]), 400, 'UnsafeArchive'],
    ['symlink entry', makeZip([{ name: 'index.html', data: 'x' }, { name: 'link', data: '/etc/shadow', mode: 0o120777, method: 'store' }]), 400, 'UnsafeArchive'],
    ['duplicate names', makeZip([{ name: 'a.txt', data: '1' }, { name: 'a.txt', data: '2' }]), 400, 'UnsafeArchive'],
    ['zip bomb (ratio)', makeZip([{ name: 'zeros.bin', data: zeros }]), 413, 'ArchiveTooLarge'],
    ['lying size', makeZip([{ name: 'big.bin', data: Buffer.alloc(4096, 7), declaredSize: 10 }]), 400, 'InvalidArchive'],
    ['too many files', makeZip(Array.from({ length: 20001 }, (_, i) => ({ name: `f${i}`, data: '' }))), 413, 'ArchiveTooLarge'],
    ['not a zip', Buffer.from('this is not a zip file at all'), 400, 'InvalidArchive'],
    ['truncated', makeZip([{ name: 'index.html', data: 'x'.repeat(5000) }]).subarray(0, 60), 400, 'InvalidArchive'],
  ];
  const before = releaseDirs(name);
  for (const [what, zip, status, code] of cases) {
    const r = await deploy(name, zip);
    assert.equal(r.status, status, `${what}: ${r.text}`);
    assert.equal(r.json.error.code, code, what);
    assert.ok(r.json.error.message.length > 0, what);
    assert.equal((await get(name)).text, 'live', `${what}: live release unchanged`);
  }
  // Nothing landed anywhere: no new release directory, nothing outside the app's tree.
  assert.deepEqual(releaseDirs(name), before);
  assert.equal(existsSync(join(srv.dataDir, 'apps', name, 'evil.txt')), false);
  assert.equal(existsSync(join(srv.dataDir, 'apps', 'evil.txt')), false);
  assert.equal(existsSync('/tmp/evil.txt'), false);
  const app = await apiOk(srv, 'GET', `/api/apps/${name}`, {}, 200);
  assert.equal(app.properties.release, 1);
  // Wrong media type, empty body, wrong method.
  assert.equal((await deploy(name, makeZip([{ name: 'a', data: 'b' }]), { type: 'text/plain' })).status, 415);
  assert.equal((await deploy(name, Buffer.alloc(0))).status, 400);
  const g = await request(srv, { host: `${name}.scm.${DOMAIN}`, path: '/api/zipdeploy', headers: { authorization: `Bearer ${srv.token}` } });
  assert.equal(g.status, 405);
  assert.equal((await get(name)).text, 'live');
});

test('deploy is authenticated and authorized per app (Website Contributor yes, Reader no)', async () => {
  const name = appName('rbac');
  const other = appName('other');
  await createApp(name);
  await createApp(other);
  const zip = makeZip([{ name: 'index.html', data: 'rbac' }]);
  assert.equal((await deploy(name, zip, { token: null })).status, 401);
  assert.equal((await deploy(name, zip, { token: 'not-a-token' })).status, 401);
  const reader = await createSp(srv);
  await assignRole(srv, reader.appId, 'Reader', `/apps/${name}`);
  const rt = await clientToken(srv, reader.appId, reader.secret);
  const r1 = await deploy(name, zip, { token: rt });
  assert.equal(r1.status, 403, r1.text);
  const dev = await createSp(srv);
  await assignRole(srv, dev.appId, 'Website Contributor', `/apps/${name}`);
  const dt = await clientToken(srv, dev.appId, dev.secret);
  const r2 = await deploy(name, zip, { token: dt });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(r2.json.author, dev.id);
  assert.equal((await get(name)).text, 'rbac');
  // Scoped to that app only.
  assert.equal((await deploy(other, zip, { token: dt })).status, 403);
  // A token for another audience is refused.
  const vt = await clientToken(srv, dev.appId, dev.secret, 'vault');
  assert.equal((await deploy(name, zip, { token: vt })).status, 401);
  // Management: Reader reads, cannot delete.
  assert.equal((await api(srv, 'GET', `/api/apps/${name}`, { token: rt })).status, 200);
  assert.equal((await api(srv, 'DELETE', `/api/apps/${name}`, { token: rt })).status, 403);
  assert.equal((await api(srv, 'GET', '/api/apps', { token: null })).status, 401);
});

test('names, unknown hosts, delete and re-create', async () => {
  for (const bad of ['a', 'Upper', '-ab', 'ab-', 'a_b', 'login', 'scm', 'vault', 'x'.repeat(61)])
    assert.equal((await api(srv, 'PUT', `/api/apps/${bad}`, { body: {} })).status, 400, bad);
  assert.equal((await api(srv, 'PUT', `/api/apps/${appName('b')}`, { body: { command: 'x' } })).status, 400);
  assert.equal((await api(srv, 'PUT', `/api/apps/${appName('b')}`, { body: { properties: { command: 'x' } } })).status, 400);
  assert.equal((await api(srv, 'PUT', `/api/apps/${appName('b')}`, { body: '[1]' })).status, 400);
  const none = await get(appName('nope'));
  assert.equal(none.status, 404);
  assert.equal(JSON.parse(none.text).error.code, 'SiteNotFound');
  const name = appName('del');
  await createApp(name);
  assert.equal((await api(srv, 'PUT', `/api/apps/${name}`, { body: {} })).status, 200, 'PUT again is a no-op');
  assert.equal((await deploy(name, makeZip([{ name: 'index.html', data: 'old' }]))).status, 200);
  assert.equal((await api(srv, 'DELETE', `/api/apps/${name}`)).status, 204);
  assert.equal((await get(name)).status, 404);
  assert.equal((await api(srv, 'DELETE', `/api/apps/${name}`)).status, 404);
  await createApp(name);
  const fresh = await get(name);
  assert.equal(JSON.parse(fresh.text).error.code, 'NoContent', 'a re-created app starts empty');
});

test('serving continues during a large deploy', async () => {
  const name = appName('busy');
  await createApp(name);
  assert.equal((await deploy(name, makeZip([{ name: 'index.html', data: 'steady' }]))).status, 200);
  const files = [];
  for (let i = 0; i < 40; i++) files.push({ name: `f/${i}.bin`, data: Buffer.alloc(512 * 1024, i), method: 'store' });
  const big = deploy(name, makeZip([{ name: 'index.html', data: 'new' }, ...files]));
  let served = 0;
  const until = Date.now() + 200;
  while (Date.now() < until || served < 5) {
    const r = await get(name);
    assert.equal(r.status, 200);
    assert.ok(r.text === 'steady' || r.text === 'new');
    served++;
  }
  const r = await big;
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.files, 41);
  assert.equal((await get(name)).text, 'new');
});

test('restart: live releases come back; uncommitted release directories are removed', async () => {
  const s2 = await startServer();
  try {
    const name = appName('rst');
    await apiOk(s2, 'PUT', `/api/apps/${name}`, { body: {} }, 201);
    const r = await request(s2, { method: 'POST', host: `${name}.scm.${DOMAIN}`, path: '/api/zipdeploy', headers: { authorization: `Bearer ${s2.token}`, 'content-type': 'application/zip' }, body: makeZip([{ name: 'index.html', data: 'persist' }]) });
    assert.equal(r.status, 200, r.text);
    // What a crash in the middle of a deploy leaves: a release directory without its commit,
    // and the directory of an app that no longer exists.
    mkdirSync(join(s2.dataDir, 'apps', name, 'releases', '2', 'x'), { recursive: true });
    mkdirSync(join(s2.dataDir, 'apps', 'ghost', 'releases', '1'), { recursive: true });
    await s2.stop({ keepData: true });
    const s3 = await startServer({ dataDir: s2.dataDir, init: false });
    try {
      s3.token = s2.token;
      const p = await request(s3, { host: `${name}.${DOMAIN}` });
      assert.equal(p.text, 'persist');
      assert.deepEqual(readdirSync(join(s3.dataDir, 'apps', name, 'releases')).sort(), ['.owner', '1']);
      assert.equal(existsSync(join(s3.dataDir, 'apps', 'ghost')), false);
    } finally {
      await s3.stop({ keepData: true });
    }
  } finally {
    rmSync(s2.dataDir, { recursive: true, force: true });
  }
});
