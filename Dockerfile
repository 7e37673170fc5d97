# One image for every role. Default: the embedded system (gateway + write service + RocksDB in one process).
# Build: docker build -t chatgw .   Run: docker run -p 8080:8080 -p 8081:8081 -v chatgw-data:/data chatgw
# Distributed (README "Distributed mode"): the same image with arguments, e.g.
#   docker run -v w1:/data chatgw --role writer  --Nats:Url=nats://nats:4222 --Nats:NodeId=w1 --Gateway:Auth:SigningKey=...
#   docker run -p 8080:8080 chatgw --role gateway --Nats:Url=nats://nats:4222 --Gateway:Auth:SigningKey=...
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/Gateway.Server/Gateway.Server.csproj -c Release -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
# Listen on all interfaces inside the container; keep data on a volume.
ENV Gateway__WebSocketEndpoint=0.0.0.0:8080 \
    Gateway__HttpEndpoint=0.0.0.0:8081 \
    Gateway__DataDirectory=/data
VOLUME /data
EXPOSE 8080 8081
ENTRYPOINT ["dotnet", "Gateway.Server.dll"]
