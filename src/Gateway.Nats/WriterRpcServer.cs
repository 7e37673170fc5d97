using System.Buffers;
using Gateway.Domain;
using Gateway.Domain.Ports;
using Gateway.Protocol;
using MessagePack;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;

namespace Gateway.Nats;

/// <summary>
/// The writer role's request handlers: sends and membership changes go to the <see cref="NatsWriteService"/>, reads to
/// the local history store (coalesced). Served in the queue group <see cref="Subjects.WriterQueue"/>, so any number of
/// writers share the load and a gateway needs no list of them.
/// </summary>
public sealed class WriterRpcServer : IAsyncDisposable
{
    private readonly INatsConnection _connection;
    private readonly NatsWriteService _writer;
    private readonly IMessageHistory _history;
    private readonly ILogger _logger;
    private readonly Coalescer<ReadKey, byte[]> _reads = new();
    private readonly CancellationTokenSource _stop = new();
    private int _disposed;
    private readonly List<Task> _loops = [];

    // Requests handled at once by this writer. Beyond it the subscription loops stop taking requests: NATS buffers them,
    // then drops them as a slow consumer, and the gateways' retries (same idempotency key) find another writer or wait.
    // 1,024 covers ~1k chats sending at once, each serialized on its chat, without letting a flood pile up tasks.
    private readonly SemaphoreSlim _inFlight = new(MaxInFlight, MaxInFlight);
    private const int MaxInFlight = 1024;

    /// <summary>Creates the server; <see cref="StartAsync"/> subscribes.</summary>
    public WriterRpcServer(INatsConnection connection, NatsWriteService writer, IMessageHistory history, ILogger logger)
    {
        _connection = connection;
        _writer = writer;
        _history = history;
        _logger = logger;
    }

    /// <summary>Subscribes to the request subjects (confirmed by the server before this returns).</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var (subject, handler) in new (string, Func<ReadOnlySequence<byte>, NatsHeaders?, Task<byte[]>>)[]
                 {
                     (Subjects.RpcSend, HandleSendAsync),
                     (Subjects.RpcAdmin, (request, _) => HandleAdminAsync(request)),
                     (Subjects.RpcRead, (request, _) => HandleReadAsync(request)),
                 })
        {
            var sub = await _connection.SubscribeCoreAsync<byte[]>(subject, Subjects.WriterQueue, cancellationToken: cancellationToken).ConfigureAwait(false);
            _loops.Add(Task.Run(() => ServeAsync(sub, handler), CancellationToken.None));
        }

        await _connection.PingAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops serving.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_loops).ConfigureAwait(false);
        _stop.Dispose();
    }

    private async Task ServeAsync(INatsSub<byte[]> sub, Func<ReadOnlySequence<byte>, NatsHeaders?, Task<byte[]>> handler)
    {
        await using (sub.ConfigureAwait(false))
        {
            try
            {
                await foreach (var msg in sub.Msgs.ReadAllAsync(_stop.Token).ConfigureAwait(false))
                {
                    // Requests run concurrently: one chat's are serialized inside the write service, others proceed.
                    await _inFlight.WaitAsync(_stop.Token).ConfigureAwait(false);
                    _ = HandleAsync(msg, handler);
                }
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private async Task HandleAsync(NatsMsg<byte[]> msg, Func<ReadOnlySequence<byte>, NatsHeaders?, Task<byte[]>> handler)
    {
        byte[] reply;
        try
        {
            reply = await handler(Payload.Of(msg.Data), msg.Headers).ConfigureAwait(false);
        }
        catch (MessagePackSerializationException e)
        {
            reply = RpcCodec.EncodeError(ErrorCode.InvalidFrame, "malformed request: " + e.Message);
        }
        catch (ProjectionUnavailableException e)
        {
            reply = RpcCodec.EncodeError(ErrorCode.Unavailable, "this writer's history is behind the log; retry: " + e.Message);
        }
        catch (Exception e) when (e is NatsException or TimeoutException)
        {
            reply = RpcCodec.EncodeError(ErrorCode.Unavailable, "the commit log is unavailable; retry");
        }
        catch (StoreUnavailableException e)
        {
            _logger.LogWarning("Request on {Subject}: {Reason}", msg.Subject, e.Message);
            reply = RpcCodec.EncodeError(ErrorCode.Unavailable, "the history store is unavailable; retry");
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Request on {Subject} failed", msg.Subject);
            reply = RpcCodec.EncodeError(ErrorCode.Internal, "internal error in the writer; retry");
        }

        try
        {
            await msg.ReplyAsync(reply).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _logger.LogWarning(e, "Reply on {Subject} failed (the caller retries)", msg.Subject);
        }
        finally
        {
            _inFlight.Release();
        }
    }

    private async Task<byte[]> HandleSendAsync(ReadOnlySequence<byte> request, NatsHeaders? headers)
    {
        var command = RpcCodec.DecodeSend(request);

        // The context of the request's headers (the gateway's RPC span), else the payload's traceId (a gateway that
        // sends no headers). The command goes on with the server span's context, so the append continues from it.
        var (traceParent, traceState) = NatsTrace.Read(headers);
        if (traceParent is not null || GatewayTracing.Enabled)
        {
            traceParent ??= command.TraceId;
            var span = GatewayTracing.Start(GatewayTracing.RpcSend, System.Diagnostics.ActivityKind.Server, traceParent, traceState);
            span?.SetTag(GatewayTracing.MessagingSystemTag, "nats");
            span?.SetTag(GatewayTracing.DestinationTag, Subjects.RpcSend);
            span?.SetTag(GatewayTracing.TenantTag, command.TenantId);
            span?.SetTag(GatewayTracing.ChatTag, command.ChatId);
            command = command with { TraceId = GatewayTracing.Propagate(span, traceParent), TraceState = GatewayTracing.PropagateState(span, traceState) };
            try
            {
                var traced = await _writer.SendAsync(command, _stop.Token).ConfigureAwait(false);
                GatewayTracing.StopSend(span, traced);
                return RpcCodec.EncodeSendResult(traced);
            }
            finally
            {
                span?.Dispose(); // stopped already unless the send threw
            }
        }

        var result = await _writer.SendAsync(command, _stop.Token).ConfigureAwait(false);
        return RpcCodec.EncodeSendResult(result);
    }

    private async Task<byte[]> HandleAdminAsync(ReadOnlySequence<byte> request)
    {
        var r = new MessagePackReader(request);
        r.ReadArrayHeader();
        var op = (AdminOp)r.ReadInt32();
        var tenant = r.ReadString()!;
        var chat = r.ReadString()!;
        var users = WireCodec.ReadStrings(ref r);
        var result = op switch
        {
            AdminOp.Create => await _writer.CreateChatAsync(tenant, chat, users, _stop.Token).ConfigureAwait(false),
            AdminOp.Add when users.Length == 1 => await _writer.AddMemberAsync(tenant, chat, users[0], _stop.Token).ConfigureAwait(false),
            AdminOp.Remove when users.Length == 1 => await _writer.RemoveMemberAsync(tenant, chat, users[0], _stop.Token).ConfigureAwait(false),
            _ => AdminResult.Fail(ErrorCode.InvalidFrame, "unknown admin operation"),
        };
        return RpcCodec.EncodeAdminResult(result);
    }

    private Task<byte[]> HandleReadAsync(ReadOnlySequence<byte> request)
    {
        var key = RpcCodec.DecodeRead(request);
        if (!Validation.IsValidId(key.TenantId) || !Validation.IsValidId(key.ChatId) || key.Limit is < 0 or > 1000)
        {
            return Task.FromResult(RpcCodec.EncodeError(ErrorCode.ValidationFailed, "malformed read"));
        }

        // Membership checks are not coalesced here: the write service shares log reads among them itself, in a way that
        // never answers from a state older than the request (revocation depends on it).
        return key.Op is ReadOp.IsMember or ReadOp.Members ? ReadAsync(key) : _reads.RunAsync(key, ReadAsync);
    }

    private async Task<byte[]> ReadAsync(ReadKey k)
    {
        var ct = _stop.Token;
        switch (k.Op)
        {
            case ReadOp.Head:
                await _writer.WaitForHistoryAsync(k.TenantId, k.ChatId, ct).ConfigureAwait(false);
                return RpcCodec.EncodeReadReply(await _history.GetHeadAsync(k.TenantId, k.ChatId, ct).ConfigureAwait(false), null, null, null);
            case ReadOp.After:
                // The store first catches up with the log as it was when the read began (one log read, shared by the
                // coalesced callers), so a catch-up never stops short of an acknowledged message. Then head and page in
                // one read of the store: every seq up to the head is in it and the page stops there, so a short page
                // means "all seen".
                await _writer.WaitForHistoryAsync(k.TenantId, k.ChatId, ct).ConfigureAwait(false);
                var (head, page) = await _history.ReadCatchUpAsync(k.TenantId, k.ChatId, k.Seq, k.Limit, ct).ConfigureAwait(false);
                return RpcCodec.EncodeReadReply(head, page, null, null);
            case ReadOp.Before:
                return RpcCodec.EncodeReadReply(0, await _history.ReadBeforeAsync(k.TenantId, k.ChatId, k.Seq, k.Limit, ct).ConfigureAwait(false), null, null);
            case ReadOp.IsMember:
                return RpcCodec.EncodeReadReply(0, null, await _writer.IsMemberAsync(k.TenantId, k.ChatId, k.UserId ?? "", ct).ConfigureAwait(false), null);
            case ReadOp.Members:
                return RpcCodec.EncodeReadReply(0, null, null, await _writer.GetMembersAsync(k.TenantId, k.ChatId, ct).ConfigureAwait(false));
            default:
                return RpcCodec.EncodeError(ErrorCode.InvalidFrame, "unknown read operation");
        }
    }
}
