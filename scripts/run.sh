#!/usr/bin/env bash
# `make run`: initialise a data directory once, make the host names resolve, and serve the
# example site. Usage: scripts/run.sh BINARY DATA_DIR
set -euo pipefail
bin=$1
data=$2
top=$(cd "$(dirname "$0")/.." && pwd)
domain=${RAMPART_DOMAIN:-rampart.localhost}

site="$top/examples/site"

# Started as root, serve drops to its service user (uid 1879048191 when there is no "rampart"
# account), which must reach the data directory and the site. A checkout under a directory
# closed to other users (/root) cannot be: then both live under /var/lib/rampart-dev instead.
if [ "$(id -u)" = 0 ]; then
    svc=1879048191
    if id -u rampart >/dev/null 2>&1; then svc=$(id -u rampart); fi
    parent=$(dirname "$data")
    mkdir -p "$parent"
    if ! setpriv --reuid="$svc" --regid="$svc" --clear-groups test -x "$parent" -a -r "$site"; then
        dev=/var/lib/rampart-dev
        echo "run: $parent is closed to the service user (uid $svc): using $dev instead"
        mkdir -p "$dev"
        chmod 0755 "$dev"
        rm -rf "$dev/site"
        cp -r "$site" "$dev/site"
        chmod -R a+rX "$dev/site"
        data="$dev/data"
        site="$dev/site"
    fi
fi

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

echo "run: serving $site at https://$domain:8443/ (CA: $data/tls/ca.crt)"
echo "run: try: curl --cacert $data/tls/ca.crt https://$domain:8443/"
exec "$bin" serve --data "$data" --static "$site"
