// attacks.test.mjs - the front door against the malicious-request corpus (corpus/malicious.json).
//
// One server with a static root; every corpus case is sent as raw bytes over its own TLS
// connection and checked for: the status (or the list of statuses when several responses are
// expected), whether the server closed the connection, how many responses came back (a second
// response to a smuggled request is the failure the smuggling cases look for), and that no
// protected content ever appears: the secret next to the root, /etc/passwd, dotfiles.
//
// Corpus format: { name, category, raw, expect, split? }.
//   raw     a string whose chars are bytes (latin1: "\u00e9" is the byte 0xE9, "\u0000" NUL), or
//           an array of strings and { "repeat": s, "count": n } pieces (long requests).
//   split   send the bytes in pieces of this many bytes, one TLS record each.
//   expect  status    number, or an array of acceptable numbers (first response)
//           statuses  exact list of statuses, in order (several responses)
//           close     true/false (or [true,false]: either); absent: not checked
//           responses number of complete responses (or an array of acceptable counts)
//           headers   { name: value } expected on the first response
//           bodyNot   strings that must not appear anywhere in the answer
// Every error response (>= 400) must carry a JSON body {"error":{"code","message"}}; a response
// followed by a close must say "Connection: close", except an early handler answer (401) that
// was sent before a later body error closed the connection.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, symlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import {
  startServer, request, rawTlsSettled, tmpDir, mkdirSync, writeFileSync, rmSync, join,
  parseResponseStream, rawBytes, splitBytes,
} from './lib/harness.mjs';

const corpus = JSON.parse(readFileSync(new URL('./corpus/malicious.json', import.meta.url), 'utf8'));
const CATEGORIES = new Set(['smuggling', 'traversal', 'framing', 'limits', 'control']);
const IDLE_MS = 400; // a kept-open connection is judged after this much silence once all is sent

// A content root with things that must never be served, and a secret placed next to it.
function buildSite() {
  const parent = tmpDir('rp-attack-');
  const root = join(parent, 'www');
  const marker = `RAMPART-SECRET-${randomBytes(8).toString('hex')}`;
  const markers = [marker, `ENV-${marker}`, `GIT-${marker}`, `HIDDEN-${marker}`, 'root:'];
  mkdirSync(join(root, 'sub'), { recursive: true });
  mkdirSync(join(root, '.git'));
  writeFileSync(join(parent, 'secret.txt'), `${marker}\n`);
  writeFileSync(join(root, 'index.html'), '<h1>index</h1>');
  writeFileSync(join(root, 'sub', 'file.txt'), 'file in sub\n');
  writeFileSync(join(root, '.env'), `SECRET=ENV-${marker}\n`);
  writeFileSync(join(root, '.git', 'config'), `[core]\n# GIT-${marker}\n`);
  writeFileSync(join(root, 'sub', '.hidden'), `HIDDEN-${marker}\n`);
  symlinkSync('/etc/passwd', join(root, 'link'));
  symlinkSync('/etc', join(root, 'dirlink'));
  return { parent, root, markers };
}

const oneOf = (v, x) => (Array.isArray(v) ? v.includes(x) : v === x);

test('the corpus is well formed', () => {
  const names = new Set();
  for (const c of corpus) {
    assert.equal(typeof c.name, 'string');
    assert.ok(!names.has(c.name), `duplicate case name ${c.name}`);
    names.add(c.name);
    assert.ok(CATEGORIES.has(c.category), `${c.name}: category ${c.category}`);
    assert.ok(c.expect && (c.expect.status !== undefined || c.expect.statuses), `${c.name}: no status`);
    assert.ok(c.expect.responses !== undefined, `${c.name}: no response count`);
    assert.ok(rawBytes(c.raw).length > 0);
  }
  assert.ok(corpus.length >= 70, `only ${corpus.length} cases`);
  assert.ok(corpus.filter((c) => c.category !== 'control').length >= 60, 'fewer than 60 malicious cases');
});

test('malicious requests are refused without smuggling or leaking', async (t) => {
  const site = buildSite();
  const srv = await startServer({ staticDir: site.root });
  try {
    const warm = await request(srv, { path: '/health' });
    assert.equal(warm.status, 200);
    for (const c of corpus) {
      await t.test(`[${c.category}] ${c.name}`, async () => {
        const e = c.expect;
        const bytes = rawBytes(c.raw);
        const chunks = c.split ? splitBytes(bytes, c.split) : undefined;
        const r = await rawTlsSettled(srv, bytes, { idleMs: IDLE_MS, chunks });
        const { responses, rest } = parseResponseStream(r.data);
        const got = responses.map((x) => x.status);
        const ctx = `got ${JSON.stringify(got.length > 12 ? got.slice(0, 12).concat('...') : got)} closed=${r.closed}\n${r.data.slice(0, 1500)}`;

        for (const m of site.markers) assert.ok(!r.data.includes(m), `leaked ${JSON.stringify(m)}: ${ctx}`);
        for (const m of e.bodyNot || []) assert.ok(!r.data.includes(m), `answer contains ${JSON.stringify(m)}: ${ctx}`);
        assert.equal(rest, '', `bytes that are not a complete response: ${ctx}`);
        assert.ok(oneOf(e.responses, responses.length), `expected ${JSON.stringify(e.responses)} responses: ${ctx}`);
        if (e.statuses) assert.deepEqual(got, e.statuses, ctx);
        else assert.ok(oneOf(e.status, got[0]), `expected status ${JSON.stringify(e.status)}: ${ctx}`);
        if (e.allStatus !== undefined) assert.ok(got.every((s) => s === e.allStatus), ctx);
        if (e.code !== undefined) assert.equal(JSON.parse(responses[0].body).error?.code, e.code, ctx);
        if (e.close !== undefined) assert.ok(oneOf(e.close, r.closed), `expected close=${JSON.stringify(e.close)}: ${ctx}`);
        for (const [k, v] of Object.entries(e.headers || {}))
          assert.equal(responses[0].headers[k.toLowerCase()], v, `header ${k}: ${ctx}`);
        for (const x of responses) {
          if (x.status < 400) continue;
          assert.match(x.headers['content-type'] || '', /^application\/json/, ctx);
          const j = JSON.parse(x.body);
          assert.equal(typeof j.error?.code, 'string', ctx);
          assert.equal(typeof j.error?.message, 'string', ctx);
        }
        if (e.close === true && responses.length > 0) {
          const last = responses[responses.length - 1];
          if (last.status !== 401) assert.equal(last.headers.connection?.toLowerCase(), 'close', `no Connection: close: ${ctx}`);
        }
        if (c.category === 'smuggling' && bytes.toString('latin1').includes('/smuggled'))
          assert.ok(!got.includes(404), `a response to the smuggled request: ${ctx}`);
      });
    }
    const h = await request(srv, { path: '/health' });
    assert.equal(h.status, 200, 'the server no longer answers /health');
    assert.equal(JSON.parse(h.text).status, 'ok');
  } finally {
    try {
      await srv.stop();
    } finally {
      rmSync(site.parent, { recursive: true, force: true });
    }
  }
});
