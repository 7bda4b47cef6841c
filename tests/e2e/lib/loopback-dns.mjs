// loopback-dns.mjs - preload (`node --import ./lib/loopback-dns.mjs`) for child processes that
// run the Azure SDKs against a test server: every host name resolves to 127.0.0.1 (the
// platform's names exist only on this machine and glibc does not resolve *.localhost), and
// every outgoing HTTP(S) request is recorded in globalThis.__rpRequests so a script can prove
// what went over the wire (e.g. that a second getToken was served from the SDK's cache).
// The CA comes from NODE_EXTRA_CA_CERTS, which node reads only at start-up.
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';

function lookup(hostname, options, cb) {
  if (typeof options === 'function') { cb = options; options = {}; }
  if (typeof options === 'number') options = { family: options };
  const all = options && options.all;
  process.nextTick(() => {
    if (all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
    else cb(null, '127.0.0.1', 4);
  });
}

dns.lookup = lookup;
dns.promises.lookup = async (hostname, options) =>
  (options && options.all ? [{ address: '127.0.0.1', family: 4 }] : { address: '127.0.0.1', family: 4 });

globalThis.__rpRequests = [];
for (const [mod, scheme] of [[http, 'http'], [https, 'https']]) {
  const orig = mod.request;
  mod.request = function request(...args) {
    let url = null;
    let opts = {};
    for (const a of args) {
      if (typeof a === 'string' || a instanceof URL) url = new URL(String(a));
      else if (a && typeof a === 'object') opts = a;
    }
    const host = opts.hostname || opts.host || (url && url.hostname) || '';
    const port = opts.port || (url && url.port) || '';
    const path = opts.path || (url && url.pathname + url.search) || '/';
    globalThis.__rpRequests.push({ scheme, method: opts.method || 'GET', host: String(host), port: String(port), path: String(path) });
    return orig.apply(this, args);
  };
}
