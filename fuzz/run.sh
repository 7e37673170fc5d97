#!/usr/bin/env bash
# Bounded coverage-guided fuzzing of the parsers with afl-fuzz + SharpFuzz (see fuzz/README.md).
#
#   fuzz/run.sh [seconds-per-target] [target...]      default: 20 s for every target
#
# Installs what is missing (Debian afl++, the sharpfuzz dotnet tool), publishes the harness in Release, instruments
# Gateway.WebSockets.dll and Gateway.Protocol.dll in the published copy, replays the committed seeds and regressions,
# then runs afl-fuzz once per target under a hard timeout. Prints executions, speed, corpus, edges, crashes and hangs
# per target. Exit status: 0 clean, 1 a contract violation (a crash, or a committed input failing replay), 2 the
# tooling failed. Crash inputs are copied to fuzz/crashes/<target>/. Leaves no process behind.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$root/fuzz"
cd "$root"

seconds=${1:-20}
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: fuzz/run.sh [seconds-per-target] [target...]" >&2
  exit 2
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
started=$(date +%s)
say() { printf '[fuzz %3ds] %s\n' "$(( $(date +%s) - started ))" "$*"; }

# --- tools ---------------------------------------------------------------------------------------------------------
if ! command -v afl-fuzz >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing afl++ (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends afl++ >/dev/null
  else
    echo "afl-fuzz is missing; install AFL++ (Debian: apt-get install afl++)" >&2
    exit 2
  fi
fi

sharpfuzz="$fuzz/.tools/sharpfuzz"
if [ ! -x "$sharpfuzz" ]; then
  say "installing the sharpfuzz tool into fuzz/.tools"
  dotnet tool install --tool-path "$fuzz/.tools" SharpFuzz.CommandLine --version 2.3.0 >/dev/null
fi

# --- build and instrument -----------------------------------------------------------------------------------------
# A fresh publish folder every time: sharpfuzz rewrites assemblies in place and must see uninstrumented ones.
bin="$fuzz/out/bin"
rm -rf "$bin"
say "publishing fuzz/Gateway.Fuzz (Release)"
dotnet publish "$fuzz/Gateway.Fuzz/Gateway.Fuzz.csproj" -c Release -o "$bin" -nologo -v q -clp:ErrorsOnly >/dev/null
for assembly in Gateway.WebSockets.dll Gateway.Protocol.dll; do
  "$sharpfuzz" "$bin/$assembly" >/dev/null
done
say "instrumented Gateway.WebSockets.dll and Gateway.Protocol.dll"

harness=(dotnet "$bin/Gateway.Fuzz.dll")
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <("${harness[@]}" list)
fi

# --- replay what is committed ---------------------------------------------------------------------------------------
# Every seed and regression must pass before fuzzing: afl-fuzz refuses a corpus whose inputs crash, and a failing
# regression is a bug by itself.
status=0
for target in "${targets[@]}"; do
  inputs=("$fuzz/seeds/$target")
  [ -d "$fuzz/regressions/$target" ] && inputs+=("$fuzz/regressions/$target")
  if ! "${harness[@]}" "$target" --replay "${inputs[@]}" > "$fuzz/out/replay-$target.log" 2>&1; then
    say "REPLAY FAILED for $target:"
    cat "$fuzz/out/replay-$target.log"
    status=1
  fi
done
if [ $status -ne 0 ]; then
  exit $status
fi
say "replayed the committed seeds and regressions: all pass"

# --- fuzz ---------------------------------------------------------------------------------------------------------
# afl-fuzz's own checks that do not apply here: the target binary is `dotnet` (its instrumentation lives in the
# managed assemblies, so the binary check must be skipped), the CPU governor and core_pattern belong to the host,
# and on a shared 2-core machine binding to a "free" core fails, so no affinity.
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1
export AFL_FAST_CAL=1 AFL_NO_CRASH_README=1

group=""
cleanup() {
  # afl-fuzz runs in its own process group (setsid below); kill what is left of that group, and nothing else.
  if [ -n "$group" ]; then
    kill -KILL -- "-$group" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

row() { printf '%-14s %10s %9s %7s %6s %8s %6s\n' "$@"; }
summary=()
for target in "${targets[@]}"; do
  out="$fuzz/out/$target"
  rm -rf "$out" "$fuzz/out/$target-in"
  mkdir -p "$fuzz/out/$target-in"
  cp "$fuzz/seeds/$target"/* "$fuzz/out/$target-in/"
  if [ -d "$fuzz/regressions/$target" ]; then
    cp "$fuzz/regressions/$target"/* "$fuzz/out/$target-in/" 2>/dev/null || true
  fi

  dict=()
  case "$target" in
    handshake) dict=(-x "$fuzz/dict/handshake.dict") ;;
    frame-header|receive-path) dict=(-x "$fuzz/dict/websocket-frames.dict") ;;
  esac

  say "afl-fuzz $target for ${seconds}s"
  # -V stops fuzzing after the time given; timeout is the hard bound around everything (start-up and calibration
  # included), then SIGKILL 10 s later. -t 10000: a .NET start-up plus a slow first run must not count as a hang.
  setsid timeout -k 10 $(( seconds + 120 )) \
    afl-fuzz -i "$fuzz/out/$target-in" -o "$out" -V "$seconds" -m none -t 10000 "${dict[@]}" -- \
    "${harness[@]}" "$target" > "$fuzz/out/afl-$target.log" 2>&1 &
  group=$!
  rc=0
  wait "$group" || rc=$?
  cleanup
  group=""

  stats="$out/default/fuzzer_stats"
  if [ ! -f "$stats" ]; then
    say "afl-fuzz did not run for $target (exit $rc); last lines of fuzz/out/afl-$target.log:"
    tail -n 20 "$fuzz/out/afl-$target.log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g'
    status=2
    continue
  fi

  stat() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
  crashes=$(find "$out/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
  hangs=$(find "$out/default/hangs" -type f -name 'id:*' 2>/dev/null | wc -l)
  summary+=("$(row "$target" "$(stat execs_done)" "$(stat execs_per_sec)" "$(stat corpus_count)" "$(stat edges_found)" "$crashes" "$hangs")")

  if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
    mkdir -p "$fuzz/crashes/$target"
    find "$out/default/crashes" "$out/default/hangs" -type f -name 'id:*' -exec cp {} "$fuzz/crashes/$target/" \;
  fi
  if [ "$crashes" -gt 0 ]; then
    say "$target: $crashes crash(es) copied to fuzz/crashes/$target/ (replay: dotnet fuzz/out/bin/Gateway.Fuzz.dll $target --replay fuzz/crashes/$target)"
    [ $status -eq 0 ] && status=1
  fi
  if [ "$hangs" -gt 0 ]; then
    say "$target: $hangs input(s) ran over 10 s, copied to fuzz/crashes/$target/ (reported, not failed: see README)"
  fi
done

echo
row target execs execs/s corpus edges crashes hangs
for line in "${summary[@]}"; do
  echo "$line"
done
say "done (exit $status)"
exit $status
