// smoke.test.mjs - the server starts, answers over TLS with the security headers, and drains.
import test from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, tmpDir, writeFileSync } from './lib/harness.mjs';

test('serve answers health, static and the authenticated API, then drains on SIGTERM', async () => {
  const site = tmpDir('rp-site-');
  writeFileSync(`${site}/index.html`, '<h1>hi</h1>');
  const srv = await startServer({ staticDir: site });
  try {
    const h = await request(srv, { path: '/health' });
    assert.equal(h.status, 200);
    // The tenant id is public (it is in every token and URL of the token service).
    assert.deepEqual(JSON.parse(h.text), { status: 'ok', tenant: srv.tenant });
    assert.match(srv.tenant, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.match(h.headers['strict-transport-security'], /max-age=(\d+)/);
    assert.ok(Number(h.headers['strict-transport-security'].match(/max-age=(\d+)/)[1]) >= 31536000);
    assert.equal(h.headers['x-content-type-options'], 'nosniff');
    assert.equal(h.headers.server, undefined);
    const page = await request(srv, { path: '/' });
    assert.equal(page.status, 200);
    assert.equal(page.text, '<h1>hi</h1>');
    const noauth = await request(srv, { path: '/api/version' });
    assert.equal(noauth.status, 401);
    assert.equal(JSON.parse(noauth.text).error.code, 'Unauthorized');
    const v = await request(srv, { path: '/api/version', headers: { authorization: `Bearer ${srv.token}` } });
    assert.equal(v.status, 200);
    assert.equal(JSON.parse(v.text).name, 'rampart');
  } finally {
    await srv.stop();
  }
});
