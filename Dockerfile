# One image for every role: the embedded system (default: gateway + write service + RocksDB in one process), or
# `--role writer` / `--role gateway` of the distributed mode (README "Distributed mode"; Kubernetes: deploy/kubernetes/).
#
#   docker build -t chatgw .
#
# Keys are never arguments (they would show in `ps`, in the pod spec and in shell history): give them as environment
# variables from a secret store, or as files mounted read-only and named by a setting. This image binds to all
# interfaces, so the server refuses to start without configured keys (generated development keys are only for the
# embedded role on loopback, README "Configuration"). For example, with an RS256/ES256 public key and an admin key:
#
#   docker run -p 8080:8080 -p 8081:8081 -v chatgw-data:/data \
#     -v "$PWD/keys:/etc/chatgw/keys:ro" \
#     -e Gateway__Auth__PublicKeyFiles__0=/etc/chatgw/keys/jwt-public.pem \
#     -e Gateway__Auth__AdminKey \
#     chatgw
#
# (`-e NAME` without a value passes the variable from the calling shell, so the secret is not in the command line.)
# Distributed roles add `--role writer` or `--role gateway` and `-e Nats__Url=nats://nats:4222` (with `-e Nats__Token`);
# writers on the shared Scylla store add `-e Store__Kind=scylla -e Store__ContactPoints=…` (README "The shared history
# store: Scylla"; `schema apply` runs from the same image).

# ---- build ------------------------------------------------------------------------------------------------------------
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src

# Restore layer first: only the files restore reads, so a source change does not download the packages again.
# Every project Gateway.Server references (transitively) must be listed here (DeploymentManifestTests checks it).
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Gateway.Protocol/Gateway.Protocol.csproj src/Gateway.Protocol/
COPY src/Gateway.WebSockets/Gateway.WebSockets.csproj src/Gateway.WebSockets/
COPY src/Gateway.Domain/Gateway.Domain.csproj src/Gateway.Domain/
COPY src/Gateway.Storage.RocksDb/Gateway.Storage.RocksDb.csproj src/Gateway.Storage.RocksDb/
COPY src/Gateway.Nats/Gateway.Nats.csproj src/Gateway.Nats/
COPY src/Gateway.Cql/Gateway.Cql.csproj src/Gateway.Cql/
COPY src/Gateway.Storage.Scylla/Gateway.Storage.Scylla.csproj src/Gateway.Storage.Scylla/
COPY src/Gateway.Server/Gateway.Server.csproj src/Gateway.Server/
RUN dotnet restore src/Gateway.Server/Gateway.Server.csproj -r linux-x64

# Then the sources (.dockerignore keeps bin/ and obj/ of a local build out, and everything but src/ is not copied).
COPY src/ src/

# linux-x64 only, framework-dependent (the aspnet base image brings the runtime). The RocksDB package ships native
# libraries for five platforms; a linux-x64 publish copies only its three linux-x64 variants, and of those the loader
# tries librocksdb-jemalloc.so first (it needs libjemalloc.so.2, which the base image does not have), then
# librocksdb.so, then librocksdb-musl.so (Alpine). The image runs librocksdb.so, the one the tests run here too: the
# other two are removed, and the build fails if that leaves anything but librocksdb.so.
RUN dotnet publish src/Gateway.Server/Gateway.Server.csproj -c Release -r linux-x64 --self-contained false \
        --no-restore -p:UseAppHost=false -o /app \
    && rm -f /app/librocksdb-jemalloc.so /app/librocksdb-musl.so \
    && test -f /app/librocksdb.so \
    && test ! -e /app/runtimes \
    && test -z "$(find /app -name '*.dylib' -o -name 'rocksdb.dll' -o -name '*musl*' -o -name '*jemalloc*')"

# ---- runtime ----------------------------------------------------------------------------------------------------------
# Ubuntu 24.04 based; it has bash and coreutils but neither curl nor wget, and a non-root user `app` (UID $APP_UID, 1654).
FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
COPY deploy/docker/healthcheck.sh /usr/local/bin/chatgw-healthcheck

# The data directory belongs to the non-root user (a named volume copies this ownership on first use; in Kubernetes
# the pod's fsGroup does the same for a PersistentVolume).
RUN mkdir -p /data && chown "$APP_UID:$APP_UID" /data && chmod 0750 /data

# Listen on all interfaces inside the container; keep data on a volume. ASPNETCORE_HTTP_PORTS (8080 in the base image)
# is cleared: the server binds its own two listeners, and Kestrel would log a warning that it overrides it.
ENV Gateway__WebSocketEndpoint=0.0.0.0:8080 \
    Gateway__HttpEndpoint=0.0.0.0:8081 \
    Gateway__DataDirectory=/data \
    ASPNETCORE_HTTP_PORTS=
VOLUME /data
EXPOSE 8080 8081

USER $APP_UID

# Liveness of the process: GET /healthz on the HTTP listener (port taken from Gateway__HttpEndpoint), with bash's
# /dev/tcp since the image has no HTTP client. Readiness (/readyz) is for load balancers, not for restarts.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["/bin/bash", "/usr/local/bin/chatgw-healthcheck"]

ENTRYPOINT ["dotnet", "Gateway.Server.dll"]
