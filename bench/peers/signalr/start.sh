#!/usr/bin/env bash
# Starts the SignalR peer on 127.0.0.1:<port> in the foreground (exec: the caller's $! is the server's pid, so it can be
# pinned with taskset and sampled for RSS). Prints READY on stdout once Kestrel accepts connections.
# Builds Release first when an output is missing or older than a source file. Env: PEER_JWT_KEY (see Program.cs).
set -euo pipefail
port=${1:?usage: start.sh <port>}
here=$(cd "$(dirname "$0")" && pwd)
out="$here/bin/Release/net10.0"
app="$out/SignalRPeer"

if [ ! -x "$app" ] || [ -n "$(find "$here" -path "$here/bin" -prune -o -path "$here/obj" -prune -o \
      \( -name '*.cs' -o -name '*.csproj' -o -name '*.json' -o -name '*.props' \) -newer "$app" -print -quit)" ] \
   || [ "$here/../Directory.Packages.props" -nt "$app" ]; then
  dotnet build "$here/SignalRPeer.csproj" -c Release -nologo -v q -clp:ErrorsOnly >&2
  touch "$app"
fi

cd "$out"   # appsettings.json is read from the content root
# GC: the web SDK's default (Server GC, concurrent), untouched; .NET uses workstation GC anyway when the process may
# run on one CPU only (taskset -c 0), so report the mode the runtime chose with every figure.
exec "$app" --urls "http://127.0.0.1:$port"
