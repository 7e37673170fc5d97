#!/usr/bin/env bash
# Bounded kill -9 soak of every topology with the load generator's `chaos` scenario: distributed (nats-server, two
# writers, two gateways) with kills round-robin over nats / writer / gateway, then briefly the 3-node cluster
# (Replicas=3; kills a NATS node, then a writer, then a gateway), distributed again with both writers on one shared
# Scylla keyspace (served by the CQL test peer, a test double that is never killed), and embedded (one server).
# Builds nothing: run after
#   dotnet build -c Release Gateway.sln
# Exits non-zero when any topology's verdict fails (lost, duplicated, reordered, unacknowledged, seq conflicts, log
# duplicates, … all must be 0) or the run errs. Reports and child-process logs go under OUT (default
# $TMPDIR/chaos-<time>); each topology's one-line verdict is printed.
#   bench/chaos.sh                      distributed 70 s, cluster 45 s, scylla 40 s, embedded 30 s of load (~5 min when all pass; a wedged run waits out its settle, catch-up and history limits: up to ~15 min)
#   bench/chaos.sh --only=distributed   one topology (comma-separated list)
#   bench/chaos.sh --quick              shorter: 30 / 30 / 30 / 20 s
#   OUT=DIR bench/chaos.sh              where the reports go
set -uo pipefail
cd "$(dirname "$0")/.."

ONLY=""; QUICK=0
for a in "$@"; do
  case "$a" in
    --only=*) ONLY=",${a#--only=}," ;;
    --quick) QUICK=1 ;;
    *) echo "usage: bench/chaos.sh [--only=distributed,cluster,scylla,embedded] [--quick]" >&2; exit 2 ;;
  esac
done

LG="tools/Gateway.LoadGen/bin/Release/net10.0/Gateway.LoadGen.dll"
SERVER="src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll"
PEER="tests/Gateway.Cql.TestPeer/bin/Release/net10.0/Gateway.Cql.TestPeer.dll"
for f in "$LG" "$SERVER" "$PEER"; do
  [ -f "$f" ] || { echo "chaos.sh: $f missing: dotnet build -c Release Gateway.sln" >&2; exit 2; }
done
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || { echo "chaos.sh: nats-server not installed" >&2; exit 2; }

OUT="${OUT:-${TMPDIR:-/tmp}/chaos-$(date -u +%Y%m%d-%H%M%S)}"   # logs can be MBs: not in the repo by default
mkdir -p "$OUT"
if [ "$QUICK" = 1 ]; then D_DIST=30; D_CLUSTER=30; D_SCYLLA=30; D_EMB=20; else D_DIST=70; D_CLUSTER=45; D_SCYLLA=40; D_EMB=30; fi

# name | arguments. Every run has hard limits of its own (--max-seconds); `timeout` is the last resort.
RUNS=(
  "distributed|--topology distributed --duration $D_DIST --kill-interval 6 --kill-plan roundrobin"
  "cluster|--topology cluster --duration $D_CLUSTER --kill-interval 8 --kill-plan roundrobin"
  "scylla|--topology distributed --cql-peer $PEER --label scylla --duration $D_SCYLLA --kill-interval 6 --kill-plan roundrobin"
  "embedded|--topology embedded --duration $D_EMB --kill-interval 6 --kill-plan roundrobin"
)

FAILED=()
for run in "${RUNS[@]}"; do
  name="${run%%|*}"; args="${run#*|}"
  if [ -n "$ONLY" ] && [[ "$ONLY" != *",$name,"* ]]; then continue; fi
  echo "== chaos $name: $args" >&2
  # shellcheck disable=SC2086
  timeout --kill-after=15 900 dotnet "$LG" chaos $args --settle-seconds 60 --catchup-seconds 30 --out "$OUT" --quiet
  rc=$?
  if [ "$rc" -ne 0 ]; then FAILED+=("$name(rc=$rc)"); fi
done

echo "chaos reports: $OUT" >&2
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "chaos.sh: FAILED: ${FAILED[*]}" >&2
  exit 1
fi
echo "chaos.sh: every topology passed" >&2
