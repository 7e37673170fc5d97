#!/usr/bin/env bash
# Starts the SignalR peer on 127.0.0.1:<port> in the foreground (exec: the caller's $! is the server's pid, so it can be
# pinned with taskset and sampled for RSS). Prints READY on stdout once Kestrel accepts connections.
# Builds Release first when there is no build yet or a source changed since the last build this script ran. Env: PEER_JWT_KEY (see Program.cs).
set -euo pipefail
port=${1:?usage: start.sh <port>}
here=$(cd "$(dirname "$0")" && pwd)
out="$here/bin/Release/net10.0"
stamp="$here/obj/start.sh.stamp"   # written after each build this script runs

if [ ! -f "$stamp" ] || [ ! -x "$out/SignalRPeer" ] || [ "$here/../Directory.Packages.props" -nt "$stamp" ] \
   || [ -n "$(find "$here" -path "$here/bin" -prune -o -path "$here/obj" -prune -o \
        \( -name '*.cs' -o -name '*.csproj' -o -name '*.json' \) -newer "$stamp" -print -quit)" ]; then
  dotnet build "$here/SignalRPeer.csproj" -c Release -nologo -v q -clp:ErrorsOnly >&2
  touch "$stamp"
fi

cd "$out"   # appsettings.json is read from the content root
# GC: the web SDK's default (Server GC, concurrent), untouched; .NET uses workstation GC anyway when the process may
# run on one CPU only (taskset -c 0), so report the mode the runtime chose with every figure.
exec "$out/SignalRPeer" --urls "http://127.0.0.1:$port"
