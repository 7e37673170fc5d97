using System.Text.Json;
using System.Text.Json.Serialization;
using Gateway.LoadGen.Targets;

namespace Gateway.LoadGen.Workers;

/// <summary>One logical client: a user, the rooms it follows, and the room it publishes to (if any).</summary>
public sealed record ClientSpec(int Id, string User, string[] Rooms, string? PublishRoom);

/// <summary>What a worker process is given at start (a JSON file): the target and its share of the clients.</summary>
public sealed record WorkerPlan
{
    /// <summary>How to reach the target.</summary>
    public required TargetSettings Target { get; init; }

    /// <summary>Source address to bind every socket to (127.0.0.2, …), or null for the kernel's choice.</summary>
    public string? SourceAddress { get; init; }

    /// <summary>This worker's clients, connected in this order.</summary>
    public required List<ClientSpec> Clients { get; init; }

    /// <summary>Bytes per published payload.</summary>
    public int MessageSize { get; init; } = 100;
}

/// <summary>A line the coordinator writes to a worker's stdin.</summary>
public sealed record WorkerCommand
{
    /// <summary><c>connect</c>, <c>rate</c>, <c>churn</c>, <c>disconnect</c>, <c>final</c>, <c>exit</c>.</summary>
    public required string Op { get; init; }

    /// <summary>connect: how many more clients to connect.</summary>
    public int Count { get; init; }

    /// <summary>connect: subscribe after connecting.</summary>
    public bool Subscribe { get; init; } = true;

    /// <summary>connect: most handshakes in flight.</summary>
    public int Concurrency { get; init; } = 64;

    /// <summary>rate: messages per second over all of this worker's publishers (0 stops).</summary>
    public double Rate { get; init; }

    /// <summary>churn: fraction of connected non-publishing clients to reconnect every second (0 stops).</summary>
    public double Fraction { get; init; }
}

/// <summary>Sequence-check totals over every stream a worker saw.</summary>
public sealed record SeqStats
{
    /// <summary>Streams checked (subscriber × room, or subscriber × publisher).</summary>
    public long Streams { get; init; }

    /// <summary>Messages accepted.</summary>
    public long Received { get; init; }

    /// <summary>Gap events.</summary>
    public long Gaps { get; init; }

    /// <summary>Duplicated numbers.</summary>
    public long Duplicates { get; init; }

    /// <summary>Late numbers.</summary>
    public long Reordered { get; init; }

    /// <summary>Numbers of 1..head never delivered (after the final catch-up where the target supports one).</summary>
    public long Lost { get; init; }

    /// <summary>Clients whose final catch-up failed (their loss is unknown).</summary>
    public long CatchUpFailures { get; init; }

    /// <summary>Sums two totals.</summary>
    public static SeqStats operator +(SeqStats a, SeqStats b) => new()
    {
        Streams = a.Streams + b.Streams,
        Received = a.Received + b.Received,
        Gaps = a.Gaps + b.Gaps,
        Duplicates = a.Duplicates + b.Duplicates,
        Reordered = a.Reordered + b.Reordered,
        Lost = a.Lost + b.Lost,
        CatchUpFailures = a.CatchUpFailures + b.CatchUpFailures,
    };
}

/// <summary>A line a worker writes to stdout.</summary>
public sealed record WorkerEvent
{
    /// <summary><c>tick</c> (every second), <c>done</c> (a command finished), <c>fatal</c>.</summary>
    public required string Ev { get; init; }

    /// <summary>done: which command.</summary>
    public string? Op { get; init; }

    /// <summary>Messages written to the server in this interval.</summary>
    public long Sent { get; init; }

    /// <summary>Messages from other publishers delivered in this interval.</summary>
    public long Delivered { get; init; }

    /// <summary>Handshakes + auth completed in this interval.</summary>
    public long Connects { get; init; }

    /// <summary>Failed connects in this interval.</summary>
    public long ConnectFailures { get; init; }

    /// <summary>Reconnects (churn) in this interval.</summary>
    public long Reconnects { get; init; }

    /// <summary>Errors by code in this interval.</summary>
    public Dictionary<string, long>? Errors { get; init; }

    /// <summary>Delivery latency histogram of this interval (µs, encoded).</summary>
    public string? Latency { get; init; }

    /// <summary>Connect latency histogram of this interval (µs, encoded).</summary>
    public string? ConnectLatency { get; init; }

    /// <summary>Clients connected now.</summary>
    public int Active { get; init; }

    /// <summary>This worker process's resident memory.</summary>
    public long RssBytes { get; init; }

    /// <summary>done(connect): successes; done(final): clients checked.</summary>
    public long Ok { get; init; }

    /// <summary>done(connect): failures.</summary>
    public long Failed { get; init; }

    /// <summary>done(final|exit): sequence checks.</summary>
    public SeqStats? Seq { get; init; }

    /// <summary>fatal: what went wrong.</summary>
    public string? Message { get; init; }
}

/// <summary>One JSON option set for every line between the processes.</summary>
public static class WireJson
{
    /// <summary>camelCase, nulls omitted.</summary>
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}
