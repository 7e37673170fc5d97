#!/usr/bin/env bash
# Side-by-side load comparison: our gateway and every peer under bench/peers/<name>/start.sh, same load generator,
# server pinned to CPU 0 and load generator to CPU 1, runs interleaved A B A B, medians and spread, ratios.
#   bench/compare.sh            full run (several minutes per scenario)
#   bench/compare.sh --quick    short run with small counts (a smoke of the whole pipeline, not a benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0; RUNS=3
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --runs=*) RUNS="${a#--runs=}" ;;
    *) echo "usage: bench/compare.sh [--quick] [--runs=N]" >&2; exit 2 ;;
  esac
done

SERVER_CPU=0; LOADGEN_CPU=1
DATE="$(date -u +%Y-%m-%d)"
OUT="bench/results/$DATE"; RAW="$OUT/runs"
mkdir -p "$RAW"

dotnet build -c Release src/Gateway.Server >/dev/null
dotnet build -c Release tools/Gateway.LoadGen >/dev/null
LOADGEN=(taskset -c "$LOADGEN_CPU" dotnet tools/Gateway.LoadGen/bin/Release/net10.0/Gateway.LoadGen.dll)

# Scenario arguments: name|full|quick
SCENARIOS=(
  "idle|--steps 1000,2000,5000,10000,15000 --workers 1|--steps 200,500,1000 --settle-seconds 2"
  "broadcast|--subscribers 1000 --rate 100 --step-seconds 5|--subscribers 100 --rate 100 --step-seconds 2 --max-steps 4"
  "pairs|--pairs 1000 --rate 5000 --duration 20|--pairs 50 --rate 500 --duration 3"
  "connect|--connections 10000 --concurrency 128|--connections 500"
  "soak|--chats 50 --members 20 --rate 500 --duration 120 --churn 0.02|--chats 5 --members 5 --rate 100 --duration 5 --churn 0.2"
)

# Targets: "gateway" (the tool starts it from its Release output, pinned to SERVER_CPU), then every peer that has
# bench/peers/<name>/start.sh <port> (runs its server in the foreground on 127.0.0.1:<port>). A peer's load
# generator target name is its folder name; its WebSocket path is read from bench/peers/<name>/ws-path if present.
TARGETS=(gateway)
for start in bench/peers/*/start.sh; do
  [ -x "$start" ] && TARGETS+=("$(basename "$(dirname "$start")")")
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_one() { # target scenario args run
  local target="$1" scenario="$2" args="$3" run="$4"
  local common=(--out "$RAW" --label "run$run" --quiet)
  if [ "$target" = gateway ]; then
    # shellcheck disable=SC2086
    "${LOADGEN[@]}" "$scenario" --server auto --server-cpu "$SERVER_CPU" $args "${common[@]}" || true
  else
    local port pid path
    port="$(free_port)"; path="$(cat "bench/peers/$target/ws-path" 2>/dev/null || echo /)"
    taskset -c "$SERVER_CPU" "bench/peers/$target/start.sh" "$port" >"$RAW/$target-$scenario-run$run.server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    # shellcheck disable=SC2086
    "${LOADGEN[@]}" "$scenario" --target "$target" --endpoint "ws://127.0.0.1:$port$path" --server-pid "$pid" \
      --server-cpu-note "$SERVER_CPU (taskset)" $args "${common[@]}" || true
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  fi
}

for entry in "${SCENARIOS[@]}"; do
  IFS='|' read -r scenario full quick <<<"$entry"
  args="$full"; [ "$QUICK" = 1 ] && args="$quick"
  for run in $(seq "$RUNS"); do            # interleaved: A B C, A B C, A B C
    for target in "${TARGETS[@]}"; do
      echo "== $scenario $target run $run" >&2
      run_one "$target" "$scenario" "$args" "$run"
    done
  done
done

mode="full"; [ "$QUICK" = 1 ] && mode="QUICK MODE (small counts, short steps: a check that the pipeline works, not a benchmark)"
preamble="Mode: $mode. Machine: $(nproc) CPUs, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs). Server pinned to CPU $SERVER_CPU, load generator to CPU $LOADGEN_CPU (taskset). $RUNS runs per target, interleaved. Per-run JSON, Markdown and SVG plots are in [$DATE/runs/]($DATE/runs/). Targets: ${TARGETS[*]}."
"${LOADGEN[@]}" summarize --out "$OUT.md" --title "Load comparison $DATE" --preamble "$preamble" "$RAW"
# Plot links for the first run of each scenario/target, so the page shows the shapes.
{ echo; echo "## Plots (run 1)"; for f in "$RAW"/*-run1-*.svg; do [ -e "$f" ] && echo "![$(basename "$f")]($DATE/runs/$(basename "$f"))"; done; } >>"$OUT.md"
echo "$OUT.md"
