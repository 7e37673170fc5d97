#!/usr/bin/env bash
# Starts the Node.js ws peer on 127.0.0.1:<port> in the foreground (exec: the caller's $! is node's pid, for taskset and
# RSS sampling). Prints READY on stdout once the socket listens. Installs the locked dependencies first when
# node_modules is missing or older than package-lock.json. Env: PEER_JWT_KEY (see server.js).
set -euo pipefail
port=${1:?usage: start.sh <port>}
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$here/node_modules/ws" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  (cd "$here" && npm ci --silent --no-audit --no-fund >&2)
fi
exec node "$here/server.js" "$port"
