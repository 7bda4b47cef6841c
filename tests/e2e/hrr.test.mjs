// hrr.test.mjs - a TLS 1.3 HelloRetryRequest (client offers an unsupported group first) still
// completes, and under ASan the stop check proves the second ClientHello leaks nothing.
import test from 'node:test';
import assert from 'node:assert/strict';
import { startServer, openssl, join } from './lib/harness.mjs';

test('TLS 1.3 HelloRetryRequest handshakes complete without leaking', async () => {
  const srv = await startServer();
  try {
    for (let i = 0; i < 4; i++) {
      const r = openssl(['s_client', '-connect', `127.0.0.1:${srv.port}`, '-tls1_3', '-groups', 'ffdhe2048:X25519',
        '-servername', 'rampart.localhost', '-CAfile', join(srv.dataDir, 'tls', 'ca.crt')], 'Q\n');
      assert.match(r.stdout, /New, TLSv1\.3, Cipher is TLS_/);
      assert.match(r.stdout, /Verify return code: 0 \(ok\)/);
    }
  } finally {
    await srv.stop(); // fails on any LeakSanitizer report in the server's stderr
  }
});
