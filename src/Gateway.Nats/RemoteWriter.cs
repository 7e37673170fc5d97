using System.Diagnostics;
using Gateway.Domain;
using Gateway.Domain.Ports;
using Gateway.Protocol;
using MessagePack;
using NATS.Client.Core;

namespace Gateway.Nats;

/// <summary>
/// The gateway role's view of the writers: <see cref="IWriteService"/>, <see cref="IMessageHistory"/> and
/// <see cref="IMembership"/> over NATS request/reply (<see cref="Subjects"/>.RpcSend/RpcAdmin/RpcRead, queue group
/// <c>writers</c>).
/// </summary>
/// <remarks>
/// <para>Every request has a timeout and is retried until <see cref="NatsOptions.CommandDeadlineMs"/>: a send carries its
/// idempotency key, so a retry after a lost reply returns the original seq (Duplicate), never a second message. When the
/// deadline passes (no writer, NATS down), sends answer <see cref="ErrorCode.Unavailable"/> with a retry hint and reads
/// throw <see cref="RemoteException"/> (a Subscribe answers Unavailable for that chat).</para>
/// <para>Identical concurrent history reads from this gateway's sessions share one request (<see cref="Coalescer{TKey,TValue}"/>);
/// the writer coalesces again across gateways.</para>
/// </remarks>
public sealed class RemoteWriter : IWriteService, IMessageHistory, IMembership
{
    private static readonly TimeSpan RetryPause = TimeSpan.FromMilliseconds(100);

    private readonly INatsConnection _connection;
    private readonly NatsOptions _options;
    private readonly Coalescer<ReadKey, byte[]> _reads = new();

    /// <summary>Creates the client.</summary>
    public RemoteWriter(INatsConnection connection, NatsOptions options)
    {
        _connection = connection;
        _options = options;
    }

    /// <inheritdoc />
    public async ValueTask<SendResult> SendAsync(SendMessage command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);

        // The request carries the context in headers (the RPC span's, or the send's when this gateway does not trace);
        // the payload's traceId stays the send's own, for writers that do not read the headers.
        using var span = GatewayTracing.Start(GatewayTracing.RpcSend, ActivityKind.Client, command.TraceId, command.TraceState);
        span?.SetTag(GatewayTracing.MessagingSystemTag, "nats");
        span?.SetTag(GatewayTracing.DestinationTag, Subjects.RpcSend);
        var headers = NatsTrace.With(null, GatewayTracing.Propagate(span, command.TraceId), GatewayTracing.PropagateState(span, command.TraceState));
        var reply = await RequestAsync(Subjects.RpcSend, RpcCodec.EncodeSend(command), cancellationToken, headers).ConfigureAwait(false);
        var result = reply is null
            ? SendResult.Fail(ErrorCode.Unavailable, "no writer answered in time; retry with the same clientMessageId")
            : RpcCodec.DecodeSendResult(Payload.Of(reply));
        GatewayTracing.StopSend(span, result);
        return result;
    }

    /// <inheritdoc />
    public ValueTask<AdminResult> CreateChatAsync(string tenantId, string chatId, IReadOnlyCollection<string> members, CancellationToken cancellationToken = default) =>
        AdminAsync(AdminOp.Create, tenantId, chatId, members, cancellationToken);

    /// <inheritdoc />
    public ValueTask<AdminResult> AddMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default) =>
        AdminAsync(AdminOp.Add, tenantId, chatId, [userId], cancellationToken);

    /// <inheritdoc />
    public ValueTask<AdminResult> RemoveMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default) =>
        AdminAsync(AdminOp.Remove, tenantId, chatId, [userId], cancellationToken);

    /// <inheritdoc />
    public async ValueTask<ulong> GetHeadAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
    {
        var reply = await ReadAsync(new ReadKey(ReadOp.Head, tenantId, chatId, 0, null, 0), cancellationToken).ConfigureAwait(false);
        RpcCodec.OpenReadReply(Payload.Of(reply), out var head);
        return head;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ChatMessage>> ReadAfterAsync(string tenantId, string chatId, ulong afterSeq, int limit, CancellationToken cancellationToken = default) =>
        (await ReadCatchUpAsync(tenantId, chatId, afterSeq, limit, cancellationToken).ConfigureAwait(false)).Page;

    /// <inheritdoc />
    public async ValueTask<(ulong Head, IReadOnlyList<ChatMessage> Page)> ReadCatchUpAsync(string tenantId, string chatId, ulong afterSeq, int limit, CancellationToken cancellationToken = default)
    {
        var reply = await ReadAsync(new ReadKey(ReadOp.After, tenantId, chatId, afterSeq, null, limit), cancellationToken).ConfigureAwait(false);
        var r = RpcCodec.OpenReadReply(Payload.Of(reply), out var head);
        return (head, ReadMessages(ref r, tenantId, chatId));
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ChatMessage>> ReadBeforeAsync(string tenantId, string chatId, ulong beforeSeq, int limit, CancellationToken cancellationToken = default)
    {
        var reply = await ReadAsync(new ReadKey(ReadOp.Before, tenantId, chatId, beforeSeq, null, limit), cancellationToken).ConfigureAwait(false);
        var r = RpcCodec.OpenReadReply(Payload.Of(reply), out _);
        return ReadMessages(ref r, tenantId, chatId);
    }

    /// <inheritdoc />
    public async ValueTask<bool> IsMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default)
    {
        // Not coalesced: every check must see removals committed before it (the writer shares log reads safely).
        var reply = await RequestOrThrowAsync(RpcCodec.EncodeRead(new ReadKey(ReadOp.IsMember, tenantId, chatId, 0, userId, 0)), cancellationToken).ConfigureAwait(false);
        var r = RpcCodec.OpenReadReply(Payload.Of(reply), out _);
        return r.ReadBoolean();
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<string>> GetMembersAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
    {
        var reply = await RequestOrThrowAsync(RpcCodec.EncodeRead(new ReadKey(ReadOp.Members, tenantId, chatId, 0, null, 0)), cancellationToken).ConfigureAwait(false);
        var r = RpcCodec.OpenReadReply(Payload.Of(reply), out _);
        return WireCodec.ReadStrings(ref r);
    }

    private static List<ChatMessage> ReadMessages(ref MessagePackReader r, string tenantId, string chatId)
    {
        var n = r.ReadArrayHeader();
        var list = new List<ChatMessage>(n);
        for (var i = 0; i < n; i++)
        {
            list.Add(WireCodec.ReadMessageBody(ref r, tenantId, chatId));
        }

        return list;
    }

    private async ValueTask<AdminResult> AdminAsync(AdminOp op, string tenantId, string chatId, IReadOnlyCollection<string> users, CancellationToken cancellationToken)
    {
        var reply = await RequestAsync(Subjects.RpcAdmin, RpcCodec.EncodeAdmin(op, tenantId, chatId, users), cancellationToken).ConfigureAwait(false);
        return reply is null
            ? AdminResult.Fail(ErrorCode.Unavailable, "no writer answered in time; retry")
            : RpcCodec.DecodeAdminResult(Payload.Of(reply));
    }

    private async Task<byte[]> ReadAsync(ReadKey key, CancellationToken cancellationToken) =>
        await _reads.RunAsync(key, k => RequestOrThrowAsync(RpcCodec.EncodeRead(k), CancellationToken.None)).WaitAsync(cancellationToken).ConfigureAwait(false);

    private async Task<byte[]> RequestOrThrowAsync(byte[] request, CancellationToken cancellationToken) =>
        await RequestAsync(Subjects.RpcRead, request, cancellationToken).ConfigureAwait(false)
        ?? throw new RemoteException(ErrorCode.Unavailable, "no writer answered in time");

    /// <summary>Sends a request, retrying on timeouts, "no responders" and <see cref="ErrorCode.Unavailable"/> answers until
    /// the command deadline; null when it passed with no answer, else the last answer.</summary>
    /// <remarks>Every request is safe to repeat (a send carries its idempotency key; membership changes and reads are
    /// idempotent). A writer answers Unavailable when its commit log or its projection cannot serve now; the queue group
    /// picks a writer per request, so a retry usually reaches another one.</remarks>
    private async Task<byte[]?> RequestAsync(string subject, byte[] request, CancellationToken cancellationToken, NatsHeaders? headers = null)
    {
        var startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        var deadline = Environment.TickCount64 + _options.CommandDeadlineMs;
        var replyOpts = new NatsSubOpts { Timeout = TimeSpan.FromMilliseconds(_options.RequestTimeoutMs) };
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // Our own timeout as well as the reply timeout: while NATS is disconnected, the request's publish itself waits
            // for the reconnect, and the reply timer has not started yet.
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            attempt.CancelAfter(_options.RequestTimeoutMs);
            try
            {
                var reply = await _connection.RequestAsync<byte[], byte[]>(subject, request, headers, replyOpts: replyOpts, cancellationToken: attempt.Token).ConfigureAwait(false);
                if (!RpcCodec.IsUnavailable(reply.Data) || Environment.TickCount64 + RetryPause.TotalMilliseconds >= deadline)
                {
                    NatsMetrics.RecordRpc(subject, RpcCodec.IsUnavailable(reply.Data) ? "unavailable" : "ok", startedAt);
                    return reply.Data;
                }

                await Task.Delay(RetryPause, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NatsException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                if (Environment.TickCount64 + RetryPause.TotalMilliseconds >= deadline)
                {
                    NatsMetrics.RecordRpc(subject, "timeout", startedAt);
                    return null;
                }

                // No writer subscribed (all restarting) answers at once: pause rather than spin.
                await Task.Delay(RetryPause, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
