#!/usr/bin/env bash
# Installs what rampart needs that is missing: Debian packages from deps/debian.txt and the
# npm packages the end-to-end tests declare in tests/e2e/package.json.
# Usage: scripts/deps.sh [--no-npm]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
missing=()
while read -r pkg; do
    case "$pkg" in ''|'#'*) continue ;; esac
    # nodejs may come from another repository (nodesource); a working node is what counts.
    if [ "$pkg" = nodejs ] && command -v node >/dev/null && command -v npm >/dev/null; then continue; fi
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done < "$top/deps/debian.txt"
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "rampart: missing Debian packages: ${missing[*]}" >&2
        echo "rampart: run as root, or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # nginx enables and starts a default site; the benchmark runs its own instance.
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
    pkill -x nginx 2>/dev/null || true
fi
if [ "${1:-}" != --no-npm ]; then
    cd "$top/tests/e2e"
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error
    fi
fi
