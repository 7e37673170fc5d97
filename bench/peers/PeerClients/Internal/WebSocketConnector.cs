using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;

namespace PeerClients.Internal;

/// <summary>
/// Connects a <see cref="ClientWebSocket"/>, optionally from a given local address. <see cref="ClientWebSocket"/> binds a
/// local address only through an <see cref="HttpMessageInvoker"/> whose <see cref="SocketsHttpHandler.ConnectCallback"/>
/// opens the socket itself; one handler per local end point is shared by every connection from it (an upgraded
/// connection leaves the handler's pool, so sharing costs nothing).
/// </summary>
internal static class WebSocketConnector
{
    // SOL_IP / IP_BIND_ADDRESS_NO_PORT (linux/in.h): with it, bind(addr, port 0) defers the port choice to connect(), so
    // the 4-tuple rather than the bare local address must be unique, and one source address is not capped at one
    // ephemeral port range across all servers.
    private const int SolIp = 0;
    private const int IpBindAddressNoPort = 24;

    private static readonly ConcurrentDictionary<IPEndPoint, HttpMessageInvoker> Invokers = new();

    public static Task ConnectAsync(ClientWebSocket socket, Uri uri, IPEndPoint? localEndPoint, CancellationToken ct)
        => localEndPoint is null
            ? socket.ConnectAsync(uri, ct)
            : socket.ConnectAsync(uri, Invokers.GetOrAdd(localEndPoint, CreateInvoker), ct);

    private static HttpMessageInvoker CreateInvoker(IPEndPoint localEndPoint)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(localEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    if (OperatingSystem.IsLinux() && localEndPoint.Port == 0 && localEndPoint.AddressFamily == AddressFamily.InterNetwork)
                    {
                        socket.SetRawSocketOption(SolIp, IpBindAddressNoPort, BitConverter.GetBytes(1));
                    }
                    socket.Bind(localEndPoint);
                    await socket.ConnectAsync(context.DnsEndPoint, ct).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpMessageInvoker(handler);
    }
}
