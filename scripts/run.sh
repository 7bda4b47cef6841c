#!/usr/bin/env bash
# `make run`: initialise a data directory once, make the host names resolve, and serve the
# example site. Usage: scripts/run.sh BINARY DATA_DIR
set -euo pipefail
bin=$1
data=$2
top=$(cd "$(dirname "$0")/.." && pwd)
domain=${RAMPART_DOMAIN:-rampart.localhost}

if [ ! -f "$data/install.json" ]; then
    echo "run: initialising $data (the administrator token below is shown only once)"
    "$bin" init --data "$data" --domain "$domain"
else
    echo "run: using the existing install in $data"
fi
domain=$(sed -n 's/.*"domain" *: *"\([^"]*\)".*/\1/p' "$data/install.json")

# Service host names must resolve to this machine. glibc does not resolve *.localhost itself.
line="127.0.0.1 $domain login.$domain"
if ! grep -qE "^127\.0\.0\.1[[:space:]].*[[:space:]]$domain([[:space:]]|\$)" /etc/hosts 2>/dev/null; then
    if [ -w /etc/hosts ]; then
        echo "$line    # added by rampart make run" >> /etc/hosts
        echo "run: added '$line' to /etc/hosts"
    else
        echo "run: add this line to /etc/hosts (needs root): $line"
    fi
fi

echo "run: serving $top/examples/site at https://$domain:8443/ (CA: $data/tls/ca.crt)"
echo "run: try: curl --cacert $data/tls/ca.crt https://$domain:8443/"
exec "$bin" serve --data "$data" --static "$top/examples/site"
