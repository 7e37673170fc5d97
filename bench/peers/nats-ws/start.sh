#!/usr/bin/env bash
# Starts the nats-server peer with its WebSocket listener on 127.0.0.1:<port> in the foreground (exec: the caller's $!
# is nats-server's pid, for taskset and RSS sampling). Prints READY on stdout when the server logs "Server is ready"
# (the WebSocket listener is up before that line). Server logs go to stderr as usual.
#
# Env: NATS_SERVER (default: nats-server on PATH, else /usr/sbin/nats-server);
#      PEER_NATS_TOKEN: when set, clients must send it as auth_token in CONNECT (NATS's simple token auth; NATS's own
#      JWT auth needs an operator/account setup with NKEYs, which the comparison does not model).
set -euo pipefail
port=${1:?usage: start.sh <port>}
nats=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
if [ ! -x "$nats" ]; then
  echo "nats-server not found (apt-get install nats-server)" >&2
  exit 1
fi

case "${PEER_NATS_TOKEN:-}" in
  *[\"\\\$]*) echo 'PEER_NATS_TOKEN must not contain ", \ or $ (it is written into the config file)' >&2; exit 2 ;;
esac

conf_dir=$(mktemp -d "${TMPDIR:-/tmp}/nats-ws-peer.XXXXXX")
conf="$conf_dir/nats.conf"
{
  # The core (TCP) listener cannot be turned off; it takes a free port on loopback and is not used.
  echo 'listen: "127.0.0.1:-1"'
  echo 'websocket {'
  echo '  host: "127.0.0.1"'
  echo "  port: $port"
  echo '  no_tls: true'
  echo '}'
  if [ -n "${PEER_NATS_TOKEN:-}" ]; then
    echo "authorization { token: \"$PEER_NATS_TOKEN\" }"
  fi
} > "$conf"

# The process substitution is forked before exec and outlives it as a child of nats-server: it copies the log to
# stderr and prints READY once. The config file is removed as soon as the server has read it.
exec "$nats" -c "$conf" 2> >(
  ready=0
  while IFS= read -r line; do
    printf '%s\n' "$line" >&2
    if [ $ready = 0 ] && [[ $line == *"Server is ready"* ]]; then
      ready=1
      rm -rf "$conf_dir"
      echo READY
    fi
  done
)
