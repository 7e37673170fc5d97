#!/usr/bin/env bash
# Side-by-side load comparison: our gateway and every peer under bench/peers/<name>/start.sh, same load generator,
# server pinned to CPU 0 and load generator to CPU 1, runs interleaved A B A B, medians and spread, ratios.
#   bench/compare.sh                       full run (idle, broadcast S=100/1000/10000, pairs, connect, gateway soak)
#   bench/compare.sh --quick               short run with small counts (a smoke of the whole pipeline, not a benchmark)
#   bench/compare.sh --runs=N              interleaved rounds per scenario (default 3)
#   bench/compare.sh --only=idle,pairs     only these scenario entries (names as in SCENARIOS below)
#   bench/compare.sh --targets=gateway,nats-ws
#   bench/compare.sh --set=NAME='ARGS'     replace one entry's (full-mode) arguments, e.g. --set=idle='--steps 1000,5000'
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0; RUNS=3; ONLY=""; ONLY_TARGETS=""
declare -A OVERRIDE=()
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --runs=*) RUNS="${a#--runs=}" ;;
    --only=*) ONLY=",${a#--only=}," ;;
    --targets=*) ONLY_TARGETS=",${a#--targets=}," ;;
    --set=*=*) kv="${a#--set=}"; OVERRIDE["${kv%%=*}"]="${kv#*=}" ;;
    *) echo "usage: bench/compare.sh [--quick] [--runs=N] [--only=a,b] [--targets=a,b] [--set=NAME='ARGS']" >&2; exit 2 ;;
  esac
done

SERVER_CPU=0; LOADGEN_CPU=1
DATE="$(date -u +%Y-%m-%d)"
OUT="bench/results/$DATE"
[ -e "$OUT.md" ] && OUT="bench/results/$DATE-$(date -u +%H%M)"   # never overwrite an earlier result of the same day
RAW="$OUT/runs"; NAME="$(basename "$OUT")"
mkdir -p "$RAW"

dotnet build -c Release src/Gateway.Server >/dev/null
dotnet build -c Release tools/Gateway.LoadGen >/dev/null
LOADGEN=(taskset -c "$LOADGEN_CPU" dotnet tools/Gateway.LoadGen/bin/Release/net10.0/Gateway.LoadGen.dll)

# Scenario entries: name|scenario|full args|quick args|targets ("all" or "gateway"). The broadcast entries step the
# publish rate up from a start that keeps the first step near 2k deliveries/s (rate × S; 10k at S = 10,000), doubling per step, until
# p99 > 50 ms or deliveries stop growing. The soak needs a server seq and cursor resume, which no peer has.
SCENARIOS=(
  "idle|idle|--steps 1000,2000,5000,10000,15000 --workers 1|--steps 200,500,1000 --settle-seconds 2|all"
  "broadcast-100|broadcast|--subscribers 100 --rate 20 --step-seconds 5|--subscribers 100 --rate 100 --step-seconds 2 --max-steps 4|all"
  "broadcast-1000|broadcast|--subscribers 1000 --rate 2 --step-seconds 5|--subscribers 1000 --rate 10 --step-seconds 2 --max-steps 3|all"
  "broadcast-10000|broadcast|--subscribers 10000 --rate 1 --step-seconds 5|--subscribers 2000 --rate 5 --step-seconds 2 --max-steps 2|all"
  "pairs|pairs|--pairs 1000 --rate 5000 --duration 20|--pairs 50 --rate 500 --duration 3|all"
  "connect|connect|--connections 10000 --concurrency 128|--connections 500|all"
  "soak|soak|--chats 50 --members 20 --rate 500 --duration 120 --churn 0.02|--chats 5 --members 5 --rate 100 --duration 5 --churn 0.2|gateway"
)

# Targets: "gateway" (the tool starts it from its Release output, pinned to SERVER_CPU), then every peer that has
# bench/peers/<name>/start.sh <port> (runs its server in the foreground on 127.0.0.1:<port>, prints READY). A peer's
# load generator target name is its folder name; its WebSocket path is read from bench/peers/<name>/ws-path if present.
TARGETS=()
for t in gateway $(for s in bench/peers/*/start.sh; do [ -x "$s" ] && basename "$(dirname "$s")"; done); do
  [ -z "$ONLY_TARGETS" ] || [[ "$ONLY_TARGETS" == *",$t,"* ]] && TARGETS+=("$t")
done

# Every target authenticates, as the gateway must: SignalR and Node ws check an HS256 JWT (the key the tool mints
# with), nats-server compares a shared token (its JWT mode needs an operator/NKEY setup nobody builds for this).
PEER_JWT_KEY="$(head -c 32 /dev/urandom | base64 -w0)"; export PEER_JWT_KEY
PEER_NATS_TOKEN="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"; export PEER_NATS_TOKEN

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# What each peer's memory manager runs as, for the report (the gateway's is derived by the tool).
gc_note() {
  case "$1" in
    signalr) echo "workstation (.NET; the Web SDK's Server GC default falls back on one CPU)" ;;
    node-ws) echo "V8 (Node $(node --version 2>/dev/null || echo '?'), default heap settings)" ;;
    nats-ws) echo "Go GC (GOGC default, GOMAXPROCS = 1 under taskset)" ;;
    *) echo "unknown" ;;
  esac
}

# Starts a peer pinned to SERVER_CPU; sets PEER_PID. Waits for its READY line (a first start may build: up to 5 min).
start_peer() { # target port log
  local target="$1" port="$2" log="$3"
  taskset -c "$SERVER_CPU" "bench/peers/$target/start.sh" "$port" >"$log" 2>&1 &
  PEER_PID=$!
  for _ in $(seq 3000); do
    grep -qx READY "$log" 2>/dev/null && return 0
    kill -0 "$PEER_PID" 2>/dev/null || { echo "peer $target exited before READY; see $log" >&2; return 1; }
    sleep 0.1
  done
  echo "peer $target not READY after 300 s; see $log" >&2; return 1
}

stop_peer() { kill "$PEER_PID" 2>/dev/null || true; wait "$PEER_PID" 2>/dev/null || true; }

auth_args() {
  case "$1" in
    nats-ws) echo "--token $PEER_NATS_TOKEN" ;;
    gateway) ;;
    *) echo "--signing-key $PEER_JWT_KEY" ;;
  esac
}

run_one() { # target scenario args label
  local target="$1" scenario="$2" args="$3" label="$4"
  local common=(--out "$RAW" --label "$label" --quiet)
  if [ "$target" = gateway ]; then
    # shellcheck disable=SC2086
    "${LOADGEN[@]}" "$scenario" --server auto --server-cpu "$SERVER_CPU" $args "${common[@]}" >/dev/null || true
  else
    local port path log="$RAW/$target-$label.server.log"
    port="$(free_port)"; path="$(cat "bench/peers/$target/ws-path" 2>/dev/null || echo /)"
    start_peer "$target" "$port" "$log" || return 0
    # shellcheck disable=SC2046,SC2086
    "${LOADGEN[@]}" "$scenario" --target "$target" --endpoint "ws://127.0.0.1:$port$path" --server-pid "$PEER_PID" \
      --server-cpu-note "$SERVER_CPU (taskset)" --server-gc-note "$(gc_note "$target")" $(auth_args "$target") \
      $args "${common[@]}" >/dev/null || true
    stop_peer
  fi
}

# Build/install every peer once (SignalR Release build, npm ci) so no measured run pays for it.
for target in "${TARGETS[@]}"; do
  [ "$target" = gateway ] && continue
  echo "== preparing $target" >&2
  start_peer "$target" "$(free_port)" "$RAW/$target-prepare.server.log" && stop_peer
done

for entry in "${SCENARIOS[@]}"; do
  IFS='|' read -r name scenario full quick which <<<"$entry"
  [ -z "$ONLY" ] || [[ "$ONLY" == *",$name,"* ]] || continue
  args="${OVERRIDE[$name]:-$full}"; [ "$QUICK" = 1 ] && args="$quick"
  for run in $(seq "$RUNS"); do            # interleaved: A B C D, A B C D, A B C D
    for target in "${TARGETS[@]}"; do
      [ "$which" = all ] || [ "$which" = "$target" ] || continue
      echo "== $(date -u +%T) $name $target run $run" >&2
      label="$name-run$run"; [ "$name" = "$scenario" ] && label="run$run"
      run_one "$target" "$scenario" "$args" "$label"
    done
  done
done

mode="full"; [ "$QUICK" = 1 ] && mode="QUICK MODE (small counts, short steps: a check that the pipeline works, not a benchmark)"
preamble="Mode: $mode. Machine: $(nproc --all) CPUs, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs). Server pinned to CPU $SERVER_CPU, load generator to CPU $LOADGEN_CPU (taskset). $RUNS runs per target, interleaved. Per-run JSON, Markdown and SVG plots are in [$NAME/runs/]($NAME/runs/). Targets: ${TARGETS[*]}."
# Peers log their content root and similar paths: keep this machine's checkout path out of committed results.
find "$RAW" -name '*.log' -exec sed -i "s|$PWD/||g" {} +
"${LOADGEN[@]}" summarize --out "$OUT.md" --title "Load comparison $NAME" --preamble "$preamble" "$RAW" >/dev/null
# Plot links for the first run of each scenario/target, so the page shows the shapes.
{ echo; echo "## Plots (run 1)"; for f in "$RAW"/*run1-*.svg; do [ -e "$f" ] && echo "![$(basename "$f")]($NAME/runs/$(basename "$f"))"; done; } >>"$OUT.md"
echo "$OUT.md"
