using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Gateway.Domain;
using Gateway.Protocol;

namespace Gateway.Server;

/// <summary>
/// The gateway's instruments (meter <c>Gateway</c>), exported as Prometheus text at <c>GET /metrics</c> and over OTLP
/// (<see cref="GatewayHost"/>). Every instrument has a unit; labels take only a few fixed values (never a chat, user or
/// tenant id).
/// </summary>
/// <remarks>
/// <para>The instruments are static, created once per process and never disposed (see <see cref="WriteMetrics"/> for why);
/// an instance of this class is one host's view: its gauges (open connections, queued frames, build info) are sources the
/// static gauges sum or list while the instance lives.</para>
/// <para>Hot paths record without allocating: no tags, or tags whose values are constants (a <see cref="TagList"/> of
/// interned strings is a struct), and durations from <see cref="Stopwatch.GetTimestamp"/>.</para>
/// </remarks>
public sealed class GatewayMetrics : IDisposable
{
    private static readonly Meter Meter = new(WriteMetrics.MeterName);
    private static readonly ConcurrentDictionary<GatewayMetrics, bool> Live = new(ReferenceEqualityComparer.Instance);

    private static readonly Counter<long> DeliveriesCounter = Meter.CreateCounter<long>("gateway.deliveries", "{delivery}", "Live Message frames enqueued to sessions");
    private static readonly Counter<long> CatchUpMessagesCounter = Meter.CreateCounter<long>("gateway.catchup.messages", "{message}", "History Message frames enqueued during catch-up");
    private static readonly Counter<long> SlowConsumerClosesCounter = Meter.CreateCounter<long>("gateway.slow_consumer.closes", "{close}", "Connections closed with 4002 (slow consumer), by reason: the outbound queue's frame or byte bound");
    private static readonly Counter<long> HandshakeRejectsCounter = Meter.CreateCounter<long>("gateway.handshake.rejects", "{handshake}", "Upgrades answered with an HTTP error, by status");
    private static readonly Counter<long> SendsCounter = Meter.CreateCounter<long>("gateway.sends", "{send}", "Sends answered, by transport (ws, http) and result (ok or the error code's name)");
    private static readonly Counter<long> EphemeralDroppedCounter = Meter.CreateCounter<long>("gateway.ephemeral.dropped", "{signal}", "Typing notices dropped for connections with a half-full queue");
    private static readonly Counter<long> RateLimitedCounter = Meter.CreateCounter<long>("gateway.rate_limited", "{request}", "Requests refused or dropped by a per-user rate limit, by kind");

    private static readonly Histogram<double> DeliveryLagHistogram = Meter.CreateHistogram(
        "gateway.delivery.lag", "s",
        "Durable commit of a message to its live Message frame handed to the socket (embedded: monotonic clock; distributed: the writer's wall clock at the append against the gateway's)",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WriteMetrics.LatencyBuckets });

    private static readonly Histogram<double> SendDurationHistogram = Meter.CreateHistogram(
        "gateway.send.duration", "s", "A send received to its ack or error answered, by transport (ws, http) and result",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WriteMetrics.LatencyBuckets });

    private static readonly Histogram<double> CatchUpDurationHistogram = Meter.CreateHistogram(
        "gateway.catchup.duration", "s", "A chat's Subscribe to its CaughtUp frame",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WriteMetrics.LatencyBuckets });

    private static readonly Histogram<int> CatchUpSizeHistogram = Meter.CreateHistogram(
        "gateway.catchup.size", "{message}", "Messages replayed from history before a chat's CaughtUp",
        advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [0, 1, 10, 100, 1000, 10000, 100000] });

    internal static readonly ObservableGauge<long> ConnectionsGauge = Meter.CreateObservableGauge(
        "gateway.connections", static () => Sum(static m => m.Connections), "{connection}", "Open WebSocket sessions");

    internal static readonly ObservableGauge<long> OutboundQueuedGauge = Meter.CreateObservableGauge(
        "gateway.outbound.queued", static () => Sum(static m => m.OutboundQueued?.Invoke() ?? 0), "{frame}", "Frames queued to sockets, over all sessions");

    internal static readonly ObservableGauge<int> BuildInfoGauge = Meter.CreateObservableGauge(
        "gateway.build.info", ObserveBuildInfo, "{build}", "Always 1; the labels say which version runs in which role");

    /// <summary>The version this build reports: the assembly's informational version without the source revision.</summary>
    public static readonly string Version = ReadVersion();

    // Result names of the sends counter, fixed strings so that recording allocates nothing.
    private static readonly string[] ResultNames = BuildResultNames();

    private long _connections;

    /// <summary>Creates one host's view (role <c>all</c>).</summary>
    public GatewayMetrics()
        : this("all")
    {
    }

    /// <summary>Creates one host's view; <paramref name="role"/> is the <c>role</c> label of <c>gateway.build.info</c>.</summary>
    public GatewayMetrics(string role)
    {
        Role = role;
        Live[this] = true;
    }

    /// <summary>The role label.</summary>
    public string Role { get; }

    /// <summary>Live deliveries.</summary>
    public Counter<long> Deliveries => DeliveriesCounter;

    /// <summary>Catch-up deliveries.</summary>
    public Counter<long> CatchUpMessages => CatchUpMessagesCounter;

    /// <summary>Slow-consumer disconnects (tag <c>reason</c>: <c>frames</c> or <c>bytes</c>).</summary>
    public Counter<long> SlowConsumerCloses => SlowConsumerClosesCounter;

    /// <summary>Rejected handshakes.</summary>
    public Counter<long> HandshakeRejects => HandshakeRejectsCounter;

    /// <summary>Ephemeral signals dropped under pressure.</summary>
    public Counter<long> EphemeralDropped => EphemeralDroppedCounter;

    /// <summary>Rate-limited requests.</summary>
    public Counter<long> RateLimited => RateLimitedCounter;

    /// <summary>Open sessions right now.</summary>
    public long Connections => Interlocked.Read(ref _connections);

    /// <summary>Frames queued to this host's sockets (set by the host; null: none).</summary>
    internal Func<long>? OutboundQueued { get; set; }

    /// <summary>
    /// Starts <c>gateway.nats.connected</c> for a distributed role: 1 while <paramref name="connected"/> says so, else 0.
    /// Unlike the sums above, one host's connection state cannot be added to another's, so this gauge is the host's own,
    /// on a meter of the host's <paramref name="meterFactory"/> (disposed with the host; other hosts in the same process
    /// drop it, see <see cref="GatewayHost"/>).
    /// </summary>
    internal static void ObserveNats(IMeterFactory meterFactory, Func<bool> connected) =>
        meterFactory.Create(WriteMetrics.MeterName).CreateObservableGauge(
            "gateway.nats.connected", () => connected() ? 1 : 0, "{connection}", "1 while connected to NATS, 0 while not (distributed roles only)");

    /// <summary>For <see cref="Gateway.WebSockets.WebSocketOptions.TimestampedFrameWritten"/>: a live Message frame with its
    /// commit time reached the socket.</summary>
    internal static void RecordDeliveryLag(long committedAt, long now) =>
        DeliveryLagHistogram.Record(Math.Max(0, Stopwatch.GetElapsedTime(committedAt, now).TotalSeconds));

    /// <summary>A send (WebSocket or HTTP) was answered: counts it and records its duration since <paramref name="receivedAt"/>.</summary>
    internal static void SendAnswered(bool http, ErrorCode result, long receivedAt) => SendAnswered(http, ResultName(result), receivedAt);

    /// <summary>As <see cref="SendAnswered(bool, ErrorCode, long)"/> with the result's name (one of a fixed set of constants).</summary>
    internal static void SendAnswered(bool http, string result, long receivedAt)
    {
        var tags = new TagList
        {
            { "transport", http ? "http" : "ws" },
            { "result", result },
        };
        SendsCounter.Add(1, tags);
        SendDurationHistogram.Record(Stopwatch.GetElapsedTime(receivedAt).TotalSeconds, tags);
    }

    /// <summary>A chat's catch-up ended with CaughtUp after <paramref name="messages"/> messages.</summary>
    internal static void CatchUpDone(long subscribedAt, int messages)
    {
        CatchUpDurationHistogram.Record(Stopwatch.GetElapsedTime(subscribedAt).TotalSeconds);
        CatchUpSizeHistogram.Record(messages);
    }

    internal void ConnectionOpened() => Interlocked.Increment(ref _connections);

    internal void ConnectionClosed() => Interlocked.Decrement(ref _connections);

    /// <inheritdoc/>
    public void Dispose() => Live.TryRemove(this, out _);

    private static string ResultName(ErrorCode code) =>
        (int)code < ResultNames.Length && ResultNames[(int)code] is { } name ? name : "other";

    private static string[] BuildResultNames()
    {
        var values = Enum.GetValues<ErrorCode>();
        var names = new string[values.Max(v => (int)v) + 1];
        foreach (var v in values)
        {
            names[(int)v] = v == ErrorCode.None ? "ok" : v.ToString();
        }

        return names;
    }

    private static long Sum(Func<GatewayMetrics, long> read)
    {
        long total = 0;
        foreach (var m in Live.Keys)
        {
            total += read(m);
        }

        return total;
    }

    private static IEnumerable<Measurement<int>> ObserveBuildInfo()
    {
        foreach (var role in Live.Keys.Select(m => m.Role).Distinct())
        {
            yield return new Measurement<int>(1, new KeyValuePair<string, object?>("version", Version), new KeyValuePair<string, object?>("role", role));
        }
    }

    private static string ReadVersion()
    {
        // Without the source revision: a label value that changes only with releases.
        var version = GatewayVersion.Current;
        var plus = version.IndexOf('+', StringComparison.Ordinal);
        return plus > 0 ? version[..plus] : version;
    }
}
