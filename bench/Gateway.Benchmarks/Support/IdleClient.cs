using System.Net;
using Gateway.Tools.Common;

namespace Gateway.Benchmarks.Support;

/// <summary>
/// One idle connection of the idle-memory probe: the tools' shared <see cref="GatewayConnection"/> (upgrade with a
/// bearer token, one Subscribe from seq 0, wait for its CaughtUp), which then sits idle with one receive outstanding,
/// answering the server's keep-alive pings (as a real client does; otherwise the server's idle timeout would close it
/// during a long probe). 1 KiB of receive buffer per connection on the probe side: nothing but control frames arrives.
/// </summary>
internal sealed class IdleClient : IAsyncDisposable
{
    private readonly GatewayConnection _connection = new(receiveBufferSize: 1024);
    private string? _failure;

    private IdleClient() =>
        _connection.OnError = code => Interlocked.CompareExchange(ref _failure, _connection.Failure ?? "server: " + code, null);

    /// <summary>Set when the server closed the connection, the socket failed or the server sent an error after it was ready.</summary>
    public string? Failure => Volatile.Read(ref _failure);

    /// <summary>Connects, upgrades, subscribes to <paramref name="chatId"/> from seq 0 and waits for its CaughtUp.</summary>
    public static async Task<IdleClient> OpenAsync(IPEndPoint server, IPAddress? localAddress, string path, string token,
        string chatId, TimeSpan timeout)
    {
        var client = new IdleClient();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await client._connection.ConnectAsync(new Uri($"ws://{server}{path}"), "", token,
                localAddress is null ? null : new IPEndPoint(localAddress, 0), cts.Token).ConfigureAwait(false);
            await client._connection.SubscribeAsync(chatId, 0, cts.Token).ConfigureAwait(false);
            return client;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
