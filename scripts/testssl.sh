#!/usr/bin/env bash
# testssl.sh - scan a freshly initialised `rampart serve` with testssl (Debian package
# testssl.sh) and fail on any finding.
#
# Usage: scripts/testssl.sh [BINARY] [REPORT]
#   BINARY  the rampart binary (default: build/rampart next to this script's repo)
#   REPORT  where the testssl output is saved (default: testssl.txt next to BINARY)
#
# The server runs on 127.0.0.1 with a kernel-picked port and a throw-away data directory;
# testssl is pointed at https://rampart.localhost:PORT/health with --ip 127.0.0.1 (so SNI and
# the certificate names match without DNS), trusts the data directory's CA (--add-ca), does no
# DNS lookups (--nodns none) and never phones out (no --phone-out: no CRL/OCSP fetching).
# A full default run takes about 1.5 minutes.
#
# Exit: 0 clean; 1 findings ("NOT ok" or "VULNERABLE" lines, printed); 2 the scan itself did
# not work (server did not start, testssl missing or incomplete, server crashed or did not
# drain cleanly).
#
# Expected, not counted as findings (each is a property of a private loopback CA, not of the
# server; see ALLOW below):
#   "NOT ok -- neither CRL nor OCSP URI provided": the local CA that `rampart init` creates
#   publishes no revocation service; operators who need one bring their own certificates.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$here/../build/rampart}
[[ -x $bin ]] || { echo "testssl.sh: $bin is not an executable" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
report=${2:-$(dirname "$bin")/testssl.txt}
command -v testssl >/dev/null || { echo "testssl.sh: testssl not found (apt-get install testssl.sh)" >&2; exit 2; }
command -v timeout >/dev/null || { echo "testssl.sh: timeout(1) not found" >&2; exit 2; }

# Findings that are expected for a loopback scan of the built-in local CA (fixed strings).
ALLOW=(
  'NOT ok -- neither CRL nor OCSP URI provided'
)

work=$(mktemp -d "${TMPDIR:-/tmp}/rp-testssl.XXXXXX")
chmod 755 "$work" # rampart serve, started as root, reads its data directory as the service user
srv_pid=
ts_pid=
cleanup() {
  local rc=$?
  if [[ -n $ts_pid ]] && kill -0 "$ts_pid" 2>/dev/null; then
    # timeout(1) passes the signal on to testssl's whole process group.
    kill -TERM "$ts_pid" 2>/dev/null || true
    wait "$ts_pid" 2>/dev/null || true
  fi
  if [[ -n $srv_pid ]] && kill -0 "$srv_pid" 2>/dev/null; then
    kill -TERM "$srv_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

data=$work/data
"$bin" init --data "$data" --output json >"$work/init.json" 2>"$work/init.err" || {
  echo "testssl.sh: rampart init failed:" >&2; cat "$work/init.err" >&2; exit 2; }
ca=$data/tls/ca.crt

"$bin" serve --data "$data" --listen 127.0.0.1:0 --http-listen off --workers 2 \
  >"$work/serve.out" 2>"$work/serve.err" &
srv_pid=$!

# Wait for the ready line: {"event":"ready","https":"127.0.0.1:PORT",...}
port=
for _ in $(seq 100); do
  if [[ -s $work/serve.out ]]; then
    port=$(head -n1 "$work/serve.out" | sed -n 's/.*"event":"ready".*"https":"127\.0\.0\.1:\([0-9]\{1,5\}\)".*/\1/p')
    [[ -n $port ]] && break
  fi
  kill -0 "$srv_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $port ]]; then
  echo "testssl.sh: rampart serve did not become ready:" >&2
  cat "$work/serve.out" "$work/serve.err" >&2
  exit 2
fi
domain=$(sed -n 's/.*"domain":"\([^"]*\)".*/\1/p' "$work/serve.out" | head -n1)
target="https://${domain}:${port}/health"
echo "testssl.sh: scanning $target (pid $srv_pid); report -> $report"

# testssl keeps its temporary files under TMPDIR: keep them in our work dir. It runs in the
# background so that a signal to this script reaches the traps (and testssl) at once.
TMPDIR=$work timeout 600 testssl --quiet --color 0 --warnings off --sneaky \
  --ip 127.0.0.1 --nodns none --add-ca "$ca" \
  --connect-timeout 5 --openssl-timeout 10 \
  "$target" >"$report" 2>&1 </dev/null &
ts_pid=$!
ts_rc=0
wait "$ts_pid" || ts_rc=$?
ts_pid=

if ! kill -0 "$srv_pid" 2>/dev/null; then
  echo "testssl.sh: the server died during the scan:" >&2
  tail -n 50 "$work/serve.err" >&2
  exit 2
fi
# The scan must have completed and actually reached the server.
if ! grep -q '^ Done ' "$report" || ! grep -qE '^ TLS 1\.3 +offered' "$report"; then
  echo "testssl.sh: testssl did not complete (exit $ts_rc); output in $report:" >&2
  tail -n 30 "$report" >&2
  exit 2
fi

# Stop the server now: it must drain and exit 0.
kill -TERM "$srv_pid"
srv_rc=0
wait "$srv_pid" || srv_rc=$?
srv_pid=
if [[ $srv_rc -ne 0 ]]; then
  echo "testssl.sh: rampart serve exited $srv_rc after SIGTERM:" >&2
  tail -n 50 "$work/serve.err" >&2
  exit 2
fi

findings=$(grep -nE 'NOT ok|VULNERABLE' "$report" || true)
bad=
while IFS= read -r line; do
  [[ -z $line ]] && continue
  allowed=
  for a in "${ALLOW[@]}"; do
    if [[ $line == *"$a"* ]]; then allowed=1; break; fi
  done
  if [[ -n $allowed ]]; then
    echo "testssl.sh: expected (local CA): ${line}"
  else
    bad+="${line}"$'\n'
  fi
done <<<"$findings"

if [[ -n $bad ]]; then
  echo "testssl.sh: FINDINGS (full output in $report):" >&2
  printf '%s' "$bad" >&2
  exit 1
fi
echo "testssl.sh: no findings (full output in $report)"
