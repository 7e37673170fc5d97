using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gateway.Protocol.Tests;

/// <summary>
/// Maps frames to and from the <c>decoded</c> form of the golden vectors (field names as in PROTOCOL.md,
/// binary as base64, nil as null).
/// </summary>
public static class VectorJson
{
    /// <summary>The decoded form of a client frame read by <see cref="ClientFrameReader"/>.</summary>
    public static JsonObject FromClientFrame(in ClientFrame frame)
    {
        var o = new JsonObject { ["type"] = (int)frame.Type, ["requestId"] = frame.RequestId };
        switch (frame.Type)
        {
            case FrameType.Subscribe:
                var cursors = new JsonArray();
                var items = new SubscribeItemReader(frame);
                while (items.TryNext(out var chatId, out var afterSeq))
                {
                    cursors.Add(new JsonObject { ["chatId"] = Utf8(chatId), ["afterSeq"] = afterSeq });
                }

                o["cursors"] = cursors;
                break;
            case FrameType.Unsubscribe:
                var ids = new JsonArray();
                var entries = new SubscribeItemReader(frame);
                while (entries.TryNext(out var chatId, out _))
                {
                    ids.Add(Utf8(chatId));
                }

                o["chatIds"] = ids;
                break;
            case FrameType.Send:
                o["chatId"] = Utf8(frame.ChatId);
                o["clientMessageId"] = Utf8(frame.ClientMessageId);
                o["contentType"] = Utf8(frame.ContentType);
                o["content"] = Convert.ToBase64String(frame.Content.ToArray());
                o["expiresAt"] = frame.ExpiresAt;
                if (!frame.TraceParent.IsEmpty)
                {
                    o["traceparent"] = Utf8(frame.TraceParent);
                }

                if (!frame.TraceState.IsEmpty)
                {
                    o["tracestate"] = Utf8(frame.TraceState);
                }

                break;
            case FrameType.History:
                o["chatId"] = Utf8(frame.ChatId);
                o["beforeSeq"] = frame.BeforeSeq;
                o["limit"] = frame.Limit;
                break;
            case FrameType.Typing:
                o["chatId"] = Utf8(frame.ChatId);
                break;
            case FrameType.RefreshToken:
                o["token"] = Utf8(frame.Token);
                break;
            default:
                throw new InvalidOperationException($"Not a client frame type: {frame.Type}.");
        }

        return o;
    }

    /// <summary>The decoded form of a server frame, or null for a frame the client ignores.</summary>
    public static JsonObject? FromServerFrame(ServerFrame? frame) => frame switch
    {
        null => null,
        HelloFrame h => new JsonObject
        {
            ["type"] = 32,
            ["version"] = h.Version,
            ["sessionId"] = h.SessionId,
            ["tenantId"] = h.TenantId,
            ["userId"] = h.UserId,
            ["maxMessageBytes"] = h.MaxMessageBytes,
            ["maxContentBytes"] = h.MaxContentBytes,
            ["heartbeatSeconds"] = h.HeartbeatSeconds,
            ["tokenExpiresAt"] = h.TokenExpiresAt,
        },
        SubscribedFrame s => new JsonObject
        {
            ["type"] = 33,
            ["requestId"] = s.RequestId,
            ["results"] = new JsonArray(s.Results.Select(r => (JsonNode)new JsonObject
            {
                ["chatId"] = r.ChatId,
                ["code"] = (int)r.Code,
                ["headSeq"] = r.HeadSeq,
            }).ToArray()),
        },
        UnsubscribedFrame u => new JsonObject { ["type"] = 34, ["requestId"] = u.RequestId },
        SendAckFrame a => new JsonObject
        {
            ["type"] = 35,
            ["requestId"] = a.RequestId,
            ["chatId"] = a.ChatId,
            ["seq"] = a.Seq,
            ["messageId"] = a.MessageId,
            ["sentAt"] = a.SentAt,
            ["duplicate"] = a.Duplicate,
        },
        ErrorFrame e => ErrorObject(e),
        MessageFrame m => WithBody(new JsonObject { ["type"] = 37, ["chatId"] = m.ChatId }, m.Message),
        CaughtUpFrame c => new JsonObject { ["type"] = 38, ["chatId"] = c.ChatId, ["seq"] = c.Seq },
        HistoryPageFrame p => new JsonObject
        {
            ["type"] = 39,
            ["requestId"] = p.RequestId,
            ["chatId"] = p.ChatId,
            ["messages"] = new JsonArray(p.Messages.Select(m => (JsonNode)WithBody([], m)).ToArray()),
            ["hasMore"] = p.HasMore,
        },
        RevokedFrame r => new JsonObject { ["type"] = 40, ["chatId"] = r.ChatId, ["code"] = (int)r.Code, ["message"] = r.Message },
        TokenRefreshedFrame t => new JsonObject { ["type"] = 41, ["requestId"] = t.RequestId, ["expiresAt"] = t.ExpiresAt },
        UserTypingFrame u => new JsonObject { ["type"] = 42, ["chatId"] = u.ChatId, ["userId"] = u.UserId },
        TokenExpiringFrame x => new JsonObject { ["type"] = 43, ["expiresAt"] = x.ExpiresAt, ["closeAt"] = x.CloseAt },
        DrainFrame d => new JsonObject { ["type"] = 44, ["reconnectAfterMs"] = d.ReconnectAfterMs, ["message"] = d.Message },
        _ => throw new InvalidOperationException($"Unexpected server frame {frame.GetType().Name}."),
    };

    /// <summary>Writes a client frame from its decoded form with <see cref="ClientFrameWriter"/>.</summary>
    public static byte[] EncodeClient(JsonElement d)
    {
        var output = new ArrayBufferWriter<byte>();
        var requestId = d.GetProperty("requestId").GetUInt32();
        switch ((FrameType)d.GetProperty("type").GetInt32())
        {
            case FrameType.Subscribe:
                var cursors = d.GetProperty("cursors").EnumerateArray()
                    .Select(c => new ChatCursor(c.GetProperty("chatId").GetString()!, c.GetProperty("afterSeq").GetUInt64()))
                    .ToList();
                ClientFrameWriter.WriteSubscribe(output, requestId, cursors);
                break;
            case FrameType.Unsubscribe:
                ClientFrameWriter.WriteUnsubscribe(output, requestId, d.GetProperty("chatIds").EnumerateArray().Select(c => c.GetString()!).ToList());
                break;
            case FrameType.Send:
                ClientFrameWriter.WriteSend(output, requestId, Str(d, "chatId"), Str(d, "clientMessageId"), Str(d, "contentType"),
                    d.GetProperty("content").GetBytesFromBase64(), NullableInt64(d, "expiresAt"), OptionalStr(d, "traceparent"), OptionalStr(d, "tracestate"));
                break;
            case FrameType.History:
                ClientFrameWriter.WriteHistory(output, requestId, Str(d, "chatId"), d.GetProperty("beforeSeq").GetUInt64(), d.GetProperty("limit").GetUInt32());
                break;
            case FrameType.Typing:
                ClientFrameWriter.WriteTyping(output, requestId, Str(d, "chatId"));
                break;
            case FrameType.RefreshToken:
                ClientFrameWriter.WriteRefreshToken(output, requestId, Str(d, "token"));
                break;
            default:
                throw new InvalidOperationException("Not a client frame: " + d);
        }

        return output.WrittenSpan.ToArray();
    }

    /// <summary>Builds the server frame record described by a decoded form.</summary>
    public static ServerFrame ToServerFrame(JsonElement d) => (FrameType)d.GetProperty("type").GetInt32() switch
    {
        FrameType.Hello => new HelloFrame(d.GetProperty("version").GetUInt32(), Str(d, "sessionId"), Str(d, "tenantId"), Str(d, "userId"),
            d.GetProperty("maxMessageBytes").GetUInt32(), d.GetProperty("maxContentBytes").GetUInt32(),
            d.GetProperty("heartbeatSeconds").GetUInt32(), d.GetProperty("tokenExpiresAt").GetInt64()),
        FrameType.Subscribed => new SubscribedFrame(RequestId(d), d.GetProperty("results").EnumerateArray()
            .Select(r => new SubscribeResult(Str(r, "chatId"), (ErrorCode)r.GetProperty("code").GetUInt16(), r.GetProperty("headSeq").GetUInt64()))
            .ToArray()),
        FrameType.Unsubscribed => new UnsubscribedFrame(RequestId(d)),
        FrameType.SendAck => new SendAckFrame(RequestId(d), Str(d, "chatId"), d.GetProperty("seq").GetUInt64(), Str(d, "messageId"),
            d.GetProperty("sentAt").GetInt64(), d.GetProperty("duplicate").GetBoolean()),
        FrameType.Error => new ErrorFrame(RequestId(d), (ErrorCode)d.GetProperty("code").GetUInt16(), Str(d, "message"),
            d.TryGetProperty("retryAfterMs", out var retry) ? retry.GetUInt32() : 0),
        FrameType.Message => new MessageFrame(Str(d, "chatId"), Body(d)),
        FrameType.CaughtUp => new CaughtUpFrame(Str(d, "chatId"), d.GetProperty("seq").GetUInt64()),
        FrameType.HistoryPage => new HistoryPageFrame(RequestId(d), Str(d, "chatId"),
            d.GetProperty("messages").EnumerateArray().Select(Body).ToArray(), d.GetProperty("hasMore").GetBoolean()),
        FrameType.Revoked => new RevokedFrame(Str(d, "chatId"), (ErrorCode)d.GetProperty("code").GetUInt16(), Str(d, "message")),
        FrameType.TokenRefreshed => new TokenRefreshedFrame(RequestId(d), d.GetProperty("expiresAt").GetInt64()),
        FrameType.UserTyping => new UserTypingFrame(Str(d, "chatId"), Str(d, "userId")),
        FrameType.TokenExpiring => new TokenExpiringFrame(d.GetProperty("expiresAt").GetInt64(), d.GetProperty("closeAt").GetInt64()),
        FrameType.Drain => new DrainFrame(d.GetProperty("reconnectAfterMs").GetUInt32(), Str(d, "message")),
        var t => throw new InvalidOperationException($"Not a server frame type: {t}."),
    };

    // retryAfterMs is optional on the wire and in the vectors: present only when non-zero (0 means "no hint").
    private static JsonObject ErrorObject(ErrorFrame e)
    {
        var o = new JsonObject { ["type"] = 36, ["requestId"] = e.RequestId, ["code"] = (int)e.Code, ["message"] = e.Message };
        if (e.RetryAfterMs > 0)
        {
            o["retryAfterMs"] = e.RetryAfterMs;
        }

        return o;
    }

    private static JsonObject WithBody(JsonObject o, MessageFields m)
    {
        o["seq"] = m.Seq;
        o["messageId"] = m.MessageId;
        o["senderId"] = m.SenderId;
        o["sentAt"] = m.SentAt;
        o["contentType"] = m.ContentType;
        o["content"] = Convert.ToBase64String(m.Content.Span);
        o["expiresAt"] = m.ExpiresAt;
        return o;
    }

    private static MessageFields Body(JsonElement d) => new(
        d.GetProperty("seq").GetUInt64(), Str(d, "messageId"), Str(d, "senderId"), d.GetProperty("sentAt").GetInt64(),
        Str(d, "contentType"), d.GetProperty("content").GetBytesFromBase64(), NullableInt64(d, "expiresAt"));

    private static uint RequestId(JsonElement d) => d.GetProperty("requestId").GetUInt32();

    private static string Str(JsonElement d, string name) => d.GetProperty(name).GetString()!;

    private static string? OptionalStr(JsonElement d, string name) => d.TryGetProperty(name, out var v) ? v.GetString() : null;

    private static long? NullableInt64(JsonElement d, string name) =>
        d.GetProperty(name).ValueKind == JsonValueKind.Null ? null : d.GetProperty(name).GetInt64();

    // The codec does not validate UTF-8 (the server does, per field); a strict decoder makes a bad vector fail loudly.
    private static string Utf8(ReadOnlySequence<byte> bytes) =>
        new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes);
}

/// <summary>Field-by-field comparison of a decoded form with the vector's, naming the first differing path.</summary>
public static class JsonAssert
{
    public static void Equal(JsonElement expected, JsonNode? actual, string path = "$")
    {
        var actualElement = JsonSerializer.SerializeToElement(actual);
        Compare(expected, actualElement, path);
    }

    private static void Compare(JsonElement expected, JsonElement actual, string path)
    {
        Assert.True(expected.ValueKind == actual.ValueKind,
            $"{path}: expected {expected.ValueKind} {expected.GetRawText()}, got {actual.ValueKind} {actual.GetRawText()}");
        switch (expected.ValueKind)
        {
            case JsonValueKind.Object:
                var expectedNames = expected.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
                var actualNames = actual.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
                Assert.True(expectedNames.SequenceEqual(actualNames),
                    $"{path}: expected fields [{string.Join(", ", expectedNames)}], got [{string.Join(", ", actualNames)}]");
                foreach (var p in expected.EnumerateObject())
                {
                    Compare(p.Value, actual.GetProperty(p.Name), path + "." + p.Name);
                }

                break;
            case JsonValueKind.Array:
                Assert.True(expected.GetArrayLength() == actual.GetArrayLength(),
                    $"{path}: expected {expected.GetArrayLength()} elements, got {actual.GetArrayLength()}");
                for (var i = 0; i < expected.GetArrayLength(); i++)
                {
                    Compare(expected[i], actual[i], $"{path}[{i}]");
                }

                break;
            case JsonValueKind.Number:
                // decimal holds every int64 and uint64 exactly, so 1e3 and 1000 compare equal and nothing rounds.
                Assert.True(expected.GetDecimal() == actual.GetDecimal(), $"{path}: expected {expected.GetRawText()}, got {actual.GetRawText()}");
                break;
            case JsonValueKind.String:
                Assert.True(expected.GetString() == actual.GetString(), $"{path}: expected {expected.GetRawText()}, got {actual.GetRawText()}");
                break;
            default:
                // true, false and null: the kind check above is the whole comparison.
                break;
        }
    }
}
