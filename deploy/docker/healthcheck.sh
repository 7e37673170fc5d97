#!/bin/bash
# Container health check (Dockerfile HEALTHCHECK): GET /healthz on the HTTP listener and succeed only on HTTP 200.
# Plain bash (/dev/tcp) because the aspnet base image has no curl or wget. The listener is read from the same
# setting the server binds (Gateway__HttpEndpoint, host:port; 127.0.0.1:8081 when unset); a wildcard host is probed
# on loopback.
set -u
endpoint="${Gateway__HttpEndpoint:-127.0.0.1:8081}"
port="${endpoint##*:}"
host="${endpoint%:*}"
host="${host#[}"
host="${host%]}"
case "$host" in
  0.0.0.0 | "") host=127.0.0.1 ;;
  ::) host=::1 ;;
esac
exec 3<>"/dev/tcp/${host}/${port}" || exit 1
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 4 status <&3 || exit 1
case "$status" in
  "HTTP/1.1 200 "*) exit 0 ;;
  *) echo "health check: ${status%$'\r'}" >&2; exit 1 ;;
esac
