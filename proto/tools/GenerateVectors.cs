#:project ../../src/Gateway.Protocol/Gateway.Protocol.csproj
#:property GenerateDocumentationFile=true
#:property NoWarn=$(NoWarn);CS1591

// Regenerates proto/vectors/*.json from the codec's own writers:
//   dotnet run proto/tools/GenerateVectors.cs -- proto/vectors
// Every encodable vector's hex is what ClientFrameWriter / ServerFrameWriter emit for its decoded form.
// Decode-only vectors (extra trailing fields, non-compact integers) are hand-built MessagePack, because no
// writer produces them; tests/Gateway.Protocol.Tests checks all of them in both directions.
using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Gateway.Protocol;
using MessagePack;

var outDir = args.Length > 0 ? args[0] : "proto/vectors";
Directory.CreateDirectory(outDir);

// Fixed, realistic values: 2025-01-01T00:00:00Z is 1_735_689_600_000 ms since the Unix epoch.
const long T0 = 1_735_689_600_000;

// HS256 key of the RefreshToken vectors: 32 ASCII bytes (256 bits, the HS256 minimum); a test value, not a secret.
const string JwtTestKey = "chatgw-v1-golden-vectors-hs256!!";
var hello = Encoding.UTF8.GetBytes("hello");

// W3C Trace Context examples (the recommendation's own): version 00, trace id, parent span id, flags 01 = sampled.
const string TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const string TraceState = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
const string InvalidTraceParent = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01";

// ---------------------------------------------------------------- client frames
Emit("client-subscribe.json", "Subscribe",
    V("subscribe-one-chat", "Subscribe to one chat from the beginning (afterSeq 0).",
        w => ClientFrameWriter.WriteSubscribe(w, 1, [new ChatCursor("general", 0)]),
        j => { Num(j, "type", 1); Num(j, "requestId", 1); Cursors(j, ("general", 0)); }),
    V("subscribe-two-chats", "Two chats; the cursors use fixint (42) and uint16 (1000) encodings.",
        w => ClientFrameWriter.WriteSubscribe(w, 2, [new ChatCursor("team-a", 42), new ChatCursor("dm_alice_bob", 1000)]),
        j => { Num(j, "type", 1); Num(j, "requestId", 2); Cursors(j, ("team-a", 42), ("dm_alice_bob", 1000)); }),
    V("subscribe-empty-list", "An empty cursor list is well-formed (the server answers Subscribed with no results).",
        w => ClientFrameWriter.WriteSubscribe(w, 3, []),
        j => { Num(j, "type", 1); Num(j, "requestId", 3); Cursors(j); }),
    V("subscribe-large-cursor", "A cursor above 2^32 uses uint64 (0xcf).",
        w => ClientFrameWriter.WriteSubscribe(w, 4, [new ChatCursor("c1", 4_294_967_296)]),
        j => { Num(j, "type", 1); Num(j, "requestId", 4); Cursors(j, ("c1", 4_294_967_296)); }),
    DecodeOnly("subscribe-extra-fields", "A newer client appended a field to the entry ([chatId, afterSeq, true]) and to the frame (\"x\"): both are ignored.",
        (ref w) =>
        {
            w.WriteArrayHeader(4);
            w.Write(1u);
            w.Write(5u);
            w.WriteArrayHeader(1);
            w.WriteArrayHeader(3);
            w.Write("general");
            w.Write(7ul);
            w.Write(true);
            w.Write("x");
        },
        j => { Num(j, "type", 1); Num(j, "requestId", 5); Cursors(j, ("general", 7)); }));

Emit("client-unsubscribe.json", "Unsubscribe",
    V("unsubscribe-one-chat", "Stop receiving one chat.",
        w => ClientFrameWriter.WriteUnsubscribe(w, 10, ["general"]),
        j => { Num(j, "type", 2); Num(j, "requestId", 10); ChatIds(j, "general"); }),
    V("unsubscribe-two-chats", "Two chats in one frame.",
        w => ClientFrameWriter.WriteUnsubscribe(w, 11, ["team-a", "dm_alice_bob"]),
        j => { Num(j, "type", 2); Num(j, "requestId", 11); ChatIds(j, "team-a", "dm_alice_bob"); }),
    V("unsubscribe-empty-list", "An empty list is well-formed.",
        w => ClientFrameWriter.WriteUnsubscribe(w, 12, []),
        j => { Num(j, "type", 2); Num(j, "requestId", 12); ChatIds(j); }),
    DecodeOnly("unsubscribe-extra-field", "A trailing map field appended by a newer client is ignored.",
        (ref w) =>
        {
            w.WriteArrayHeader(4);
            w.Write(2u);
            w.Write(13u);
            w.WriteArrayHeader(1);
            w.Write("general");
            w.WriteMapHeader(1);
            w.Write("k");
            w.Write(1);
        },
        j => { Num(j, "type", 2); Num(j, "requestId", 13); ChatIds(j, "general"); }));

Emit("client-send.json", "Send",
    V("send-text", "A text message without expiry (expiresAt nil, 0xc0).",
        w => ClientFrameWriter.WriteSend(w, 7, "general", "m-0001", "text/plain", hello, null),
        j => SendJson(j, 7, "general", "m-0001", "text/plain", hello, null)),
    V("send-with-expiry", "A disappearing message: expiresAt is Unix milliseconds (int64 written compactly, here uint64 0xcf).",
        w => ClientFrameWriter.WriteSend(w, 8, "general", "m-0002", "text/plain", hello, T0 + 86_400_000),
        j => SendJson(j, 8, "general", "m-0002", "text/plain", hello, T0 + 86_400_000)),
    V("send-empty-content", "Empty content is bin8 of length 0 (0xc4 0x00), never nil.",
        w => ClientFrameWriter.WriteSend(w, 9, "general", "m-0003", "application/x-ping", [], null),
        j => SendJson(j, 9, "general", "m-0003", "application/x-ping", [], null)),
    V("send-binary-content", "Arbitrary binary content (not UTF-8) is carried as bin.",
        w => ClientFrameWriter.WriteSend(w, 300, "dm_alice_bob", "4f1c2a9e-7d33-4c61-9a57-0b8e3f7a1d20", "application/octet-stream", [0x00, 0xff, 0xc0, 0x91], null),
        j => SendJson(j, 300, "dm_alice_bob", "4f1c2a9e-7d33-4c61-9a57-0b8e3f7a1d20", "application/octet-stream", [0x00, 0xff, 0xc0, 0x91], null)),
    DecodeOnly("send-extra-field", "A newer client appended a field (an array): it is ignored.",
        (ref w) =>
        {
            w.WriteArrayHeader(8);
            w.Write(3u);
            w.Write(14u);
            w.Write("general");
            w.Write("m-0004");
            w.Write("text/plain");
            w.Write(hello);
            w.WriteNil();
            w.WriteArrayHeader(2);
            w.Write(1);
            w.Write("future");
        },
        j => SendJson(j, 14, "general", "m-0004", "text/plain", hello, null)),
    DecodeOnly("send-wide-integers", "Integers in wider encodings than necessary are accepted: requestId as uint32 (0xce), expiresAt as int64 (0xd3).",
        (ref w) =>
        {
            w.WriteArrayHeader(7);
            w.Write(3u);
            w.WriteUInt32(15);
            w.Write("general");
            w.Write("m-0005");
            w.Write("text/plain");
            w.Write(hello);
            w.WriteInt64(T0 + 60_000);
        },
        j => SendJson(j, 15, "general", "m-0005", "text/plain", hello, T0 + 60_000)),
    V("send-traceparent", "With a W3C traceparent (element 7, a v1 addition): the send joins the client's trace. 8 elements.",
        w => ClientFrameWriter.WriteSend(w, 16, "general", "m-0006", "text/plain", hello, null, TraceParent, null),
        j => SendJson(j, 16, "general", "m-0006", "text/plain", hello, null, TraceParent)),
    V("send-traceparent-tracestate", "With a traceparent and a tracestate (element 8). 9 elements.",
        w => ClientFrameWriter.WriteSend(w, 17, "general", "m-0007", "text/plain", hello, T0 + 86_400_000, TraceParent, TraceState),
        j => SendJson(j, 17, "general", "m-0007", "text/plain", hello, T0 + 86_400_000, TraceParent, TraceState)),
    DecodeOnly("send-trace-nil", "traceparent and tracestate given as nil: the same as leaving them out (a writer leaves them out).",
        (ref w) =>
        {
            w.WriteArrayHeader(9);
            w.Write(3u);
            w.Write(18u);
            w.Write("general");
            w.Write("m-0008");
            w.Write("text/plain");
            w.Write(hello);
            w.WriteNil();
            w.WriteNil();
            w.WriteNil();
        },
        j => SendJson(j, 18, "general", "m-0008", "text/plain", hello, null)),
    DecodeOnly("send-trace-wrong-type", "Element 7 is an integer, element 8 a map, then one more element: the trace context is absent, not an invalid frame.",
        (ref w) =>
        {
            w.WriteArrayHeader(10);
            w.Write(3u);
            w.Write(19u);
            w.Write("general");
            w.Write("m-0009");
            w.Write("text/plain");
            w.Write(hello);
            w.WriteNil();
            w.Write(7);
            w.WriteMapHeader(1);
            w.Write("k");
            w.Write(1);
            w.Write(true);
        },
        j => SendJson(j, 19, "general", "m-0009", "text/plain", hello, null)),
    DecodeOnly("send-traceparent-invalid", "A str traceparent that is not valid W3C (uppercase hex): the codec reads it, the server ignores it and accepts the send; no writer should produce it.",
        (ref w) =>
        {
            w.WriteArrayHeader(8);
            w.Write(3u);
            w.Write(20u);
            w.Write("general");
            w.Write("m-0010");
            w.Write("text/plain");
            w.Write(hello);
            w.WriteNil();
            w.Write(InvalidTraceParent);
        },
        j => SendJson(j, 20, "general", "m-0010", "text/plain", hello, null, InvalidTraceParent)));

Emit("client-history.json", "History",
    V("history-newest", "The newest page: beforeSeq 0 means \"from the head\".",
        w => ClientFrameWriter.WriteHistory(w, 20, "general", 0, 50),
        j => HistoryJson(j, 20, "general", 0, 50)),
    V("history-before", "Older page: messages with seq < 300, at most 200 (uint16 0xcd for 300, uint8 0xcc for 200).",
        w => ClientFrameWriter.WriteHistory(w, 21, "general", 300, 200),
        j => HistoryJson(j, 21, "general", 300, 200)));

// A 40-byte chat id (the syntax allows up to 64) takes str8 (0xd9): fixstr stops at 31 bytes.
const string LongChatId = "project-apollo_launch-readiness-2025-q1x";
Emit("client-typing.json", "Typing",
    V("typing", "The user is typing in chat general. No answer on success (ephemeral, never stored).",
        w => ClientFrameWriter.WriteTyping(w, 40, "general"),
        j => TypingJson(j, 40, "general")),
    V("typing-long-chat-id", "A 40-byte chat id is a str8 (0xd9 0x28).",
        w => ClientFrameWriter.WriteTyping(w, 41, LongChatId),
        j => TypingJson(j, 41, LongChatId)),
    DecodeOnly("typing-extra-field", "A newer client appended a field (a bool): it is ignored.",
        (ref w) =>
        {
            w.WriteArrayHeader(4);
            w.Write(5u);
            w.Write(42u);
            w.Write("general");
            w.Write(true);
        },
        j => TypingJson(j, 42, "general")),
    DecodeOnly("typing-wide-request-id", "requestId 43 as uint16 (0xcd 0x002b) instead of a fixint is accepted.",
        (ref w) =>
        {
            w.WriteArrayHeader(3);
            w.Write(5u);
            w.WriteUInt16(43);
            w.Write("general");
        },
        j => TypingJson(j, 43, "general")));

// Real HS256 JWTs (signed with a fixed test key; the codec never looks inside a token, the server does).
var shortToken = Jwt("""{"alg":"HS256","typ":"JWT"}""", $$"""{"sub":"alice","tid":"acme","exp":{{(T0 / 1000) + 7200}}}""");
var longToken = Jwt(
    """{"alg":"HS256","typ":"JWT","kid":"2025-01"}""",
    $$"""{"iss":"https://auth.example.com/","aud":"chatgw","sub":"alice","tid":"acme","iat":{{T0 / 1000}},"nbf":{{T0 / 1000}},"exp":{{(T0 / 1000) + 7200}},"jti":"9b2f6c1e-4a7d-4e21-8c3b-5f0a9d7e6b14"}""");
Emit("client-refreshtoken.json", "RefreshToken",
    V("refreshtoken", $"A {shortToken.Length}-byte JWT is a str8 (0xd9).",
        w => ClientFrameWriter.WriteRefreshToken(w, 50, shortToken),
        j => RefreshTokenJson(j, 50, shortToken)),
    V("refreshtoken-long", $"A {longToken.Length}-byte JWT (more claims) is a str16 (0xda): tokens over 255 bytes are common.",
        w => ClientFrameWriter.WriteRefreshToken(w, 51, longToken),
        j => RefreshTokenJson(j, 51, longToken)),
    DecodeOnly("refreshtoken-extra-field", "A newer client appended a field (nil): it is ignored.",
        (ref w) =>
        {
            w.WriteArrayHeader(4);
            w.Write(6u);
            w.Write(52u);
            w.Write(shortToken);
            w.WriteNil();
        },
        j => RefreshTokenJson(j, 52, shortToken)));

// ---------------------------------------------------------------- server frames
var m1 = new MessageFields(1, "01JGZ6Y5K8Q3W4E5R6T7Y8U9I0", "alice", T0, "text/plain", hello, null);
var m2 = new MessageFields(2, "01JGZ6Y5K8Q3W4E5R6T7Y8U9I1", "bob", T0 + 1_500, "text/plain", Encoding.UTF8.GetBytes("hi alice"), T0 + 86_400_000);
var m3 = new MessageFields(3, "01JGZ6Y5K8Q3W4E5R6T7Y8U9I2", "alice", T0 + 2_000, "application/x-ping", Array.Empty<byte>(), null);

Emit("server-hello.json", "Hello",
    V("hello", "First frame after the handshake, with the default limits (65536, 32768, 30 s).",
        w => ServerFrameWriter.WriteHello(w, "s-7f3a", "acme", "alice", 65_536, 32_768, 30, T0 + 3_600_000),
        j =>
        {
            Num(j, "type", 32);
            Num(j, "version", 1);
            j.WriteString("sessionId", "s-7f3a");
            j.WriteString("tenantId", "acme");
            j.WriteString("userId", "alice");
            Num(j, "maxMessageBytes", 65_536);
            Num(j, "maxContentBytes", 32_768);
            Num(j, "heartbeatSeconds", 30);
            Num(j, "tokenExpiresAt", T0 + 3_600_000);
        }));

Emit("server-subscribed.json", "Subscribed",
    V("subscribed-mixed", "One result per requested chat, in request order: ok with head 57, NotMember (10), ValidationFailed (20).",
        w => ServerFrameWriter.WriteSubscribed(w, 2, [new("team-a", ErrorCode.None, 57), new("secret", ErrorCode.NotMember, 0), new("bad id!", ErrorCode.ValidationFailed, 0)]),
        j => { Num(j, "type", 33); Num(j, "requestId", 2); Results(j, ("team-a", 0, 57), ("secret", 10, 0), ("bad id!", 20, 0)); }),
    V("subscribed-limit", "LimitExceeded (22) for a chat over the per-connection subscription limit.",
        w => ServerFrameWriter.WriteSubscribed(w, 4, [new("general", ErrorCode.None, 1000), new("c501", ErrorCode.LimitExceeded, 0)]),
        j => { Num(j, "type", 33); Num(j, "requestId", 4); Results(j, ("general", 0, 1000), ("c501", 22, 0)); }),
    V("subscribed-empty", "Answer to a Subscribe with an empty list.",
        w => ServerFrameWriter.WriteSubscribed(w, 3, []),
        j => { Num(j, "type", 33); Num(j, "requestId", 3); Results(j); }),
    DecodeOnly("subscribed-extra-fields", "A newer server appended a field to a result entry and to the frame: both are ignored.",
        (ref w) =>
        {
            w.WriteArrayHeader(4);
            w.Write(33u);
            w.Write(6u);
            w.WriteArrayHeader(1);
            w.WriteArrayHeader(4);
            w.Write("general");
            w.Write(0u);
            w.Write(9ul);
            w.Write("extra");
            w.WriteNil();
        },
        j => { Num(j, "type", 33); Num(j, "requestId", 6); Results(j, ("general", 0, 9)); }));

Emit("server-unsubscribed.json", "Unsubscribed",
    V("unsubscribed", "Answer to Unsubscribe (also when the chats were not subscribed).",
        w => ServerFrameWriter.WriteUnsubscribed(w, 10),
        j => { Num(j, "type", 34); Num(j, "requestId", 10); }));

Emit("server-sendack.json", "SendAck",
    V("sendack", "The Send with requestId 7 is durable as seq 58.",
        w => ServerFrameWriter.WriteSendAck(w, 7, "general", 58, "01JGZ6Y5K8Q3W4E5R6T7Y8U9J0", T0 + 5_000, false),
        j => SendAckJson(j, 7, "general", 58, "01JGZ6Y5K8Q3W4E5R6T7Y8U9J0", T0 + 5_000, false)),
    V("sendack-duplicate", "A retry with the same clientMessageId: the original seq and messageId, duplicate true.",
        w => ServerFrameWriter.WriteSendAck(w, 16, "general", 58, "01JGZ6Y5K8Q3W4E5R6T7Y8U9J0", T0 + 5_000, true),
        j => SendAckJson(j, 16, "general", 58, "01JGZ6Y5K8Q3W4E5R6T7Y8U9J0", T0 + 5_000, true)));

Emit("server-error.json", "Error",
    V("error-not-member", "Answer to a Send into a chat the user is not a member of.",
        w => ServerFrameWriter.WriteError(w, 8, ErrorCode.NotMember, "not a member of chat"),
        j => ErrorJson(j, 8, 10, "not a member of chat")),
    V("error-unknown-type", "requestId 0: the failed frame's requestId could not be read.",
        w => ServerFrameWriter.WriteError(w, 0, ErrorCode.UnknownFrameType, "unknown frame type"),
        j => ErrorJson(j, 0, 1, "unknown frame type")),
    V("error-empty-message", "The message text may be empty; clients act on the code. Four elements: no retryAfterMs (as an older server writes RateLimited).",
        w => ServerFrameWriter.WriteError(w, 99, ErrorCode.RateLimited, ""),
        j => ErrorJson(j, 99, 40, "")),
    V("error-rate-limited", "A Send over the per-user rate: RateLimited with the fifth element retryAfterMs = 250 (uint8 0xcc 0xfa).",
        w => ServerFrameWriter.WriteError(w, 7, ErrorCode.RateLimited, "rate limited", 250),
        j => ErrorJson(j, 7, 40, "rate limited", 250)),
    V("error-unauthenticated", "Answer to a RefreshToken whose token is invalid, expired or names another user: the connection keeps its old token.",
        w => ServerFrameWriter.WriteError(w, 51, ErrorCode.Unauthenticated, "token rejected"),
        j => ErrorJson(j, 51, 11, "token rejected")),
    DecodeOnly("error-retry-after-zero", "A fifth element of 0 means no hint, the same as four elements (writers omit it).",
        (ref w) =>
        {
            w.WriteArrayHeader(5);
            w.Write(36u);
            w.Write(8u);
            w.Write(40u);
            w.Write("");
            w.Write(0u);
        },
        j => ErrorJson(j, 8, 40, "")),
    DecodeOnly("error-extra-field", "A newer server appended a sixth element after retryAfterMs: it is ignored.",
        (ref w) =>
        {
            w.WriteArrayHeader(6);
            w.Write(36u);
            w.Write(9u);
            w.Write(40u);
            w.Write("slow down");
            w.Write(1_500u);
            w.Write("future");
        },
        j => ErrorJson(j, 9, 40, "slow down", 1_500)));

Emit("server-message.json", "Message",
    V("message-text", "A message without expiry (expiresAt nil).",
        w => ServerFrameWriter.WriteMessage(w, "general", m1),
        j => MessageJson(j, "general", m1)),
    V("message-with-expiry", "A disappearing message: expiresAt set.",
        w => ServerFrameWriter.WriteMessage(w, "general", m2),
        j => MessageJson(j, "general", m2)),
    V("message-empty-content", "Empty content (bin8 of length 0).",
        w => ServerFrameWriter.WriteMessage(w, "general", m3),
        j => MessageJson(j, "general", m3)),
    DecodeOnly("message-extra-field", "A newer server appended a field (a map): it is ignored.",
        (ref w) =>
        {
            w.WriteArrayHeader(10);
            w.Write(37u);
            w.Write("general");
            w.Write(m1.Seq);
            w.Write(m1.MessageId);
            w.Write(m1.SenderId);
            w.Write(m1.SentAt);
            w.Write(m1.ContentType);
            w.Write(m1.Content.Span);
            w.WriteNil();
            w.WriteMapHeader(1);
            w.Write("editedAt");
            w.Write(T0 + 9_000);
        },
        j => MessageJson(j, "general", m1)));

Emit("server-caughtup.json", "CaughtUp",
    V("caughtup", "Replay of chat general is complete through seq 57; live messages follow from 58.",
        w => ServerFrameWriter.WriteCaughtUp(w, "general", 57),
        j => { Num(j, "type", 38); j.WriteString("chatId", "general"); Num(j, "seq", 57); }),
    V("caughtup-empty-chat", "A chat with no messages: caught up at seq 0.",
        w => ServerFrameWriter.WriteCaughtUp(w, "team-a", 0),
        j => { Num(j, "type", 38); j.WriteString("chatId", "team-a"); Num(j, "seq", 0); }));

Emit("server-historypage.json", "HistoryPage",
    V("historypage", "Two messages, newest first, more available.",
        w => ServerFrameWriter.WriteHistoryPage(w, 21, "general", [m2, m1], true),
        j => HistoryPageJson(j, 21, "general", true, m2, m1)),
    V("historypage-empty", "Nothing before the cursor.",
        w => ServerFrameWriter.WriteHistoryPage(w, 22, "general", [], false),
        j => HistoryPageJson(j, 22, "general", false)));

Emit("server-revoked.json", "Revoked",
    V("revoked-not-member", "The user was removed from the chat: no further Messages of it.",
        w => ServerFrameWriter.WriteRevoked(w, "team-a", ErrorCode.NotMember, "removed from chat"),
        j => { Num(j, "type", 40); j.WriteString("chatId", "team-a"); Num(j, "code", 10); j.WriteString("message", "removed from chat"); }));

Emit("server-tokenrefreshed.json", "TokenRefreshed",
    V("tokenrefreshed", "The RefreshToken with requestId 50 succeeded: the connection now lives until the new token's expiry (T0 + 2 h).",
        w => ServerFrameWriter.WriteTokenRefreshed(w, 50, T0 + 7_200_000),
        j => { Num(j, "type", 41); Num(j, "requestId", 50); Num(j, "expiresAt", T0 + 7_200_000); }),
    DecodeOnly("tokenrefreshed-extra-field", "A newer server appended a field: it is ignored.",
        (ref w) =>
        {
            w.WriteArrayHeader(4);
            w.Write(41u);
            w.Write(53u);
            w.Write(T0 + 7_200_000);
            w.WriteArrayHeader(0);
        },
        j => { Num(j, "type", 41); Num(j, "requestId", 53); Num(j, "expiresAt", T0 + 7_200_000); }));

Emit("server-usertyping.json", "UserTyping",
    V("usertyping", "Member bob is typing in chat general (ephemeral: may be dropped, never replayed).",
        w => ServerFrameWriter.WriteUserTyping(w, "general", "bob"),
        j => UserTypingJson(j, "general", "bob")),
    V("usertyping-long-ids", "A 40-byte chat id and a 36-byte user id, both str8 (0xd9).",
        w => ServerFrameWriter.WriteUserTyping(w, LongChatId, "5d0c7a1e-93b4-4f6a-8e2d-1c7b9a0f3e65"),
        j => UserTypingJson(j, LongChatId, "5d0c7a1e-93b4-4f6a-8e2d-1c7b9a0f3e65")),
    DecodeOnly("usertyping-extra-field", "A newer server appended a field (a timestamp): it is ignored.",
        (ref w) =>
        {
            w.WriteArrayHeader(4);
            w.Write(42u);
            w.Write("general");
            w.Write("bob");
            w.Write(T0);
        },
        j => UserTypingJson(j, "general", "bob")));

Emit("server-tokenexpiring.json", "TokenExpiring",
    V("tokenexpiring", "The token expires at T0 + 1 h; without a RefreshToken the server closes with 4001 30 s later (the default grace).",
        w => ServerFrameWriter.WriteTokenExpiring(w, T0 + 3_600_000, T0 + 3_630_000),
        j => TokenExpiringJson(j, T0 + 3_600_000, T0 + 3_630_000)),
    DecodeOnly("tokenexpiring-extra-field", "A newer server appended a field: it is ignored.",
        (ref w) =>
        {
            w.WriteArrayHeader(4);
            w.Write(43u);
            w.Write(T0 + 3_600_000);
            w.Write(T0 + 3_630_000);
            w.Write("x");
        },
        j => TokenExpiringJson(j, T0 + 3_600_000, T0 + 3_630_000)));

Emit("server-drain.json", "Drain",
    V("drain", "The server is shutting down: reconnect after 2750 ms (uint16 0xcd 0x0abe), this connection's draw from [0, 5000].",
        w => ServerFrameWriter.WriteDrain(w, 2_750, "server draining"),
        j => DrainJson(j, 2_750, "server draining")),
    V("drain-immediate", "A draw of 0: reconnect now (the message may be empty).",
        w => ServerFrameWriter.WriteDrain(w, 0, ""),
        j => DrainJson(j, 0, "")),
    V("drain-long-delay", "A deployment with a longer jitter window: 70000 ms takes uint32 (0xce).",
        w => ServerFrameWriter.WriteDrain(w, 70_000, "server draining"),
        j => DrainJson(j, 70_000, "server draining")),
    DecodeOnly("drain-extra-field", "A newer server appended a field (a map): it is ignored.",
        (ref w) =>
        {
            w.WriteArrayHeader(4);
            w.Write(44u);
            w.Write(1_000u);
            w.Write("server draining");
            w.WriteMapHeader(1);
            w.Write("region");
            w.Write("eu-1");
        },
        j => DrainJson(j, 1_000, "server draining")));

Emit("server-unknown.json", "Unknown",
    DecodeOnly("unknown-server-type", "A frame type from a newer server (45, the first unassigned server tag): clients ignore it (decoded is null).",
        (ref w) =>
        {
            w.WriteArrayHeader(3);
            w.Write(45u);
            w.Write("general");
            w.Write(1u);
        },
        null),
    DecodeOnly("unknown-server-type-63", "The last server tag (63), with fields no v1 frame has (a bin and a nil): ignored unread.",
        (ref w) =>
        {
            w.WriteArrayHeader(3);
            w.Write(63u);
            w.Write(new byte[] { 1, 2, 3 });
            w.WriteNil();
        },
        null));

// ---------------------------------------------------------------- rejected client frames
EmitRejected("client-rejected.json",
    R("not-an-array", "A map, not an array.", "Malformed", 0, (ref w) => { w.WriteMapHeader(1); w.Write(1); w.Write(1); }),
    R("empty-payload", "Zero bytes.", "Malformed", 0, (ref _) => { }),
    R("empty-array", "An array without a type tag.", "Malformed", 0, (ref w) => w.WriteArrayHeader(0)),
    R("string-tag", "The tag is a string.", "Malformed", 0, (ref w) => { w.WriteArrayHeader(2); w.Write("send"); w.Write(1u); }),
    R("trailing-bytes", "A valid History frame followed by one more byte: the payload must be exactly one value (requestId 23 was read).", "Malformed", 23, (ref w) =>
    {
        w.WriteArrayHeader(5);
        w.Write(4u);
        w.Write(23u);
        w.Write("general");
        w.Write(0u);
        w.Write(50u);
        w.Write(1u);
    }),
    R("truncated-array", "The array header promises 5 elements but only 2 bytes follow: rejected from the header.", "Malformed", 0, (ref w) => { w.WriteArrayHeader(5); w.Write(4u); w.Write(24u); }),
    R("truncated-field", "History cut inside the chatId string (3 of 7 bytes): the requestId (32) was read, the fields are Invalid.", "Invalid", 32, (ref w) =>
    {
        w.WriteArrayHeader(5);
        w.Write(4u);
        w.Write(32u);
        w.WriteRaw([0xa7, (byte)'g', (byte)'e', (byte)'n']);
    }),
    R("tag-above-255", "Tag 257 (uint16 0xcd0101) must not alias Subscribe (257 mod 256 = 1).", "UnknownType", 33, (ref w) =>
    {
        w.WriteArrayHeader(3);
        w.Write(257u);
        w.Write(33u);
        w.WriteArrayHeader(0);
    }),
    R("unknown-type", "Tag 9 is not a client frame: the requestId (25) is still read and echoed.", "UnknownType", 25, (ref w) => { w.WriteArrayHeader(3); w.Write(9u); w.Write(25u); w.Write("?"); }),
    R("unknown-type-7", "Tag 7, the first unassigned client tag, shaped like Typing: UnknownType (requestId 34 echoed).", "UnknownType", 34, (ref w) => { w.WriteArrayHeader(3); w.Write(7u); w.Write(34u); w.Write("general"); }),
    R("server-tag-from-client", "A server tag (37) sent by a client is unknown.", "UnknownType", 26, (ref w) => { w.WriteArrayHeader(2); w.Write(37u); w.Write(26u); }),
    R("missing-request-id", "A known tag without a requestId.", "Invalid", 0, (ref w) => { w.WriteArrayHeader(1); w.Write(3u); }),
    R("send-content-as-string", "Send content must be bin, not str.", "Invalid", 27, (ref w) =>
    {
        w.WriteArrayHeader(7);
        w.Write(3u);
        w.Write(27u);
        w.Write("general");
        w.Write("m-1");
        w.Write("text/plain");
        w.Write("hello");
        w.WriteNil();
    }),
    R("send-too-few-fields", "Send without expiresAt: all 7 elements are required (nil is explicit).", "Invalid", 28, (ref w) =>
    {
        w.WriteArrayHeader(6);
        w.Write(3u);
        w.Write(28u);
        w.Write("general");
        w.Write("m-1");
        w.Write("text/plain");
        w.Write(hello);
    }),
    R("subscribe-negative-cursor", "afterSeq -1 is not a uint64.", "Invalid", 29, (ref w) =>
    {
        w.WriteArrayHeader(3);
        w.Write(1u);
        w.Write(29u);
        w.WriteArrayHeader(1);
        w.WriteArrayHeader(2);
        w.Write("general");
        w.Write(-1);
    }),
    R("subscribe-entry-not-array", "Subscribe entries are [chatId, afterSeq] arrays, not bare strings.", "Invalid", 30, (ref w) =>
    {
        w.WriteArrayHeader(3);
        w.Write(1u);
        w.Write(30u);
        w.WriteArrayHeader(1);
        w.Write("general");
    }),
    R("history-negative-limit", "limit -5 is not a uint32.", "Invalid", 31, (ref w) =>
    {
        w.WriteArrayHeader(5);
        w.Write(4u);
        w.Write(31u);
        w.Write("general");
        w.Write(0u);
        w.Write(-5);
    }),
    R("typing-missing-chat-id", "Typing [5, requestId] without the chatId.", "Invalid", 35, (ref w) => { w.WriteArrayHeader(2); w.Write(5u); w.Write(35u); }),
    R("typing-chat-id-not-string", "Typing chatId must be str, not an integer.", "Invalid", 36, (ref w) => { w.WriteArrayHeader(3); w.Write(5u); w.Write(36u); w.Write(7u); }),
    R("typing-nil-chat-id", "Typing chatId nil.", "Invalid", 37, (ref w) => { w.WriteArrayHeader(3); w.Write(5u); w.Write(37u); w.WriteNil(); }),
    R("refreshtoken-missing-token", "RefreshToken [6, requestId] without the token.", "Invalid", 38, (ref w) => { w.WriteArrayHeader(2); w.Write(6u); w.Write(38u); }),
    R("refreshtoken-token-as-bin", "The token must be str, not bin (here bin8 c4 03 65794a).", "Invalid", 39, (ref w) =>
    {
        w.WriteArrayHeader(3);
        w.Write(6u);
        w.Write(39u);
        w.Write("eyJ"u8);
    }),
    R("refreshtoken-trailing-bytes", "A valid RefreshToken followed by a second frame in the same message: the payload must be one value.", "Malformed", 40, (ref w) =>
    {
        w.WriteArrayHeader(3);
        w.Write(6u);
        w.Write(40u);
        w.Write("t");
        w.WriteArrayHeader(3);
        w.Write(6u);
        w.Write(41u);
        w.Write("t");
    }));

Console.WriteLine($"Wrote vectors to {Path.GetFullPath(outDir)}");

// ---------------------------------------------------------------- helpers
// Relaxed escaping keeps descriptions readable (' " < + stay as they are); the files are data, never HTML.
static JsonWriterOptions JsonOptions() => new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

void Emit(string file, string frame, params Vector[] vectors)
{
    using var stream = File.Create(Path.Combine(outDir, file));
    using var j = new Utf8JsonWriter(stream, JsonOptions());
    j.WriteStartObject();
    j.WriteString("frame", frame);
    j.WriteStartArray("vectors");
    foreach (var v in vectors)
    {
        j.WriteStartObject();
        j.WriteString("name", v.Name);
        j.WriteString("direction", file.StartsWith("client-", StringComparison.Ordinal) ? "client-to-server" : "server-to-client");
        j.WriteBoolean("decodeOnly", v.DecodeOnly);
        j.WriteString("description", v.Description);
        j.WriteString("hex", Convert.ToHexStringLower(v.Bytes));
        if (v.Decoded is null)
        {
            j.WriteNull("decoded");
        }
        else
        {
            j.WritePropertyName("decoded");
            j.WriteStartObject();
            v.Decoded(j);
            j.WriteEndObject();
        }

        j.WriteEndObject();
    }

    j.WriteEndArray();
    j.WriteEndObject();
    j.Flush();
    stream.WriteByte((byte)'\n');
}

void EmitRejected(string file, params Rejected[] vectors)
{
    using var stream = File.Create(Path.Combine(outDir, file));
    using var j = new Utf8JsonWriter(stream, JsonOptions());
    j.WriteStartObject();
    j.WriteString("frame", "Rejected");
    j.WriteStartArray("vectors");
    foreach (var v in vectors)
    {
        j.WriteStartObject();
        j.WriteString("name", v.Name);
        j.WriteString("direction", "client-to-server");
        j.WriteBoolean("decodeOnly", true);
        j.WriteString("description", v.Description);
        j.WriteString("hex", Convert.ToHexStringLower(v.Bytes));
        j.WriteStartObject("expect");
        j.WriteString("status", v.Status);
        j.WriteNumber("requestId", v.RequestId);
        j.WriteEndObject();
        j.WriteEndObject();
    }

    j.WriteEndArray();
    j.WriteEndObject();
    j.Flush();
    stream.WriteByte((byte)'\n');
}

static Vector V(string name, string description, Action<IBufferWriter<byte>> write, Action<Utf8JsonWriter> decoded)
{
    var buffer = new ArrayBufferWriter<byte>();
    write(buffer);
    return new Vector(name, description, false, buffer.WrittenSpan.ToArray(), decoded);
}

static Vector DecodeOnly(string name, string description, Raw write, Action<Utf8JsonWriter>? decoded) =>
    new(name, description, true, Build(write), decoded);

static Rejected R(string name, string description, string status, uint requestId, Raw write) =>
    new(name, description, status, requestId, Build(write));

static byte[] Build(Raw write)
{
    var buffer = new ArrayBufferWriter<byte>();
    var w = new MessagePackWriter(buffer);
    write(ref w);
    w.Flush();
    return buffer.WrittenSpan.ToArray();
}

static void Num(Utf8JsonWriter j, string name, long value) => j.WriteNumber(name, value);

static void Cursors(Utf8JsonWriter j, params (string ChatId, ulong AfterSeq)[] cursors)
{
    j.WriteStartArray("cursors");
    foreach (var (chatId, afterSeq) in cursors)
    {
        j.WriteStartObject();
        j.WriteString("chatId", chatId);
        j.WriteNumber("afterSeq", afterSeq);
        j.WriteEndObject();
    }

    j.WriteEndArray();
}

static void ChatIds(Utf8JsonWriter j, params string[] chatIds)
{
    j.WriteStartArray("chatIds");
    foreach (var id in chatIds)
    {
        j.WriteStringValue(id);
    }

    j.WriteEndArray();
}

static void Results(Utf8JsonWriter j, params (string ChatId, int Code, ulong HeadSeq)[] results)
{
    j.WriteStartArray("results");
    foreach (var (chatId, code, headSeq) in results)
    {
        j.WriteStartObject();
        j.WriteString("chatId", chatId);
        j.WriteNumber("code", code);
        j.WriteNumber("headSeq", headSeq);
        j.WriteEndObject();
    }

    j.WriteEndArray();
}

// traceparent and tracestate appear in the decoded form only when the frame carries them as str.
static void SendJson(Utf8JsonWriter j, uint requestId, string chatId, string clientMessageId, string contentType, byte[] content, long? expiresAt,
    string? traceParent = null, string? traceState = null)
{
    j.WriteNumber("type", 3);
    j.WriteNumber("requestId", requestId);
    j.WriteString("chatId", chatId);
    j.WriteString("clientMessageId", clientMessageId);
    j.WriteString("contentType", contentType);
    j.WriteBase64String("content", content);
    NullableNum(j, "expiresAt", expiresAt);
    if (traceParent is not null)
    {
        j.WriteString("traceparent", traceParent);
    }

    if (traceState is not null)
    {
        j.WriteString("tracestate", traceState);
    }
}

static void HistoryJson(Utf8JsonWriter j, uint requestId, string chatId, ulong beforeSeq, uint limit)
{
    j.WriteNumber("type", 4);
    j.WriteNumber("requestId", requestId);
    j.WriteString("chatId", chatId);
    j.WriteNumber("beforeSeq", beforeSeq);
    j.WriteNumber("limit", limit);
}

static void SendAckJson(Utf8JsonWriter j, uint requestId, string chatId, ulong seq, string messageId, long sentAt, bool duplicate)
{
    j.WriteNumber("type", 35);
    j.WriteNumber("requestId", requestId);
    j.WriteString("chatId", chatId);
    j.WriteNumber("seq", seq);
    j.WriteString("messageId", messageId);
    j.WriteNumber("sentAt", sentAt);
    j.WriteBoolean("duplicate", duplicate);
}

// retryAfterMs appears in the decoded form only when the frame carries a non-zero value (0 means "no hint").
static void ErrorJson(Utf8JsonWriter j, uint requestId, int code, string message, uint retryAfterMs = 0)
{
    j.WriteNumber("type", 36);
    j.WriteNumber("requestId", requestId);
    j.WriteNumber("code", code);
    j.WriteString("message", message);
    if (retryAfterMs > 0)
    {
        j.WriteNumber("retryAfterMs", retryAfterMs);
    }
}

static void TypingJson(Utf8JsonWriter j, uint requestId, string chatId)
{
    j.WriteNumber("type", 5);
    j.WriteNumber("requestId", requestId);
    j.WriteString("chatId", chatId);
}

static void RefreshTokenJson(Utf8JsonWriter j, uint requestId, string token)
{
    j.WriteNumber("type", 6);
    j.WriteNumber("requestId", requestId);
    j.WriteString("token", token);
}

static void UserTypingJson(Utf8JsonWriter j, string chatId, string userId)
{
    j.WriteNumber("type", 42);
    j.WriteString("chatId", chatId);
    j.WriteString("userId", userId);
}

static void TokenExpiringJson(Utf8JsonWriter j, long expiresAt, long closeAt)
{
    j.WriteNumber("type", 43);
    j.WriteNumber("expiresAt", expiresAt);
    j.WriteNumber("closeAt", closeAt);
}

static void DrainJson(Utf8JsonWriter j, uint reconnectAfterMs, string message)
{
    j.WriteNumber("type", 44);
    j.WriteNumber("reconnectAfterMs", reconnectAfterMs);
    j.WriteString("message", message);
}

// header.payload.signature, each base64url without padding; HS256 over "header.payload" with a fixed test key,
// so the vectors are stable and the tokens verify for anyone who wants to try.
static string Jwt(string headerJson, string payloadJson)
{
    var signingInput = Base64Url.EncodeToString(Encoding.UTF8.GetBytes(headerJson)) + "." +
        Base64Url.EncodeToString(Encoding.UTF8.GetBytes(payloadJson));
    var signature = HMACSHA256.HashData(Encoding.UTF8.GetBytes(JwtTestKey), Encoding.UTF8.GetBytes(signingInput));
    return signingInput + "." + Base64Url.EncodeToString(signature);
}

static void MessageJson(Utf8JsonWriter j, string chatId, MessageFields m)
{
    j.WriteNumber("type", 37);
    j.WriteString("chatId", chatId);
    MessageBodyJson(j, m);
}

static void MessageBodyJson(Utf8JsonWriter j, MessageFields m)
{
    j.WriteNumber("seq", m.Seq);
    j.WriteString("messageId", m.MessageId);
    j.WriteString("senderId", m.SenderId);
    j.WriteNumber("sentAt", m.SentAt);
    j.WriteString("contentType", m.ContentType);
    j.WriteBase64String("content", m.Content.Span);
    NullableNum(j, "expiresAt", m.ExpiresAt);
}

static void HistoryPageJson(Utf8JsonWriter j, uint requestId, string chatId, bool hasMore, params MessageFields[] messages)
{
    j.WriteNumber("type", 39);
    j.WriteNumber("requestId", requestId);
    j.WriteString("chatId", chatId);
    j.WriteStartArray("messages");
    foreach (var m in messages)
    {
        j.WriteStartObject();
        MessageBodyJson(j, m);
        j.WriteEndObject();
    }

    j.WriteEndArray();
    j.WriteBoolean("hasMore", hasMore);
}

static void NullableNum(Utf8JsonWriter j, string name, long? value)
{
    if (value is { } v)
    {
        j.WriteNumber(name, v);
    }
    else
    {
        j.WriteNull(name);
    }
}

internal delegate void Raw(ref MessagePackWriter writer);

internal sealed record Vector(string Name, string Description, bool DecodeOnly, byte[] Bytes, Action<Utf8JsonWriter>? Decoded);

internal sealed record Rejected(string Name, string Description, string Status, uint RequestId, byte[] Bytes);
