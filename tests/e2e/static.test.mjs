// static.test.mjs - the static file server: types, validators, conditional and range requests,
// methods, directories, special files, symlinks, streaming of a large file and keep-alive.
import test from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { statSync, symlinkSync } from 'node:fs';
import {
  startServer, request, rawTls, tmpDir, mkdirSync, writeFileSync, rmSync, join, DOMAIN,
  lookupLoopback, parseResponseStream,
} from './lib/harness.mjs';

const BIG = 3 * 1024 * 1024;
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');

function buildSite() {
  const parent = tmpDir('rp-static-');
  const root = join(parent, 'www');
  mkdirSync(join(root, 'docs'), { recursive: true });
  mkdirSync(join(root, 'sub'));
  mkdirSync(join(root, 'empty'));
  writeFileSync(join(root, 'index.html'), '<h1>home</h1>');
  writeFileSync(join(root, 'style.css'), 'body{color:red}');
  writeFileSync(join(root, 'app.js'), 'console.log(1);');
  writeFileSync(join(root, 'data.json'), '{"a":1}');
  writeFileSync(join(root, 'pic.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  writeFileSync(join(root, 'img.png'), PNG);
  writeFileSync(join(root, 'blob.qqq'), 'unknown type');
  writeFileSync(join(root, 'README'), 'no extension');
  writeFileSync(join(root, 'range.txt'), '0123456789abcdef');
  writeFileSync(join(root, 'docs', 'index.html'), '<h1>docs</h1>');
  writeFileSync(join(root, 'sub', 'file.txt'), 'file in sub\n');
  writeFileSync(join(parent, 'outside.txt'), 'OUTSIDE-THE-ROOT\n');
  symlinkSync('sub/file.txt', join(root, 'alias.txt'));
  symlinkSync('../outside.txt', join(root, 'escape.txt'));
  symlinkSync(join(parent, 'outside.txt'), join(root, 'escape-abs.txt'));
  const fifo = spawnSync('mkfifo', [join(root, 'pipe.txt')]);
  assert.equal(fifo.status, 0, `mkfifo failed: ${fifo.stderr}`);
  const big = randomBytes(BIG);
  writeFileSync(join(root, 'big.bin'), big);
  return { parent, root, big };
}

const sha256 = (b) => createHash('sha256').update(b).digest('hex');

// GET with a reader that stops now and then, so the server meets a full socket and has to wait.
function slowDownload(srv, path) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: DOMAIN, port: srv.port, path, ca: srv.ca, agent: false, lookup: lookupLoopback, servername: DOMAIN, timeout: 30000 }, (res) => {
      const chunks = [];
      let got = 0;
      let pauses = 0;
      res.on('data', (c) => {
        chunks.push(c);
        got += c.length;
        if (pauses < 5 && got > (pauses + 1) * 512 * 1024) {
          pauses++;
          res.pause();
          setTimeout(() => res.resume(), 150);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), pauses }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('download timeout')));
    req.on('error', reject);
    req.end();
  });
}

test('static files', async (t) => {
  const site = buildSite();
  const srv = await startServer({ staticDir: site.root });
  const get = (path, headers = {}, method = 'GET', body) => request(srv, { path, headers, method, body });
  try {
    await t.test('MIME types by extension', async () => {
      const want = {
        '/index.html': 'text/html',
        '/style.css': 'text/css',
        '/app.js': 'text/javascript',
        '/data.json': 'application/json',
        '/pic.svg': 'image/svg+xml',
        '/img.png': 'image/png',
        '/blob.qqq': 'application/octet-stream',
        '/README': 'application/octet-stream',
      };
      for (const [path, type] of Object.entries(want)) {
        const r = await get(path);
        assert.equal(r.status, 200, path);
        assert.equal(r.headers['content-type'].split(';')[0].trim(), type, path);
      }
      const png = await get('/img.png');
      assert.deepEqual(png.body, PNG);
      assert.equal(png.headers['x-content-type-options'], 'nosniff');
    });

    await t.test('ETag and Last-Modified', async () => {
      const r = await get('/range.txt');
      assert.equal(r.status, 200);
      assert.equal(r.text, '0123456789abcdef');
      assert.match(r.headers.etag, /^(W\/)?"[^"]+"$/);
      const mtime = statSync(join(site.root, 'range.txt')).mtime;
      assert.equal(r.headers['last-modified'], new Date(Math.floor(mtime.getTime() / 1000) * 1000).toUTCString());
      assert.equal(r.headers['accept-ranges'], 'bytes');
      const again = await get('/range.txt');
      assert.equal(again.headers.etag, r.headers.etag, 'the ETag is stable');
    });

    await t.test('If-None-Match: 304 with no body', async () => {
      const { headers: { etag } } = await get('/range.txt');
      // Raw, with a pipelined request after it: any body bytes would show up as garbage there.
      const raw = `GET /range.txt HTTP/1.1\r\nHost: ${DOMAIN}\r\nIf-None-Match: ${etag}\r\n\r\n` +
        `GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\nConnection: close\r\n\r\n`;
      const r = await rawTls(srv, raw);
      const { responses, rest } = parseResponseStream(r.data);
      assert.equal(rest, '', r.data);
      assert.deepEqual(responses.map((x) => x.status), [304, 200], r.data);
      assert.equal(responses[0].headers.etag, etag);
      assert.equal(responses[0].headers['content-length'] ?? '0', '0');
      for (const inm of [`W/${etag}`, `"nope", ${etag}`, '*']) {
        const x = await get('/range.txt', { 'if-none-match': inm });
        assert.equal(x.status, 304, inm);
        assert.equal(x.body.length, 0);
      }
      const miss = await get('/range.txt', { 'if-none-match': '"something-else"' });
      assert.equal(miss.status, 200);
      assert.equal(miss.text, '0123456789abcdef');
    });

    await t.test('If-Modified-Since', async () => {
      const future = await get('/range.txt', { 'if-modified-since': new Date(Date.now() + 86400e3).toUTCString() });
      assert.equal(future.status, 304);
      assert.equal(future.body.length, 0);
      const { headers } = await get('/range.txt');
      const same = await get('/range.txt', { 'if-modified-since': headers['last-modified'] });
      assert.equal(same.status, 304);
      const past = await get('/range.txt', { 'if-modified-since': 'Sun, 06 Nov 1994 08:49:37 GMT' });
      assert.equal(past.status, 200);
      assert.equal(past.text, '0123456789abcdef');
      const junk = await get('/range.txt', { 'if-modified-since': 'yesterday' });
      assert.equal(junk.status, 200, 'an unparsable date is ignored');
    });

    await t.test('Range requests', async () => {
      const first = await get('/range.txt', { range: 'bytes=0-3' });
      assert.equal(first.status, 206);
      assert.equal(first.headers['content-range'], 'bytes 0-3/16');
      assert.equal(first.headers['content-length'], '4');
      assert.equal(first.text, '0123');
      assert.match(first.headers['content-type'], /^text\/plain/);

      const suffix = await get('/range.txt', { range: 'bytes=-3' });
      assert.equal(suffix.status, 206);
      assert.equal(suffix.headers['content-range'], 'bytes 13-15/16');
      assert.equal(suffix.text, 'def');

      const open = await get('/range.txt', { range: 'bytes=5-' });
      assert.equal(open.status, 206);
      assert.equal(open.headers['content-range'], 'bytes 5-15/16');
      assert.equal(open.text, '56789abcdef');

      const past = await get('/range.txt', { range: 'bytes=10-999' });
      assert.equal(past.status, 206);
      assert.equal(past.headers['content-range'], 'bytes 10-15/16');
      assert.equal(past.text, 'abcdef');

      const unsat = await get('/range.txt', { range: 'bytes=999999-' });
      assert.equal(unsat.status, 416);
      assert.equal(unsat.headers['content-range'], 'bytes */16');
      assert.equal(JSON.parse(unsat.text).error.code.length > 0, true);

      const one = await get('/range.txt', { range: 'bytes=0-0' });
      assert.equal(one.status, 206);
      assert.equal(one.headers['content-range'], 'bytes 0-0/16');
      assert.equal(one.text, '0');

      for (const ignored of ['bytes=3-1', 'items=0-3', 'bytes=a-b', 'bytes=']) {
        const x = await get('/range.txt', { range: ignored });
        assert.equal(x.status, 200, `an invalid Range (${ignored}) is ignored`);
        assert.equal(x.text, '0123456789abcdef');
      }
      for (const bad of ['bytes=16-', 'bytes=-0']) {
        const x = await get('/range.txt', { range: bad });
        assert.equal(x.status, 416, bad);
        assert.equal(x.headers['content-range'], 'bytes */16', bad);
      }

      const multi = await get('/range.txt', { range: 'bytes=0-1,4-5' });
      assert.equal(multi.status, 200);
      assert.equal(multi.headers['content-range'], undefined);
      assert.equal(multi.text, '0123456789abcdef');

      const { headers: { etag } } = await get('/range.txt');
      const stale = await get('/range.txt', { range: 'bytes=0-3', 'if-range': '"stale-etag"' });
      assert.equal(stale.status, 200);
      assert.equal(stale.text, '0123456789abcdef');
      const fresh = await get('/range.txt', { range: 'bytes=0-3', 'if-range': etag });
      assert.equal(fresh.status, 206);
      assert.equal(fresh.text, '0123');

      const deep = await get('/big.bin', { range: 'bytes=3000000-3000009' });
      assert.equal(deep.status, 206);
      assert.equal(deep.headers['content-range'], `bytes 3000000-3000009/${BIG}`);
      assert.deepEqual(deep.body, site.big.subarray(3000000, 3000010));
    });

    await t.test('HEAD: the headers of GET and no body', async () => {
      const raw = `HEAD /big.bin HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n` +
        `GET /health HTTP/1.1\r\nHost: ${DOMAIN}\r\nConnection: close\r\n\r\n`;
      const r = await rawTls(srv, raw);
      const { responses, rest } = parseResponseStream(r.data, { heads: 1 });
      assert.equal(rest, '', `bytes after the HEAD response: ${r.data.slice(0, 600)}`);
      assert.deepEqual(responses.map((x) => x.status), [200, 200]);
      assert.equal(responses[0].headers['content-length'], String(BIG));
      assert.equal(responses[0].headers['content-type'], 'application/octet-stream');
      assert.ok(responses[0].headers.etag);
      assert.equal(JSON.parse(responses[1].body).status, 'ok');
      const h = await request(srv, { method: 'HEAD', path: '/index.html' });
      assert.equal(h.status, 200);
      assert.equal(h.headers['content-length'], String('<h1>home</h1>'.length));
    });

    await t.test('POST to a static path: 405 with Allow', async () => {
      const r = await get('/index.html', { 'content-type': 'text/plain' }, 'POST', 'x');
      assert.equal(r.status, 405);
      assert.equal(r.headers.allow, 'GET, HEAD');
      assert.equal(JSON.parse(r.text).error.code, 'MethodNotAllowed');
      const d = await get('/index.html', {}, 'DELETE');
      assert.equal(d.status, 405);
      assert.equal(d.headers.allow, 'GET, HEAD');
    });

    await t.test('directories: redirect to the slash form, index files, no listings', async () => {
      const r = await get('/docs');
      assert.equal(r.status, 301);
      assert.equal(r.headers.location, '/docs/');
      const q = await get('/docs?x=1');
      assert.equal(q.status, 301);
      assert.match(q.headers.location, /^\/docs\//);
      const idx = await get('/docs/');
      assert.equal(idx.status, 200);
      assert.equal(idx.text, '<h1>docs</h1>');
      assert.match(idx.headers['content-type'], /^text\/html/);
      const home = await get('/');
      assert.equal(home.text, '<h1>home</h1>');
      for (const p of ['/sub/', '/empty/']) {
        const x = await get(p);
        assert.equal(x.status, 404, p);
        assert.ok(!x.text.includes('file.txt'), 'no listing');
      }
    });

    await t.test('a FIFO is not served (and does not block the server)', async () => {
      const r = await get('/pipe.txt');
      assert.equal(r.status, 404);
      const h = await get('/health');
      assert.equal(h.status, 200);
    });

    await t.test('symlinks: inside the root served, out of the root refused', async () => {
      const inside = await get('/alias.txt');
      assert.equal(inside.status, 200);
      assert.equal(inside.text, 'file in sub\n');
      for (const p of ['/escape.txt', '/escape-abs.txt']) {
        const out = await get(p);
        assert.equal(out.status, 404, p);
        assert.ok(!out.text.includes('OUTSIDE-THE-ROOT'), p);
      }
    });

    await t.test('a 3 MiB file arrives complete and byte-identical', async () => {
      const r = await slowDownload(srv, '/big.bin');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], String(BIG));
      assert.equal(r.body.length, BIG);
      assert.equal(sha256(r.body), sha256(site.big));
      assert.ok(r.pauses > 0, 'the reader paused at least once');
      // Several at once, read at full speed.
      const all = await Promise.all([1, 2, 3].map(() => request(srv, { path: '/big.bin', timeout: 30000 })));
      for (const x of all) assert.equal(sha256(x.body), sha256(site.big));
    });

    await t.test('20 requests on one keep-alive connection', async () => {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      const ports = new Set();
      try {
        const paths = ['/index.html', '/range.txt', '/health', '/docs/', '/img.png'];
        for (let i = 0; i < 20; i++) {
          const path = paths[i % paths.length];
          const r = await new Promise((resolve, reject) => {
            const req = https.request({ host: DOMAIN, port: srv.port, path, ca: srv.ca, agent, lookup: lookupLoopback, servername: DOMAIN, timeout: 10000 }, (res) => {
              const chunks = [];
              const port = res.socket.localPort; // the socket goes back to the agent at 'end'
              res.on('data', (c) => chunks.push(c));
              res.on('end', () => resolve({ status: res.statusCode, port, reused: req.reusedSocket, body: Buffer.concat(chunks), headers: res.headers }));
              res.on('error', reject);
            });
            req.on('timeout', () => req.destroy(new Error('timeout')));
            req.on('error', reject);
            req.end();
          });
          assert.equal(r.status, 200, `request ${i} ${path}`);
          assert.notEqual(r.headers.connection, 'close', `request ${i}`);
          if (i > 0) assert.ok(r.reused, `request ${i} was not sent on the kept-alive socket`);
          ports.add(r.port);
        }
        assert.equal(ports.size, 1, 'one connection for all 20 requests');
      } finally {
        agent.destroy();
      }
    });
  } finally {
    try {
      await srv.stop();
    } finally {
      rmSync(site.parent, { recursive: true, force: true });
    }
  }
});
