using System.Buffers;
using System.Text.Json;
using Gateway.Nats;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace Gateway.LoadGen.Chaos;

/// <summary>
/// Reads the commit log straight from JetStream at the end of a run: every message of every <c>CHATLOG_*</c>
/// stream, in stream order, by direct get (<c>$JS.API.STREAM.MSG.GET</c>), decoded with the writers' own
/// <see cref="WireCodec.DecodeEvent"/>. Only MessageCreated events are returned.
/// </summary>
internal static class JetStreamAudit
{
    public static async Task<(List<ChaosLogEntry> Entries, List<string> Notes)> ReadAsync(string urls, CancellationToken ct)
    {
        var entries = new List<ChaosLogEntry>();
        var notes = new List<string>();
        await using var connection = new NatsConnection(NatsOpts.Default with { Url = urls, Name = "chaos-audit", RequestTimeout = TimeSpan.FromSeconds(10) });
        await connection.ConnectAsync().ConfigureAwait(false);
        var js = new NatsJSContext(connection);
        var streams = new List<(string Name, ulong First, ulong Last)>();
        await foreach (var s in js.ListStreamsAsync(cancellationToken: ct).ConfigureAwait(false))
        {
            if (s.Info.Config.Name is { } name && name.StartsWith("CHATLOG_", StringComparison.Ordinal))
            {
                streams.Add((name, s.Info.State.FirstSeq, s.Info.State.LastSeq));
            }
        }

        foreach (var (name, first, last) in streams.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            notes.Add($"{name}: stream seqs {first}..{last}");
            const int Window = 32;
            for (var start = first; start <= last && last > 0; start += Window)
            {
                var batch = new List<Task<ChaosLogEntry?>>();
                for (var seq = start; seq < start + Window && seq <= last; seq++)
                {
                    batch.Add(GetAsync(connection, name, seq, notes, ct));
                }

                foreach (var e in await Task.WhenAll(batch).ConfigureAwait(false))
                {
                    if (e is not null)
                    {
                        entries.Add(e);
                    }
                }
            }
        }

        return (entries, notes);
    }

    private static async Task<ChaosLogEntry?> GetAsync(NatsConnection connection, string stream, ulong seq, List<string> notes, CancellationToken ct)
    {
        var request = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, ulong> { ["seq"] = seq });
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var reply = await connection.RequestAsync<byte[], byte[]>($"$JS.API.STREAM.MSG.GET.{stream}", request, cancellationToken: ct).ConfigureAwait(false);
                using var doc = JsonDocument.Parse(reply.Data ?? []);
                if (doc.RootElement.TryGetProperty("error", out var error))
                {
                    lock (notes)
                    {
                        notes.Add($"{stream} #{seq}: {error.GetRawText()}");
                    }

                    return null;
                }

                var message = doc.RootElement.GetProperty("message");
                var data = message.TryGetProperty("data", out var d) ? d.GetBytesFromBase64() : [];
                var e = WireCodec.DecodeEvent(new ReadOnlySequence<byte>(data));
                return e.Kind == LogEventKind.MessageCreated && e.Message is { } m
                    ? new ChaosLogEntry(stream, seq, e.TenantId, e.ChatId, m.Seq, m.MessageId, m.SenderId, m.ClientMessageId)
                    : null;
            }
            catch (NatsException) when (attempt < 5)
            {
                await Task.Delay(500, ct).ConfigureAwait(false);
            }
        }
    }
}
