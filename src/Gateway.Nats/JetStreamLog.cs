using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Gateway.Domain;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Gateway.Nats;

/// <summary>What became of a publish to the log.</summary>
public enum PublishStatus
{
    /// <summary>Stored at <see cref="PublishOutcome.StreamSeq"/>.</summary>
    Stored,

    /// <summary>The <c>Nats-Msg-Id</c> was seen within the duplicate window; the original is at <see cref="PublishOutcome.StreamSeq"/>
    /// (0 while it is still being replicated).</summary>
    Duplicate,

    /// <summary>The compare-and-set failed: another event was appended to the chat since the expected one.</summary>
    WrongLastSequence,

    /// <summary>No answer, no stream, or another JetStream error. The event may or may not be stored.</summary>
    Failed,
}

/// <summary>The result of <see cref="JetStreamLog.AppendAsync"/>.</summary>
public readonly record struct PublishOutcome(PublishStatus Status, ulong StreamSeq, string? Error);

/// <summary>
/// The commit log on JetStream: stream set-up, the compare-and-set append, and reads of single log entries.
/// </summary>
/// <remarks>
/// Appends and message reads are plain requests to the JetStream API subjects rather than NATS.Net's JetStream helpers,
/// so that exactly the headers we mean are sent (the CAS must be sent even when the expected sequence is 0: "this chat has
/// no event yet") and every error code is seen. Stream management goes through NATS.Net.
/// </remarks>
public sealed class JetStreamLog
{
    /// <summary>JetStream's error code for a failed <c>Nats-Expected-Last-Subject-Sequence</c>.</summary>
    public const int WrongLastSequenceCode = 10071;

    /// <summary>JetStream's error code for "no message found".</summary>
    private const int NoMessageFoundCode = 10037;

    private readonly INatsConnection _connection;
    private readonly Subjects _subjects;
    private readonly NatsOptions _options;
    private readonly ILogger _logger;

    /// <summary>Creates the log over a connection.</summary>
    public JetStreamLog(INatsConnection connection, Subjects subjects, NatsOptions options, ILogger logger)
    {
        _connection = connection;
        _subjects = subjects;
        _options = options;
        _logger = logger;
    }

    /// <summary>The subject layout.</summary>
    public Subjects Subjects => _subjects;

    private NatsSubOpts ReplyOpts => new() { Timeout = TimeSpan.FromMilliseconds(_options.RequestTimeoutMs) };

    /// <summary>Creates the streams, or updates them to this configuration. Fails when JetStream refuses (e.g. a
    /// replica count the cluster cannot place).</summary>
    public async Task EnsureStreamsAsync(CancellationToken cancellationToken)
    {
        var js = new NatsJSContext((NatsConnection)_connection);
        for (var i = 0; i < _subjects.StreamCount; i++)
        {
            var config = new StreamConfig(_subjects.StreamName(i), _subjects.StreamSubjects(i))
            {
                Storage = StreamConfigStorage.File,
                Retention = StreamConfigRetention.Limits,
                NumReplicas = _options.Replicas,
                MaxAge = _options.StreamMaxAgeHours > 0 ? TimeSpan.FromHours(_options.StreamMaxAgeHours) : TimeSpan.Zero,
                DuplicateWindow = TimeSpan.FromSeconds(_options.DuplicateWindowSeconds),
                DenyDelete = true,
                DenyPurge = false,

                // Every stored event is republished under live.<subject>, in stream order, and ONLY stored ones:
                // that is what gateways subscribe to (see Subjects).
                Republish = new Republish { Src = ">", Dest = Subjects.LivePrefix + ">" },
            };
            var stream = await js.CreateOrUpdateStreamAsync(config, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("JetStream stream {Stream} ready: subjects {Subjects}, replicas {Replicas}, {Messages} events",
                config.Name, string.Join(' ', config.Subjects!), stream.Info.Config.NumReplicas, stream.Info.State.Messages);
        }
    }

    /// <summary>
    /// Appends an event to a chat's log subject if, and only if, the chat's last event is still
    /// <paramref name="expectedLastSubjectSeq"/> (0: the chat has none).
    /// </summary>
    /// <param name="subject">The chat's log subject.</param>
    /// <param name="payload">The encoded event.</param>
    /// <param name="expectedLastSubjectSeq">The compare-and-set.</param>
    /// <param name="msgId">The event-number claim, or null.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <param name="traceParent">The W3C context the append continues (the writer's span of the send), or null. A traced
    /// append gets a producer span and carries its context in <c>traceparent</c>/<c>tracestate</c> headers, which the
    /// stream stores with the entry and its republish copies to the gateways.</param>
    /// <param name="traceState">The W3C tracestate, or null.</param>
    public async Task<PublishOutcome> AppendAsync(string subject, byte[] payload, ulong expectedLastSubjectSeq, string? msgId, CancellationToken cancellationToken,
        string? traceParent = null, string? traceState = null)
    {
        var headers = new NatsHeaders
        {
            ["Nats-Expected-Last-Subject-Sequence"] = expectedLastSubjectSeq.ToString(CultureInfo.InvariantCulture),
        };
        if (msgId is not null)
        {
            headers["Nats-Msg-Id"] = msgId;
        }

        using var span = GatewayTracing.Continue(GatewayTracing.Append, ActivityKind.Producer, traceParent, traceState);
        span?.SetTag(GatewayTracing.MessagingSystemTag, "nats").SetTag(GatewayTracing.DestinationTag, subject)
            .SetStatus(ActivityStatusCode.Error, "no answer from JetStream"); // until an answer says otherwise
        NatsTrace.With(headers, GatewayTracing.Propagate(span, traceParent), GatewayTracing.PropagateState(span, traceState));

        NatsMsg<byte[]> reply;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.RequestTimeoutMs); // also bounds the wait for a reconnect before the publish goes out
        try
        {
            reply = await _connection.RequestAsync<byte[], byte[]>(subject, payload, headers, replyOpts: ReplyOpts, cancellationToken: timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new PublishOutcome(PublishStatus.Failed, 0, "JetStream did not answer in time");
        }
        catch (NatsNoRespondersException)
        {
            return new PublishOutcome(PublishStatus.Failed, 0, "JetStream has no stream for " + subject);
        }
        catch (NatsNoReplyException)
        {
            return new PublishOutcome(PublishStatus.Failed, 0, "JetStream did not answer in time");
        }
        catch (NatsException e)
        {
            return new PublishOutcome(PublishStatus.Failed, 0, e.Message);
        }

        var outcome = ParsePubAck(reply.Data);
        span?.SetTag("chatgw.append.outcome", outcome.Status.ToString())
            .SetStatus(outcome.Status == PublishStatus.Failed ? ActivityStatusCode.Error : ActivityStatusCode.Unset, outcome.Error);
        return outcome;
    }

    /// <summary>The last event of a subject in a stream: its stream sequence and payload, or (0, null) when none.</summary>
    /// <exception cref="NatsException">JetStream unreachable or failed.</exception>
    public async Task<(ulong StreamSeq, byte[]? Data)> GetLastAsync(string stream, string subject, CancellationToken cancellationToken)
    {
        var request = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["last_by_subj"] = subject });
        return await GetMessageAsync(stream, request, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The payload of the event at a stream sequence, or null when it is gone.</summary>
    /// <exception cref="NatsException">JetStream unreachable or failed.</exception>
    public async Task<byte[]?> GetAsync(string stream, ulong seq, CancellationToken cancellationToken)
    {
        var request = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, ulong> { ["seq"] = seq });
        return (await GetMessageAsync(stream, request, cancellationToken).ConfigureAwait(false)).Data;
    }

    private async Task<(ulong StreamSeq, byte[]? Data)> GetMessageAsync(string stream, byte[] request, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.RequestTimeoutMs);
        NatsMsg<byte[]> reply;
        try
        {
            reply = await _connection.RequestAsync<byte[], byte[]>($"$JS.API.STREAM.MSG.GET.{stream}", request, replyOpts: ReplyOpts, cancellationToken: timeout.Token)
                .ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new NatsException("JetStream did not answer in time");
        }

        using var doc = JsonDocument.Parse(reply.Data ?? []);
        var root = doc.RootElement;
        if (root.TryGetProperty("error", out var error))
        {
            var code = error.TryGetProperty("err_code", out var c) ? c.GetInt32() : 0;
            if (code == NoMessageFoundCode)
            {
                return (0, null);
            }

            throw new NatsException($"JetStream message get failed: {error.GetRawText()}");
        }

        var message = root.GetProperty("message");
        var data = message.TryGetProperty("data", out var d) && d.ValueKind == JsonValueKind.String ? d.GetBytesFromBase64() : [];
        return (message.GetProperty("seq").GetUInt64(), data);
    }

    private static ulong ParseTrailingNumber(string? text)
    {
        if (text is null)
        {
            return 0;
        }

        var i = text.Length;
        while (i > 0 && char.IsAsciiDigit(text[i - 1]))
        {
            i--;
        }

        return ulong.TryParse(text.AsSpan(i), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
    }

    /// <summary>Parses <c>{"stream":..,"seq":N,"duplicate":true}</c> or <c>{"error":{"code":..,"err_code":..,"description":..}}</c>.</summary>
    internal static PublishOutcome ParsePubAck(byte[]? json)
    {
        if (json is null || json.Length == 0)
        {
            return new PublishOutcome(PublishStatus.Failed, 0, "empty JetStream reply");
        }

        var reader = new Utf8JsonReader(json);
        ulong seq = 0;
        var duplicate = false;
        var errCode = 0;
        string? description = null;
        var inError = false;
        var depth = 0;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    depth++;
                    break;
                case JsonTokenType.EndObject:
                    depth--;
                    inError = inError && depth > 1;
                    break;
                case JsonTokenType.PropertyName:
                    if (depth == 1 && reader.ValueTextEquals("error"))
                    {
                        inError = true;
                    }
                    else if (depth == 1 && reader.ValueTextEquals("seq"))
                    {
                        reader.Read();
                        seq = reader.GetUInt64();
                    }
                    else if (depth == 1 && reader.ValueTextEquals("duplicate"))
                    {
                        reader.Read();
                        duplicate = reader.TokenType == JsonTokenType.True;
                    }
                    else if (inError && reader.ValueTextEquals("err_code"))
                    {
                        reader.Read();
                        errCode = reader.GetInt32();
                    }
                    else if (inError && reader.ValueTextEquals("description"))
                    {
                        reader.Read();
                        description = reader.GetString();
                    }

                    break;
            }
        }

        if (errCode != 0 || description is not null)
        {
            // "wrong last sequence: N" names the subject's actual last sequence: the loser of a race needs it.
            return errCode == WrongLastSequenceCode
                ? new PublishOutcome(PublishStatus.WrongLastSequence, ParseTrailingNumber(description), description)
                : new PublishOutcome(PublishStatus.Failed, 0, $"JetStream error {errCode}: {description}");
        }

        // A duplicate whose original is still being replicated comes back with seq 0: still a duplicate.
        return duplicate
            ? new PublishOutcome(PublishStatus.Duplicate, seq, null)
            : seq == 0
                ? new PublishOutcome(PublishStatus.Failed, 0, "JetStream reply without a sequence")
                : new PublishOutcome(PublishStatus.Stored, seq, null);
    }
}
