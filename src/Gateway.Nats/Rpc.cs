using System.Buffers;
using Gateway.Domain;
using Gateway.Domain.Ports;
using Gateway.Protocol;
using MessagePack;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;

namespace Gateway.Nats;

/// <summary>Operations of <see cref="Subjects.RpcRead"/>.</summary>
internal enum ReadOp
{
    Head = 1,
    After = 2,
    Before = 3,
    IsMember = 4,
    Members = 5,
}

/// <summary>Operations of <see cref="Subjects.RpcAdmin"/>.</summary>
internal enum AdminOp
{
    Create = 1,
    Add = 2,
    Remove = 3,
}

/// <summary>Key of a coalesced read.</summary>
internal readonly record struct ReadKey(ReadOp Op, string TenantId, string ChatId, ulong Seq, string? UserId, int Limit);

/// <summary>Encodings of the gateway ↔ writer requests and replies (see PROTOCOL.md's companion, README "Distributed mode").</summary>
internal static class RpcCodec
{
    public static byte[] Encode<TState>(TState state, WriteAction<TState> write, int sizeHint = 256)
    {
        var buffer = new ArrayBufferWriter<byte>(sizeHint);
        var w = new MessagePackWriter(buffer);
        write(ref w, state);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    public delegate void WriteAction<TState>(ref MessagePackWriter w, TState state);

    public static byte[] EncodeSend(SendMessage c) => Encode(c, static (ref MessagePackWriter w, SendMessage c) =>
    {
        w.WriteArrayHeader(8);
        w.Write(c.TenantId);
        w.Write(c.ChatId);
        w.Write(c.SenderId);
        w.Write(c.ClientMessageId);
        w.Write(c.ContentType);
        w.Write(c.Content.Span);
        if (c.ExpiresAt is { } e)
        {
            w.Write(e);
        }
        else
        {
            w.WriteNil();
        }

        WireCodec.WriteNullable(ref w, c.TraceId);
    }, 256 + c.Content.Length);

    /// <summary>Reads what <see cref="EncodeSend"/> wrote. The content is a slice of <paramref name="bytes"/>, not a copy:
    /// the send owns it from here (<see cref="IWriteService.SendAsync"/>), so the caller hands over a request that nothing
    /// reuses (the writer's requests are arrays NATS allocated for each message).</summary>
    public static SendMessage DecodeSend(ReadOnlySequence<byte> bytes)
    {
        var r = new MessagePackReader(bytes);
        var n = r.ReadArrayHeader();
        var c = new SendMessage(r.ReadString()!, r.ReadString()!, r.ReadString()!, r.ReadString()!, r.ReadString()!,
            r.ReadBytes() is { } b ? Contiguous(b) : ReadOnlyMemory<byte>.Empty, r.TryReadNil() ? null : r.ReadInt64(), WireCodec.ReadNullableString(ref r));
        SkipRest(ref r, n, 8);
        return c;
    }

    public static byte[] EncodeSendResult(SendResult s) => Encode(s, static (ref MessagePackWriter w, SendResult s) =>
    {
        w.WriteArrayHeader(6);
        w.Write((int)s.Error);
        WireCodec.WriteNullable(ref w, s.ErrorMessage);
        w.Write(s.Seq);
        WireCodec.WriteNullable(ref w, s.MessageId);
        w.Write(s.SentAt);
        w.Write(s.Duplicate);
    });

    public static SendResult DecodeSendResult(ReadOnlySequence<byte> bytes)
    {
        var r = new MessagePackReader(bytes);
        var n = r.ReadArrayHeader();
        var s = new SendResult(WireCodec.ReadError(ref r), WireCodec.ReadNullableString(ref r), r.ReadUInt64(), WireCodec.ReadNullableString(ref r), r.ReadInt64(), r.ReadBoolean());
        SkipRest(ref r, n, 6);
        return s;
    }

    public static byte[] EncodeAdmin(AdminOp op, string tenantId, string chatId, IReadOnlyCollection<string> users) =>
        Encode((op, tenantId, chatId, users), static (ref MessagePackWriter w, (AdminOp Op, string T, string C, IReadOnlyCollection<string> U) a) =>
        {
            w.WriteArrayHeader(4);
            w.Write((int)a.Op);
            w.Write(a.T);
            w.Write(a.C);
            WireCodec.WriteStrings(ref w, a.U);
        });

    public static byte[] EncodeAdminResult(AdminResult a) => Encode(a, static (ref MessagePackWriter w, AdminResult a) =>
    {
        w.WriteArrayHeader(2);
        w.Write((int)a.Error);
        WireCodec.WriteNullable(ref w, a.ErrorMessage);
    });

    public static AdminResult DecodeAdminResult(ReadOnlySequence<byte> bytes)
    {
        var r = new MessagePackReader(bytes);
        var n = r.ReadArrayHeader();
        var a = new AdminResult(WireCodec.ReadError(ref r), WireCodec.ReadNullableString(ref r));
        SkipRest(ref r, n, 2);
        return a;
    }

    public static byte[] EncodeRead(ReadKey k) => Encode(k, static (ref MessagePackWriter w, ReadKey k) =>
    {
        w.WriteArrayHeader(6);
        w.Write((int)k.Op);
        w.Write(k.TenantId);
        w.Write(k.ChatId);
        w.Write(k.Seq);
        WireCodec.WriteNullable(ref w, k.UserId);
        w.Write(k.Limit);
    });

    public static ReadKey DecodeRead(ReadOnlySequence<byte> bytes)
    {
        var r = new MessagePackReader(bytes);
        var n = r.ReadArrayHeader();
        var k = new ReadKey((ReadOp)r.ReadInt32(), r.ReadString()!, r.ReadString()!, r.ReadUInt64(), WireCodec.ReadNullableString(ref r), r.ReadInt32());
        SkipRest(ref r, n, 6);
        return k;
    }

    /// <summary>A read reply: [error, message, head, messages[] | bool | users[]].</summary>
    public static byte[] EncodeReadReply(ulong head, IReadOnlyList<ChatMessage>? messages, bool? flag, IReadOnlyList<string>? users) =>
        Encode((head, messages, flag, users), static (ref MessagePackWriter w, (ulong Head, IReadOnlyList<ChatMessage>? M, bool? F, IReadOnlyList<string>? U) x) =>
        {
            w.WriteArrayHeader(4);
            w.Write(0);
            w.WriteNil();
            w.Write(x.Head);
            if (x.M is { } messages)
            {
                w.WriteArrayHeader(messages.Count);
                foreach (var m in messages)
                {
                    WireCodec.WriteMessageBody(ref w, m);
                }
            }
            else if (x.F is { } flag)
            {
                w.Write(flag);
            }
            else if (x.U is { } users)
            {
                WireCodec.WriteStrings(ref w, users);
            }
            else
            {
                w.WriteNil();
            }
        }, 256 + (messages?.Sum(m => m.Content.Length + 128) ?? 0));

    public static byte[] EncodeError(ErrorCode code, string message) => Encode((code, message), static (ref MessagePackWriter w, (ErrorCode C, string M) e) =>
    {
        w.WriteArrayHeader(2);
        w.Write((int)e.C);
        w.Write(e.M);
    });

    /// <summary>True when a reply (of any request kind: every reply starts with its error code) says Unavailable.</summary>
    public static bool IsUnavailable(byte[]? reply)
    {
        if (reply is null || reply.Length == 0)
        {
            return false;
        }

        try
        {
            var r = new MessagePackReader(reply);
            return r.ReadArrayHeader() > 0 && r.NextMessagePackType == MessagePackType.Integer && r.ReadInt32() == (int)ErrorCode.Unavailable;
        }
        catch (MessagePackSerializationException)
        {
            return false;
        }
    }

    /// <summary>Decodes a read reply's header; throws <see cref="RemoteException"/> for an error reply.</summary>
    public static MessagePackReader OpenReadReply(ReadOnlySequence<byte> bytes, out ulong head)
    {
        var r = new MessagePackReader(bytes);
        r.ReadArrayHeader();
        var code = WireCodec.ReadError(ref r);
        var message = WireCodec.ReadNullableString(ref r);
        if (code != ErrorCode.None)
        {
            throw new RemoteException(code, message ?? code.ToString());
        }

        head = r.ReadUInt64();
        return r;
    }

    // A request in one array (every request the writer serves) is sliced; only a request split across segments has to
    // be joined into one array.
    private static ReadOnlyMemory<byte> Contiguous(ReadOnlySequence<byte> bytes) => bytes.IsSingleSegment ? bytes.First : bytes.ToArray();

    private static void SkipRest(ref MessagePackReader r, int n, int known)
    {
        for (var i = known; i < n; i++)
        {
            r.Skip();
        }
    }
}

/// <summary>A writer answered a read with an error, or could not be reached in time.</summary>
public sealed class RemoteException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RemoteException(ErrorCode code, string message)
        : base(message) => Code = code;

    /// <summary>Creates the exception.</summary>
    public RemoteException()
        : this(ErrorCode.Unavailable, "unavailable")
    {
    }

    /// <summary>Creates the exception.</summary>
    public RemoteException(string message)
        : this(ErrorCode.Unavailable, message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public RemoteException(string message, Exception innerException)
        : base(message, innerException) => Code = ErrorCode.Unavailable;

    /// <summary>The error code.</summary>
    public ErrorCode Code { get; }
}

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
                // coalesced callers), so a catch-up never stops short of an acknowledged message. Then head first, from
                // the same store: every seq up to it is in the store, so a short page means "all seen".
                await _writer.WaitForHistoryAsync(k.TenantId, k.ChatId, ct).ConfigureAwait(false);
                var head = await _history.GetHeadAsync(k.TenantId, k.ChatId, ct).ConfigureAwait(false);
                var page = await _history.ReadAfterAsync(k.TenantId, k.ChatId, k.Seq, k.Limit, ct).ConfigureAwait(false);
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
