// sites-signin.test.mjs - interactive sign-in for built-in authentication (docs/sites.md
// "Interactive sign-in", docs/iam.md "Interactive sign-in"): a browser sent to /.auth/login/aad
// goes to the token service's sign-in form, comes back with a code, gets a sealed session cookie
// and reaches the app as the user. Every step is driven the way a browser would (cookies per
// host, redirects followed by hand) so each refusal can be tried: wrong secret, forged form
// (no CSRF cookie, another origin), unknown client or redirect target (shown, never redirected),
// missing PKCE, open redirects, replayed codes, mismatched state, tampered, duplicated or
// foreign session cookies, sign-out, a deleted user, and an expired session (libfaketime).
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, request, DOMAIN, SCALE, SANITIZED, sleep, tmpDir, init } from './lib/harness.mjs';
import { api, apiOk, uniq, cliAsync, cliEnv, createSp, waitAudit, loginOrigin } from './lib/iam.mjs';

const EXAMPLE = new URL('../../examples/app-node', import.meta.url).pathname;
const FAKETIME_LIB = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1'].find((p) => existsSync(p));
let srv;
let home;
let name; // a process app (examples/app-node) that redirects to the login page
let other; // a second app with built-in authentication
let user; // { id, name, secret }

const appName = (p) => uniq(p).replace(/[^a-z0-9-]/g, '').slice(0, 40);
const setAuth = (s, app, properties, expect = 200) => apiOk(s, 'PUT', `/api/apps/${app}/config/authsettingsV2`, { body: { properties } }, expect);

// ---- a tiny browser: cookies per host, requests by absolute URL ----------------------------

class Browser {
  constructor(s) { this.srv = s; this.jar = new Map(); }
  cookies(host) { if (!this.jar.has(host)) this.jar.set(host, new Map()); return this.jar.get(host); }
  header(host) { return [...this.cookies(host)].map(([k, v]) => `${k}=${v}`).join('; '); }
  async go(url, { method = 'GET', body, headers = {} } = {}) {
    const u = new URL(url, `https://${DOMAIN}:${this.srv.port}`);
    const h = { ...headers };
    const c = this.header(u.hostname);
    if (c && h.cookie === undefined) h.cookie = c;
    const r = await request(this.srv, { method, host: u.hostname, path: u.pathname + u.search, headers: h, body, timeout: 30000 * SCALE });
    r.setCookies = r.headers['set-cookie'] || [];
    for (const line of r.setCookies) {
      const [nv, ...attrs] = line.split(';');
      const i = nv.indexOf('=');
      const k = nv.slice(0, i).trim();
      const v = nv.slice(i + 1).trim();
      if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || v === '') this.cookies(u.hostname).delete(k);
      else this.cookies(u.hostname).set(k, v);
    }
    r.url = u;
    return r;
  }
}

const unescapeHtml = (s) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
function formFields(html) {
  const out = {};
  for (const m of html.matchAll(/<input type="hidden" name="([a-z_]+)" value="([^"]*)">/g)) out[m[1]] = unescapeHtml(m[2]);
  return out;
}
const appUrl = (app, path) => `https://${app}.${DOMAIN}:${srv.port}${path}`;
const loginHost = () => `login.${DOMAIN}`;

// Walks from a protected page to the filled-in sign-in form. Returns { b, form, authorize }.
async function toForm(app, path = '/headers', b = new Browser(srv)) {
  const first = await b.go(appUrl(app, path));
  assert.equal(first.status, 302, first.text);
  const start = await b.go(appUrl(app, first.headers.location));
  assert.equal(start.status, 302, start.text);
  assert.ok(start.headers.location.startsWith(`${loginOrigin(srv)}/${srv.tenant}/oauth2/v2.0/authorize?`), start.headers.location);
  const page = await b.go(start.headers.location);
  assert.equal(page.status, 200, page.text);
  return { b, form: formFields(page.text), authorize: start.headers.location, page };
}

async function submit(b, form, username, secret, headers = {}) {
  const body = new URLSearchParams({ ...form, username, secret }).toString();
  return b.go(`${loginOrigin(srv)}/${srv.tenant}/oauth2/v2.0/authorize`, {
    method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', origin: loginOrigin(srv), ...headers },
  });
}

// The whole sign-in; returns the browser, signed in to app, and the callback URL it used.
async function signIn(app, u = user, path = '/headers') {
  const { b, form } = await toForm(app, path);
  const posted = await submit(b, form, u.name, u.secret);
  assert.equal(posted.status, 302, posted.text);
  const cb = posted.headers.location;
  const back = await b.go(cb);
  assert.equal(back.status, 302, back.text);
  assert.equal(back.headers.location, path);
  return { b, callback: cb, back };
}

test.before(async () => {
  srv = await startServer();
  home = mkdtempSync(join(tmpdir(), 'rp-signin-home-'));
  const env = cliEnv(srv, home);
  name = appName('signin');
  other = appName('other');
  for (const app of [name, other]) {
    const r = await cliAsync(['app', 'create', app, '--command', 'node server.js', '--static', EXAMPLE], { env });
    assert.equal(r.status, 0, r.stderr + r.stdout);
  }
  const t0 = Date.now();
  while ((await request(srv, { host: `${name}.${DOMAIN}`, path: '/' })).status !== 200) {
    if (Date.now() - t0 > 20000 * SCALE) throw new Error('the app did not come up');
    await sleep(100);
  }
  const redirectAuth = { platform: { enabled: true }, globalValidation: { requireAuthentication: true, unauthenticatedClientAction: 'RedirectToLoginPage' } };
  await setAuth(srv, name, redirectAuth);
  await setAuth(srv, other, redirectAuth);
  const uname = uniq('alice').replace(/[^A-Za-z0-9._-]/g, '');
  const u = await apiOk(srv, 'POST', '/api/users', { body: { name: uname } }, 201);
  user = { id: u.id, name: uname, secret: u.secret };
  assert.ok(user.secret, 'the user was created with a secret');
});

test.after(async () => {
  if (srv) await srv.stop();
  rmSync(home, { recursive: true, force: true });
});

test('a browser signs in through the token service and reaches the app as the user', async () => {
  const { b, back } = await signIn(name);
  const session = back.setCookies.find((c) => c.startsWith('__Host-AppServiceAuthSession='));
  assert.ok(session, back.setCookies.join('\n'));
  for (const attr of ['Secure', 'HttpOnly', 'SameSite=Lax', 'Path=/', 'Max-Age=28800']) assert.ok(session.includes(attr), `${attr} in ${session}`);
  assert.ok(!/domain=/i.test(session), 'host-only cookie');
  assert.ok(back.setCookies.some((c) => /^__Host-AppServiceAuthLogin=;.*Max-Age=0/.test(c)), 'the sign-in state is cleared');
  // Nothing of the user is readable in the cookie.
  assert.ok(!session.includes(user.name) && !session.includes(user.id));

  const r = await b.go(appUrl(name, '/headers'), { headers: { 'x-ms-client-principal-name': 'admin' } });
  assert.equal(r.status, 200, r.text);
  const seen = JSON.parse(r.text);
  assert.equal(seen['x-ms-client-principal-id'], user.id);
  assert.equal(seen['x-ms-client-principal-name'], user.name);
  assert.equal(seen['x-ms-client-principal-idp'], 'aad');
  const p = JSON.parse(Buffer.from(seen['x-ms-client-principal'], 'base64').toString());
  assert.ok(p.claims.some((c) => c.typ === 'http://schemas.microsoft.com/identity/claims/objectidentifier' && c.val === user.id));
  assert.ok(p.claims.some((c) => c.typ === 'aud' && c.val === `https://${name}.${DOMAIN}`));

  const me = await b.go(appUrl(name, '/.auth/me'));
  assert.equal(me.status, 200, me.text);
  const [entry] = JSON.parse(me.text);
  assert.equal(entry.user_id, user.name);
  assert.equal(entry.provider_name, 'aad');
  assert.equal(entry.access_token, '');

  // The session is for this app only: the other app's host never gets the cookie, and a copy
  // carried over by hand does not open there.
  const copied = b.cookies(`${name}.${DOMAIN}`).get('__Host-AppServiceAuthSession');
  const foreign = await request(srv, { host: `${other}.${DOMAIN}`, path: '/headers', headers: { cookie: `__Host-AppServiceAuthSession=${copied}` } });
  assert.equal(foreign.status, 302);

  await waitAudit(srv, (rs) => rs.some((x) => x.action === 'signin' && x.kind === 'authn' && x.result === 'success' && x.principal === user.id && x.scope === '/') &&
    rs.some((x) => x.action === 'signin' && x.result === 'success' && x.scope === `/apps/${name}` && x.principal === user.id), { what: 'sign-in records at the token service and the app' });
});

test('the sign-in form: headers, escaping, and wrong credentials that hand out no code', async () => {
  const { b, form, page } = await toForm(name);
  assert.equal(page.headers['x-frame-options'], 'DENY');
  assert.match(page.headers['content-security-policy'], /frame-ancestors 'none'/);
  assert.match(page.headers['cache-control'], /no-store/);
  assert.ok(page.setCookies.some((c) => c.startsWith('__Host-rampart-signin=') && /Secure/.test(c) && /HttpOnly/.test(c) && /SameSite=Strict/.test(c)));
  assert.ok(!page.text.includes(user.secret));

  const wrong = await submit(b, form, user.name, `${user.secret}x`);
  assert.equal(wrong.status, 401);
  assert.match(wrong.text, /Wrong user name or secret/);
  assert.equal(wrong.headers.location, undefined);
  const nobody = await submit(b, formFields(wrong.text), 'no-such-user', user.secret);
  assert.equal(nobody.status, 401);
  assert.match(nobody.text, /Wrong user name or secret/);
  // A service principal is not a user: it has no interactive sign-in.
  const sp = await createSp(srv);
  const spTry = await submit(b, formFields(nobody.text), sp.name, sp.secret);
  assert.equal(spTry.status, 401);
  // The form still works after the failures.
  const ok = await submit(b, formFields(spTry.text), user.name, user.secret);
  assert.equal(ok.status, 302, ok.text);
  assert.match(ok.headers.location, /[?&]code=[A-Za-z0-9_-]{43}&state=/);
  await waitAudit(srv, (rs) => rs.some((x) => x.action === 'signin' && x.result === 'failure' && x.detail?.reason === 'wrong secret'), { what: 'the failed sign-in record' });

  // Markup in the request is shown as text, never as markup.
  const evil = new URL((await toForm(name)).authorize);
  evil.searchParams.set('state', '"><script>alert(1)</script>');
  const shown = await b.go(evil.href);
  assert.equal(shown.status, 200);
  assert.ok(!shown.text.includes('<script>'));
  assert.ok(shown.text.includes('&quot;&gt;&lt;script&gt;'));
});

test('a forged form post is refused: no CSRF cookie, a wrong one, or another site\'s origin', async () => {
  const { b, form } = await toForm(name);
  const login = loginHost();
  const saved = b.cookies(login).get('__Host-rampart-signin');
  b.cookies(login).delete('__Host-rampart-signin');
  let r = await submit(b, form, user.name, user.secret);
  assert.equal(r.status, 403);
  assert.equal(r.headers.location, undefined);
  b.cookies(login).set('__Host-rampart-signin', 'A'.repeat(43));
  r = await submit(b, form, user.name, user.secret);
  assert.equal(r.status, 403);
  b.cookies(login).set('__Host-rampart-signin', saved);
  r = await submit(b, form, user.name, user.secret, { origin: `https://${other}.${DOMAIN}:${srv.port}` });
  assert.equal(r.status, 403);
  assert.match(r.text, /another site/);
  r = await submit(b, form, user.name, user.secret);
  assert.equal(r.status, 302, 'the genuine form still works');
});

test('the authorization endpoint shows bad clients and redirect targets instead of redirecting', async () => {
  const { authorize } = await toForm(name);
  const b = new Browser(srv);
  const variant = (edit) => { const u = new URL(authorize); edit(u.searchParams); return u.href; };
  const shown = [
    (p) => p.set('client_id', 'https://evil.example'),
    (p) => p.set('client_id', `https://management.${DOMAIN}`),
    (p) => p.set('client_id', `https://no-such-app.${DOMAIN}`),
    (p) => p.set('redirect_uri', 'https://evil.example/.auth/login/aad/callback'),
    (p) => p.set('redirect_uri', `https://${other}.${DOMAIN}:${srv.port}/.auth/login/aad/callback`),
    (p) => p.set('redirect_uri', `https://${name}.${DOMAIN}.evil.example:${srv.port}/cb`),
    (p) => p.set('redirect_uri', `https://${name}.${DOMAIN}:1/.auth/login/aad/callback`),
    // Only the callback: never another page of the app (with a caller's text in state).
    (p) => p.set('redirect_uri', `https://${name}.${DOMAIN}:${srv.port}/anything`),
    (p) => p.set('redirect_uri', `https://${name}.${DOMAIN}:${srv.port}/.auth/login/aad/callback?x=1`),
    (p) => p.delete('redirect_uri'),
  ];
  for (const edit of shown) {
    const r = await b.go(variant(edit));
    assert.equal(r.status, 400, `${variant(edit)} -> ${r.status}`);
    assert.equal(r.headers.location, undefined);
    assert.match(r.text, /invalid_client/);
  }
  // Once the target is trusted, other errors go back to it, as OAuth says.
  const back = [
    [(p) => p.delete('code_challenge'), 'invalid_request'],
    [(p) => p.set('code_challenge_method', 'plain'), 'invalid_request'],
    [(p) => p.set('response_type', 'token'), 'unsupported_response_type'],
    [(p) => p.set('response_mode', 'form_post'), 'invalid_request'],
  ];
  for (const [edit, code] of back) {
    const r = await b.go(variant(edit));
    assert.equal(r.status, 302, variant(edit));
    const loc = new URL(r.headers.location);
    assert.equal(loc.searchParams.get('error'), code);
    assert.equal(loc.origin, `https://${name}.${DOMAIN}:${srv.port}`);
  }
  const dup = await b.go(`${authorize}&state=again`);
  assert.equal(dup.status, 400);
});

test('post-login and post-logout targets stay on the site', async () => {
  const b = new Browser(srv);
  for (const t of ['https://evil.example/', '//evil.example/', '/\\evil.example', 'relative']) {
    const r = await b.go(appUrl(name, `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(t)}`));
    assert.equal(r.status, 400, t);
    const o = await b.go(appUrl(name, `/.auth/logout?post_logout_redirect_uri=${encodeURIComponent(t)}`));
    assert.equal(o.status, 400, t);
  }
  assert.equal((await b.go(appUrl(name, '/.auth/login/google'))).status, 404);
  const post = await b.go(appUrl(name, '/.auth/login/aad'), { method: 'POST', body: '{"access_token":"x"}', headers: { 'content-type': 'application/json' } });
  assert.equal(post.status, 405);
});

test('a code redeems once, only with its own sign-in state', async () => {
  const { b, form } = await toForm(name);
  const posted = await submit(b, form, user.name, user.secret);
  const cb = posted.headers.location;
  const host = `${name}.${DOMAIN}`;
  const state = b.cookies(host).get('__Host-AppServiceAuthLogin');
  // Another browser (no sign-in state) cannot use the code.
  const thief = new Browser(srv);
  const stolen = await thief.go(cb);
  assert.equal(stolen.status, 401);
  assert.match(stolen.text, /SignInStateMissing/);
  // A changed state does not match this browser's sign-in.
  const u = new URL(cb);
  u.searchParams.set('state', 'forged');
  const forged = await b.go(u.href);
  assert.equal(forged.status, 401);
  assert.match(forged.text, /SignInStateMismatch/);
  // The genuine callback works (the state cookie was cleared by the refusal: put it back).
  b.cookies(host).set('__Host-AppServiceAuthLogin', state);
  const ok = await b.go(cb);
  assert.equal(ok.status, 302, ok.text);
  // Replayed, even with the state cookie restored, the code is gone.
  b.cookies(host).set('__Host-AppServiceAuthLogin', state);
  const again = await b.go(cb);
  assert.equal(again.status, 401);
  assert.match(again.text, /unknown or was used already/);
  // An error from the token service ends the sign-in.
  const e = await toForm(name);
  const denied = await e.b.go(appUrl(name, `/.auth/login/aad/callback?error=access_denied&state=${encodeURIComponent(new URL(e.authorize).searchParams.get('state'))}`));
  assert.equal(denied.status, 401);
  assert.match(denied.text, /SignInFailed/);
});

test('tampered, duplicated or unknown session cookies count as no session', async () => {
  const { b } = await signIn(name);
  const host = `${name}.${DOMAIN}`;
  const good = b.cookies(host).get('__Host-AppServiceAuthSession');
  const flip = good.slice(0, 20) + (good[20] === 'A' ? 'B' : 'A') + good.slice(21);
  const cases = [
    `__Host-AppServiceAuthSession=${flip}`,
    `__Host-AppServiceAuthSession=${good}; __Host-AppServiceAuthSession=${good}`,
    `__Host-AppServiceAuthSession=${good.slice(0, -4)}`,
    '__Host-AppServiceAuthSession=not-a-session',
    `AppServiceAuthSession=${good}`,
  ];
  for (const cookie of cases) {
    const r = await request(srv, { host, path: '/headers', headers: { cookie } });
    assert.equal(r.status, 302, cookie.slice(0, 60));
    const x = await request(srv, { host, path: '/headers', headers: { cookie, 'x-requested-with': 'XMLHttpRequest' } });
    assert.equal(x.status, 401);
  }
  const r = await request(srv, { host, path: '/headers', headers: { cookie: `a=1; __Host-AppServiceAuthSession=${good}; b=2` } });
  assert.equal(r.status, 200);
  await waitAudit(srv, (rs) => rs.some((x) => x.action === 'app.session' && x.result === 'failure' && /more than one/.test(x.detail?.reason ?? '')), { what: 'the refused session record' });
});

test('sign-out revokes the session, even for a copy of its cookie', async () => {
  const { b } = await signIn(name);
  const host = `${name}.${DOMAIN}`;
  const copy = b.cookies(host).get('__Host-AppServiceAuthSession');
  const out = await b.go(appUrl(name, '/.auth/logout'));
  assert.equal(out.status, 302);
  assert.equal(out.headers.location, '/.auth/logout/complete');
  assert.ok(out.setCookies.some((c) => /^__Host-AppServiceAuthSession=;.*Max-Age=0/.test(c)));
  assert.equal((await b.go(appUrl(name, '/.auth/logout/complete'))).status, 200);
  const r = await request(srv, { host, path: '/headers', headers: { cookie: `__Host-AppServiceAuthSession=${copy}` } });
  assert.equal(r.status, 302);
  const to = await signIn(name);
  const o2 = await to.b.go(appUrl(name, '/.auth/logout?post_logout_redirect_uri=%2Fbye'));
  assert.equal(o2.headers.location, '/bye');
});

test('deleting the user ends the session at once', async () => {
  const uname = uniq('bob').replace(/[^A-Za-z0-9._-]/g, '');
  const u = await apiOk(srv, 'POST', '/api/users', { body: { name: uname } }, 201);
  const bob = { id: u.id, name: uname, secret: u.secret };
  const { b } = await signIn(name, bob);
  assert.equal((await b.go(appUrl(name, '/headers'))).status, 200);
  await apiOk(srv, 'DELETE', `/api/users/${uname}`, {}, [200, 204]);
  assert.equal((await b.go(appUrl(name, '/headers'))).status, 302);
});

test('cookieExpiration sets the session lifetime; bad values are refused', async () => {
  await setAuth(srv, other, { platform: { enabled: true }, globalValidation: { unauthenticatedClientAction: 'RedirectToLoginPage' }, login: { cookieExpiration: { convention: 'FixedTime', timeToExpiration: '00:10:00' } } });
  const { back } = await signIn(other);
  assert.ok(back.setCookies.some((c) => c.startsWith('__Host-AppServiceAuthSession=') && c.includes('Max-Age=600')));
  const view = await apiOk(srv, 'GET', `/api/apps/${other}/config/authsettingsV2`, {}, 200);
  assert.deepEqual(view.properties.login.cookieExpiration, { convention: 'FixedTime', timeToExpiration: '00:10:00' });
  for (const ce of [{ convention: 'IdentityDerived' }, { timeToExpiration: '30.00:00:00' }, { timeToExpiration: '10m' }]) {
    const r = await api(srv, 'PUT', `/api/apps/${other}/config/authsettingsV2`, { body: { properties: { platform: { enabled: true }, login: { cookieExpiration: ce } } } });
    assert.equal(r.status, 400, JSON.stringify(ce));
    assert.match(r.json.error.message, /cookieExpiration/);
  }
});

test('a session ends when its time is up', { skip: !FAKETIME_LIB ? 'libfaketime is not installed' : SANITIZED ? 'libfaketime does not mix with sanitizer runtimes' : false }, async () => {
  // The server's clock comes from a file libfaketime re-reads on every call.
  const dataDir = tmpDir('rp-signin-faketime-');
  const clock = join(dataDir, '..', `${uniq('clock')}.txt`);
  writeFileSync(clock, '+0\n');
  const admin = init(dataDir).admin_token;
  const s = await startServer({ dataDir, init: false, env: { LD_PRELOAD: FAKETIME_LIB, FAKETIME_TIMESTAMP_FILE: clock, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' } });
  s.token = admin;
  const site = mkdtempSync(join(tmpdir(), 'rp-signin-site-'));
  writeFileSync(join(site, 'index.html'), 'private\n');
  try {
    const app = 'expiring';
    const env = cliEnv(s, home);
    const c = await cliAsync(['app', 'create', app, '--static', site], { env });
    assert.equal(c.status, 0, c.stderr + c.stdout);
    await setAuth(s, app, { platform: { enabled: true }, globalValidation: { unauthenticatedClientAction: 'RedirectToLoginPage' }, login: { cookieExpiration: { timeToExpiration: '00:10:00' } } });
    const uname = uniq('carol').replace(/[^A-Za-z0-9._-]/g, '');
    const u = await apiOk(s, 'POST', '/api/users', { body: { name: uname } }, 201);
    const saved = srv;
    srv = s; // the helpers above talk to `srv`
    try {
      const { b } = await signIn(app, { id: u.id, name: uname, secret: u.secret }, '/');
      assert.equal((await b.go(appUrl(app, '/'))).status, 200);
      // libfaketime re-reads the clock file at its own pace: poll until the server's clock moved.
      const settle = async (want, what) => {
        const t0 = Date.now();
        let st;
        while ((st = (await b.go(appUrl(app, '/'))).status) !== want && Date.now() - t0 < 15000) await sleep(250);
        assert.equal(st, want, what);
      };
      writeFileSync(clock, '+301\n');
      await sleep(1100);
      assert.equal((await b.go(appUrl(app, '/'))).status, 200, 'within its 10 minutes');
      // A lifetime shortened since the sign-in applies to the sessions already out there.
      await setAuth(s, app, { platform: { enabled: true }, globalValidation: { unauthenticatedClientAction: 'RedirectToLoginPage' }, login: { cookieExpiration: { timeToExpiration: '00:05:00' } } });
      await settle(302, 'over the new 5 minutes');
      await setAuth(s, app, { platform: { enabled: true }, globalValidation: { unauthenticatedClientAction: 'RedirectToLoginPage' }, login: { cookieExpiration: { timeToExpiration: '00:10:00' } } });
      assert.equal((await b.go(appUrl(app, '/'))).status, 200, 'back within 10 minutes');
      writeFileSync(clock, '+601\n');
      await settle(302, 'past its 10 minutes');
      await waitAudit(s, (rs) => rs.some((x) => x.action === 'app.session' && x.detail?.status === 'expired'), { what: 'the expired-session record' });
    } finally {
      srv = saved;
    }
  } finally {
    await s.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(site, { recursive: true, force: true });
    rmSync(clock, { force: true });
  }
});

test('a session only counts for same-origin requests that change state', async () => {
  const { b } = await signIn(name);
  const host = `${name}.${DOMAIN}`;
  const own = `https://${host}:${srv.port}`;
  const sibling = `https://${other}.${DOMAIN}:${srv.port}`;
  const post = (headers) => b.go(appUrl(name, '/headers'), { method: 'POST', body: 'x=1', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
  // Another app under the same domain is "same-site": its pages must not post as the user.
  for (const h of [{ origin: sibling, 'sec-fetch-site': 'same-site' }, { origin: sibling }, { 'sec-fetch-site': 'cross-site' }, { origin: 'null' }]) {
    const r = await post(h);
    assert.equal(r.status, 302, JSON.stringify(h));
  }
  const ok = await post({ origin: own, 'sec-fetch-site': 'same-origin' });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(JSON.parse(ok.text)['x-ms-client-principal-id'], user.id);
  // Navigations (GET) from anywhere still carry the session, as SameSite=Lax intends.
  assert.equal((await b.go(appUrl(name, '/headers'), { headers: { 'sec-fetch-site': 'same-site' } })).status, 200);
  await waitAudit(srv, (rs) => rs.some((x) => x.action === 'app.session' && /cross-origin/.test(x.detail?.reason ?? '')), { what: 'the cross-origin refusal record' });
});

test('the way back after sign-in keeps the page address exactly as it was sent', async () => {
  const path = '/a%20b/caf%C3%A9?q=x%3Fy&z=1';
  const { b, back } = await signIn(name, user, path);
  assert.equal(back.headers.location, path);
  assert.ok(b.cookies(`${name}.${DOMAIN}`).get('__Host-AppServiceAuthSession'));
});

test('a deleted and re-created app opens none of its predecessor\'s sessions', async () => {
  const app = appName('again');
  const env = cliEnv(srv, home);
  const mk = async () => {
    const r = await cliAsync(['app', 'create', app, '--command', 'node server.js', '--static', EXAMPLE], { env });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    await setAuth(srv, app, { platform: { enabled: true }, globalValidation: { unauthenticatedClientAction: 'RedirectToLoginPage' } });
    const t0 = Date.now();
    while ((await request(srv, { host: `${app}.${DOMAIN}`, path: '/.auth/logout/complete' })).status !== 200) {
      if (Date.now() - t0 > 20000 * SCALE) throw new Error('the app did not come up');
      await sleep(100);
    }
  };
  await mk();
  const { b } = await signIn(app, user, '/headers');
  const old = b.cookies(`${app}.${DOMAIN}`).get('__Host-AppServiceAuthSession');
  const d = await cliAsync(['app', 'delete', app], { env });
  assert.equal(d.status, 0, d.stderr + d.stdout);
  await mk();
  const r = await request(srv, { host: `${app}.${DOMAIN}`, path: '/', headers: { cookie: `__Host-AppServiceAuthSession=${old}` } });
  assert.equal(r.status, 302);
});
