// handler.js - an Azure Functions custom handler in plain Node (no npm packages): it listens on
// FUNCTIONS_CUSTOMHANDLER_PORT and answers the host's invocations, POST /{function} with the
// {Data, Metadata} envelope, with {Outputs, Logs, ReturnValue}. Requests the host forwards as they
// came (host.json enableForwardingHttpRequest) arrive on their own path, /api/...
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');

const port = Number(process.env.FUNCTIONS_CUSTOMHANDLER_PORT);

// The timer's record: how often it ran, how many runs were in flight at once at most, and what
// the host told it last (the TimerInfo binding).
const timer = { runs: 0, active: 0, maxActive: 0, pastDue: 0, last: null };
const naps = { active: 0, maxActive: 0, instance: crypto.randomUUID() }; // instance: this process

const functions = {
  // A timer function: takes 1.5 s, so a schedule faster than that shows the host never
  // overlapping a run with the previous one.
  tick: async (_req, inv) => {
    timer.runs += 1;
    timer.active += 1;
    timer.maxActive = Math.max(timer.maxActive, timer.active);
    timer.last = inv.Data.myTimer;
    if (inv.Data.myTimer.IsPastDue) timer.pastDue += 1; // an occurrence missed while down
    await new Promise((resolve) => setTimeout(resolve, 1500));
    timer.active -= 1;
    return null;
  },
  ticks: () => ({ statusCode: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(timer) }),
  hello: (req) => ({ statusCode: 200, headers: { 'Content-Type': 'text/plain' },
    body: `Hello, ${req.Params.name || req.Query.name || 'world'}` }),
  echo: (req, inv) => ({ statusCode: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(inv) }),
  ping: () => ({ statusCode: 200, body: 'pong' }),
  items: (req) => ({ statusCode: 200, headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ id: Number(req.Params.id) }) }),
  secret: () => ({ statusCode: 200, body: 'only with the master key' }),
  // Sleeps ?ms= (at most 10 s) and says how many calls were inside the handler at once at most:
  // what the host's throttle (maxConcurrentRequests) allows through.
  nap: async (req) => {
    const ms = Math.min(Math.max(Number(req.Query.ms) || 0, 0), 10000);
    naps.active += 1;
    naps.maxActive = Math.max(naps.maxActive, naps.active);
    await new Promise((resolve) => setTimeout(resolve, ms));
    naps.active -= 1;
    return { statusCode: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(naps) };
  },
  // A secret from Key Vault through an app setting reference (API_SECRET =
  // @Microsoft.KeyVault(VaultName=...;SecretName=...)): the platform resolves it with the app's
  // managed identity and hands it over in the environment. Shown only as a fingerprint.
  vaultref: () => {
    const v = process.env.API_SECRET;
    const resolved = v !== undefined && !v.startsWith('@Microsoft.KeyVault(');
    return { statusCode: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({
      resolved, sha256: resolved ? crypto.createHash('sha256').update(v).digest('hex').slice(0, 16) : null }) };
  },
  // Ends the handler process mid-call (admin level: the master key only): the host replaces the
  // process, and only the calls that were inside this one fail.
  crash: () => process.exit(3),
  slow: () => new Promise((resolve) => setTimeout(() => resolve({ statusCode: 200, body: 'late' }), 30000)),
};

http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const body = Buffer.concat(chunks).toString();
    if (req.url.startsWith('/api/')) { // forwarded as it came
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ forwarded: true, method: req.method, url: req.url, headers: req.headers, body }));
      return;
    }
    const name = req.url.slice(1);
    const fn = functions[name];
    if (req.method !== 'POST' || !fn) {
      res.writeHead(404);
      res.end();
      return;
    }
    const inv = JSON.parse(body);
    const out = await fn(inv.Data.req, inv);
    const binding = name === 'ping' || name === 'tick' ? null : 'res';
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      Outputs: binding ? { [binding]: out } : {},
      Logs: [`${name} ran`],
      ReturnValue: binding ? null : out,
    }));
  });
}).listen(port, '127.0.0.1', () => console.log(`custom handler listening on ${port}`));
