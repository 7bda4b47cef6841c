// summarize.mjs - turns bench/static-vs-nginx's raw runs into the summary table and
// bench/out/results.json.  Usage: node summarize.mjs META.json RUNS.jsonl OUT.json
import { readFileSync, writeFileSync } from 'node:fs';

const [metaPath, runsPath, outPath] = process.argv.slice(2);
const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
const runs = readFileSync(runsPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const round = (x, d = 2) => (x == null ? null : Math.round(x * 10 ** d) / 10 ** d);

// Per benchmark: the throughput field, and the number of completed requests.
const BENCH = {
  keepalive: { title: 'TLS keep-alive, 1 KiB (wrk)', rate: (r) => r.rps, n: (r) => r.requests, unit: 'req/s', goal: 1.0 },
  handshake: { title: 'full TLS handshake + 1 KiB (tlsload)', rate: (r) => r.rate, n: (r) => r.connections, unit: 'conn/s', goal: 0.9 },
  resumed: { title: 'reconnect per request, resumed (wrk Connection: close)', rate: (r) => r.rps, n: (r) => r.requests, unit: 'req/s', goal: null },
};

const results = { ...meta, benchmarks: {}, goals: [] };
for (const [name, b] of Object.entries(BENCH)) {
  const mine = runs.filter((r) => r.bench === name);
  if (mine.length === 0) continue;
  const per = {};
  for (const server of ['rampart', 'nginx']) {
    const rs = mine.filter((r) => r.server === server);
    const errors = rs.reduce((s, r) => s + (r.result.non2xx || 0) + (r.result.socket_errors || 0) +
      (r.result.errors || 0) + (r.result.bad_status || 0), 0);
    per[server] = {
      rate: round(median(rs.map((r) => b.rate(r.result))), 1),
      p50_ms: round(median(rs.map((r) => r.result.p50_ms)), 3),
      p99_ms: round(median(rs.map((r) => r.result.p99_ms)), 3),
      requests_per_cpu_s: round(median(rs.map((r) => (r.server_cpu_s > 0 ? b.n(r.result) / r.server_cpu_s : null))), 0),
      server_cpu_s: round(median(rs.map((r) => r.server_cpu_s)), 2),
      tcp_conns_per_request: round(median(rs.map((r) => (b.n(r.result) > 0 ? r.tcp_passive_opens / b.n(r.result) : null))), 3),
      errors,
      resumed: name === 'handshake' ? rs.reduce((s, r) => s + (r.result.resumed || 0), 0) : undefined,
      protocol: rs[0]?.result.protocol,
      cipher: rs[0]?.result.cipher,
      runs: rs.map((r) => round(b.rate(r.result), 1)),
    };
  }
  const paired = [];
  for (const r of mine.filter((x) => x.server === 'rampart')) {
    const n = mine.find((x) => x.server === 'nginx' && x.round === r.round);
    if (n && b.rate(n.result) > 0) paired.push(b.rate(r.result) / b.rate(n.result));
  }
  const ratio = per.nginx.rate > 0 ? per.rampart.rate / per.nginx.rate : null;
  const p99ratio = per.nginx.p99_ms > 0 ? per.rampart.p99_ms / per.nginx.p99_ms : null;
  const cpuRatio = per.nginx.requests_per_cpu_s > 0 ? per.rampart.requests_per_cpu_s / per.nginx.requests_per_cpu_s : null;
  results.benchmarks[name] = {
    title: b.title, unit: b.unit, rampart: per.rampart, nginx: per.nginx,
    ratio: round(ratio, 3), ratio_per_round: paired.map((x) => round(x, 3)),
    p99_ratio: round(p99ratio, 3), cpu_efficiency_ratio: round(cpuRatio, 3),
  };
  if (b.goal != null) {
    results.goals.push({ goal: `${name} throughput ratio >= ${b.goal}`, value: round(ratio, 3), met: ratio != null && ratio >= b.goal });
    if (name === 'keepalive')
      results.goals.push({ goal: 'keepalive p99 no worse than nginx (ratio <= 1.0)', value: round(p99ratio, 3), met: p99ratio != null && p99ratio <= 1.0 });
  }
}
const mr = meta.memory?.rampart;
const mn = meta.memory?.nginx;
if (mr) {
  results.goals.push({ goal: 'rampart idle RSS <= 20 MiB', value: round(mr.idle_rss_total_kb / 1024, 1), met: mr.idle_rss_total_kb <= 20 * 1024 });
  results.goals.push({ goal: 'rampart RSS growth <= 16 KiB per idle TLS connection', value: mr.bytes_per_conn, met: mr.bytes_per_conn != null && mr.bytes_per_conn <= 16384 && mr.held === mr.idle_conns_requested });
}
writeFileSync(outPath, JSON.stringify(results, null, 2) + '\n');

// ---------------------------------------------------------------- table
const rows = [['benchmark', 'metric', 'rampart', 'nginx', 'rampart/nginx']];
const fmt = (x, d = 0) => (x == null ? '-' : Number(x).toFixed(d));
for (const [name, r] of Object.entries(results.benchmarks)) {
  rows.push([r.title, `${r.unit} (median)`, fmt(r.rampart.rate), fmt(r.nginx.rate), fmt(r.ratio, 2)]);
  rows.push(['', `  per round`, r.rampart.runs.map((x) => fmt(x)).join(' '), r.nginx.runs.map((x) => fmt(x)).join(' '), r.ratio_per_round.map((x) => fmt(x, 2)).join(' ')]);
  rows.push(['', 'p50 latency ms', fmt(r.rampart.p50_ms, 2), fmt(r.nginx.p50_ms, 2), fmt(r.rampart.p50_ms / r.nginx.p50_ms, 2)]);
  rows.push(['', 'p99 latency ms', fmt(r.rampart.p99_ms, 2), fmt(r.nginx.p99_ms, 2), fmt(r.p99_ratio, 2)]);
  rows.push(['', 'requests per server CPU-s', fmt(r.rampart.requests_per_cpu_s), fmt(r.nginx.requests_per_cpu_s), fmt(r.cpu_efficiency_ratio, 2)]);
  rows.push(['', 'TCP connections per request', fmt(r.rampart.tcp_conns_per_request, 3), fmt(r.nginx.tcp_conns_per_request, 3), '']);
  rows.push(['', 'errors', fmt(r.rampart.errors), fmt(r.nginx.errors), '']);
  if (name === 'handshake') rows.push(['', 'resumed handshakes', fmt(r.rampart.resumed), fmt(r.nginx.resumed), '']);
}
const rs = meta.resumption;
if (rs) {
  const pct = (x) => (x.connections > 0 ? (100 * x.resumed) / x.connections : null);
  rows.push(['TLS 1.3 reconnect as wrk does it', '% of 20 resumed', fmt(pct(rs.rampart)), fmt(pct(rs.nginx)), '']);
}
if (mr && mn) {
  rows.push(['memory (after start + 1 request)', 'RSS MiB, whole server', fmt(mr.idle_rss_total_kb / 1024, 1), fmt(mn.idle_rss_total_kb / 1024, 1), fmt(mr.idle_rss_total_kb / mn.idle_rss_total_kb, 2)]);
  rows.push(['', 'RSS MiB, workers only', fmt(mr.idle_rss_kb / 1024, 1), fmt(mn.idle_rss_kb / 1024, 1), '']);
  rows.push([`${mr.idle_conns_requested} idle TLS connections`, 'held / established', `${mr.held}/${mr.established_server_side}`, `${mn.held}/${mn.established_server_side}`, '']);
  rows.push(['', 'RSS MiB with them (workers)', fmt(mr.rss_with_idle_kb / 1024, 1), fmt(mn.rss_with_idle_kb / 1024, 1), '']);
  rows.push(['', 'RSS growth bytes/conn', fmt(mr.bytes_per_conn), fmt(mn.bytes_per_conn), fmt(mr.bytes_per_conn / mn.bytes_per_conn, 2)]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
const line = (r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
console.log('');
console.log(`rampart ${meta.versions.rampart} vs ${meta.versions.nginx}, ${meta.versions.openssl}, wrk ${meta.versions.wrk}; ` +
  `${meta.params.workers} workers each, ${meta.host.cpus} CPUs, ${meta.params.rounds} rounds x ${meta.params.duration_s}s, ${meta.params.conns} connections`);
console.log(line(rows[0]));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows.slice(1)) console.log(line(r));
console.log('');
for (const g of results.goals) console.log(`${g.met ? 'MET    ' : 'NOT MET'}  ${g.goal}: ${g.value}`);
for (const [name, r] of Object.entries(results.benchmarks))
  for (const server of ['rampart', 'nginx'])
    if (r[server].errors > 0) console.log(`WARNING  ${name}: ${server} had ${r[server].errors} errors or non-2xx answers; its numbers are not comparable`);
console.log(`\nload average at end: ${meta.host.load_end}; results: ${outPath}`);
