// backpressure.test.mjs - a client that pipelines requests for a large file and never reads
// must cost the server nothing while it waits: no busy loop, other clients answered at once,
// and the connection closed by the write timeout.
import test from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { startServer, request, tmpDir, writeFileSync, sleep, SCALE, DOMAIN } from './lib/harness.mjs';

// Server-side sockets of this port still open (the paused client cannot see the close itself).
function serverSockets(port) {
  const out = execFileSync('ss', ['-Htn', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim()).length;
}

function cpuTicks(pid) {
  // utime + stime (fields 14 and 15 of /proc/PID/stat, after the parenthesised name)
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

test('a pipelining client that does not read leaves the server idle and is timed out', async () => {
  const site = tmpDir('rp-bp-');
  writeFileSync(`${site}/big.bin`, Buffer.alloc(8 << 20, 7));
  const srv = await startServer({
    staticDir: site,
    env: { RAMPART_LIMITS_WRITE_TIMEOUT_MS: String(3000 * SCALE), RAMPART_WORKERS: '1' },
  });
  const sock = tls.connect({ host: '127.0.0.1', port: srv.port, ca: srv.ca, servername: DOMAIN });
  try {
    await new Promise((resolve, reject) => { sock.once('secureConnect', resolve); sock.once('error', reject); });
    sock.on('error', () => {});
    sock.pause(); // never read: the server's writes block once the socket buffers are full
    const one = `GET /big.bin HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`;
    sock.write(one.repeat(20));
    await sleep(500 * SCALE); // let the server fill the socket and block
    const before = cpuTicks(srv.proc.pid);
    await sleep(1000);
    const used = cpuTicks(srv.proc.pid) - before; // clock ticks (100/s) in one second
    assert.ok(used <= 20 * SCALE, `server burned ${used} ticks/s while blocked on a slow reader`);
    const t0 = Date.now();
    const h = await request(srv, { path: '/health' });
    assert.equal(h.status, 200);
    assert.ok(Date.now() - t0 < 1000 * SCALE, 'another client waited');
    assert.equal(serverSockets(srv.port), 1, 'the stalled connection is still open before its timeout');
    const deadline = Date.now() + 3000 * SCALE + 4000 * SCALE;
    while (serverSockets(srv.port) > 0 && Date.now() < deadline) await sleep(100);
    assert.equal(serverSockets(srv.port), 0, 'the write timeout closed the stalled connection');
  } finally {
    sock.destroy();
    await srv.stop();
  }
});
