using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Gateway.Domain;
using Gateway.Domain.Ports;
using Gateway.Protocol;
using Gateway.Server.Auth;
using Gateway.Server.Connections;
using Gateway.Server.Sessions;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Http;

/// <summary>
/// The HTTP API on the HTTP listener: health, chat administration (admin key), and the server-side send and
/// history for backends-for-frontends (user JWT). Errors are JSON <c>{ code, error, message }</c> (see
/// <see cref="HttpErrors"/>) with the same numeric codes as the WebSocket protocol where one applies.
/// </summary>
/// <remarks>
/// No endpoint binds its body: each authenticates first and only then reads the body itself, up to a small limit per
/// endpoint (<see cref="AdminBodyLimit"/>, <see cref="SendBodyLimit"/>). Model binding would read and parse the whole
/// body before any filter or handler could refuse the caller, so anyone could make the server buffer bodies up to
/// Kestrel's limit without credentials.
/// </remarks>
internal static class HttpApi
{
    /// <summary>Largest admin request body: a chat with a few hundred members of 128-byte ids fits.</summary>
    public const int AdminBodyLimit = 64 * 1024;

    /// <summary>Room for everything in a send body but the content: field names, contentType, expiresAt, whitespace.</summary>
    private const int SendEnvelopeBytes = 4096;

    /// <summary>
    /// Largest send body: the content at its worst JSON encoding plus an envelope. As <c>text</c>, a serializer may escape
    /// every content byte as <c>\u00XX</c> (6 bytes per byte; non-ASCII text is commonly escaped at 3 bytes per byte); as
    /// <c>contentBase64</c> it takes 4/3. Six times the content is the bound that admits every valid send.
    /// </summary>
    public static long SendBodyLimit(GatewayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return 6L * options.MaxContentBytes + SendEnvelopeBytes;
    }

    public static void Map(WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<GatewayOptions>>().Value;

        // Only the HTTP listener serves these routes: the WebSocket listener has no HTTP pipeline at all.
        app.MapGet("/healthz", () => Results.Text("ok"));
        MapAdmin(app, AdminKeyBytes(app, options));
        MapSend(app, SendBodyLimit(options));
        MapHistory(app);
    }

    private static byte[] AdminKeyBytes(WebApplication app, GatewayOptions options)
    {
        // Inline or from a mounted file; generated in the data directory only where development keys are allowed
        // (start-up validation refused every other set-up without one).
        var adminKey = AuthSecrets.AdminKey(app.Services.GetRequiredService<IOptions<AuthOptions>>().Value);
        if (string.IsNullOrEmpty(adminKey))
        {
            adminKey = DevKeys.GetOrCreate(options.DataDirectory, "admin.key");
        }

        return Encoding.UTF8.GetBytes(adminKey);
    }

    /// <summary>Chat administration under <c>/v1/admin/tenants/{tenantId}</c>, for callers with the admin key.</summary>
    private static void MapAdmin(WebApplication app, byte[] adminKeyBytes)
    {
        // Endpoint filters run after binding; the handlers below bind nothing from the body, so this check comes before
        // any body byte is read.
        var admin = app.MapGroup("/v1/admin/tenants/{tenantId}").AddEndpointFilter(async (ctx, next) =>
        {
            var header = ctx.HttpContext.Request.Headers.Authorization.ToString();
            var given = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? Encoding.UTF8.GetBytes(header[7..].Trim()) : [];
            return CryptographicOperations.FixedTimeEquals(given, adminKeyBytes)
                ? await next(ctx).ConfigureAwait(false)
                : HttpErrors.Result(401, "admin key required (Authorization: Bearer <admin key>)");
        });

        admin.MapPost("/chats", async (string tenantId, HttpRequest request, IWriteService writer, CancellationToken ct) =>
        {
            var (body, refused) = await ReadJsonAsync<CreateChatRequest>(request, AdminBodyLimit, ct).ConfigureAwait(false);
            if (refused is not null)
            {
                return refused;
            }

            if (body!.ChatId is null)
            {
                return Error(ErrorCode.ValidationFailed, "chatId is required");
            }

            var result = await writer.CreateChatAsync(tenantId, body.ChatId, body.Members ?? [], ct).ConfigureAwait(false);
            return result.IsSuccess
                ? Results.Json(new { tenantId, chatId = body.ChatId, members = body.Members ?? [] }, statusCode: 201)
                : Error(result.Error, result.ErrorMessage);
        });

        admin.MapPost("/chats/{chatId}/members", async (string tenantId, string chatId, HttpRequest request, IWriteService writer, CancellationToken ct) =>
        {
            var (body, refused) = await ReadJsonAsync<AddMemberRequest>(request, AdminBodyLimit, ct).ConfigureAwait(false);
            if (refused is not null)
            {
                return refused;
            }

            if (body!.UserId is null)
            {
                return Error(ErrorCode.ValidationFailed, "userId is required");
            }

            var result = await writer.AddMemberAsync(tenantId, chatId, body.UserId, ct).ConfigureAwait(false);
            return result.IsSuccess ? Results.Json(new { tenantId, chatId, userId = body.UserId }) : Error(result.Error, result.ErrorMessage);
        });

        admin.MapDelete("/chats/{chatId}/members/{userId}", async (string tenantId, string chatId, string userId, IWriteService writer,
            IMembership membership, CancellationToken ct) =>
        {
            // Every id that can be created can be named in this path (Validation.IsValidUserId excludes '/', "." and
            // ".."); anything else was never a member.
            if (!Validation.IsValidId(tenantId) || !Validation.IsValidId(chatId) || !Validation.IsValidUserId(userId))
            {
                return Error(ErrorCode.ValidationFailed, !Validation.IsValidUserId(userId) ? Validation.Messages.UserId
                    : !Validation.IsValidId(tenantId) ? Validation.Messages.TenantId : Validation.Messages.ChatId);
            }

            // A 204 says the user was a member and is not any more; removing a non-member is a 404, not a silent success.
            if (!await membership.IsMemberAsync(tenantId, chatId, userId, ct).ConfigureAwait(false))
            {
                return HttpErrors.Result(404, (int)ErrorCode.NotMember, nameof(ErrorCode.NotMember), "not a member of this chat");
            }

            var result = await writer.RemoveMemberAsync(tenantId, chatId, userId, ct).ConfigureAwait(false);
            return result.IsSuccess ? Results.NoContent() : Error(result.Error, result.ErrorMessage);
        });

        admin.MapGet("/chats/{chatId}/members", async (string tenantId, string chatId, IMembership membership, CancellationToken ct) =>
            !Validation.IsValidId(tenantId) || !Validation.IsValidId(chatId)
                ? Error(ErrorCode.ValidationFailed, !Validation.IsValidId(tenantId) ? Validation.Messages.TenantId : Validation.Messages.ChatId)
                : Results.Json(new { tenantId, chatId, members = await membership.GetMembersAsync(tenantId, chatId, ct).ConfigureAwait(false) }));
    }

    /// <summary>The server-side send, <c>POST /v1/chats/{chatId}/messages</c> with the user's JWT; bodies up to <paramref name="sendLimit"/> bytes.</summary>
    private static void MapSend(WebApplication app, long sendLimit)
    {
        // Server-side send (the BFF path): the caller presents the user's JWT; the same domain code as the socket, and the
        // same per-user send bucket (shared with the user's WebSocket connections on this server).
        app.MapPost("/v1/chats/{chatId}/messages", async (string chatId, HttpRequest request, JwtAuthenticator auth,
            IWriteService writer, ConnectionLimiter limiter, UserLimits limits, GatewayMetrics metrics, CancellationToken ct) =>
        {
            var (principal, denied) = await AuthenticateAsync(request, auth).ConfigureAwait(false);
            if (principal is null)
            {
                return denied!;
            }

            var key = request.Headers["Idempotency-Key"].ToString();
            if (string.IsNullOrEmpty(key))
            {
                return Error(ErrorCode.ValidationFailed, "the Idempotency-Key header is required");
            }

            // Before the body is read: a refused send costs the server nothing but this check.
            if (!limiter.TryTakeWithoutConnection(principal.TenantId, principal.UserId, limits, RateKind.Send, out var retryAfter))
            {
                metrics.RateLimited.Add(1, new KeyValuePair<string, object?>("kind", "send"));
                return HttpErrors.RateLimited(retryAfter, "too many send requests");
            }

            var (body, refused) = await ReadJsonAsync<SendRequest>(request, sendLimit, ct).ConfigureAwait(false);
            if (refused is not null)
            {
                return refused;
            }

            byte[] content;
            try
            {
                content = body!.ContentBase64 is { } b64 ? Convert.FromBase64String(b64) : Encoding.UTF8.GetBytes(body.Text ?? "");
            }
            catch (FormatException)
            {
                return Error(ErrorCode.ValidationFailed, "contentBase64 is not valid base64");
            }

            // W3C trace context headers, validated like a Send frame's (an invalid one is ignored). ASP.NET Core keeps an
            // activity per request for its log scopes, exported only when something records it (its instrumentation):
            // then it continues the headers and is the span's parent; otherwise a child of it would name a parent no
            // trace contains, so the span continues the headers itself.
            var (traceParent, traceState) = TraceHeaders(request);
            if (System.Diagnostics.Activity.Current is { } requestActivity && !(requestActivity.IsAllDataRequested && requestActivity.Source.HasListeners()))
            {
                System.Diagnostics.Activity.Current = null; // for the rest of this handler only (an async method's own context)
            }

            using var span = GatewayTracing.Start(GatewayTracing.Send, System.Diagnostics.ActivityKind.Server,
                System.Diagnostics.Activity.Current is null ? traceParent : null, traceState);
            span?.SetTag(GatewayTracing.TransportTag, "http");
            span?.SetTag(GatewayTracing.TenantTag, principal.TenantId);
            span?.SetTag(GatewayTracing.ChatTag, chatId);
            var result = await writer.SendAsync(new SendMessage(principal.TenantId, chatId, principal.UserId, key,
                body.ContentType ?? "text/plain", content, body.ExpiresAt, GatewayTracing.Propagate(span, traceParent))
            { TraceState = GatewayTracing.PropagateState(span, traceState) }, ct)
                .ConfigureAwait(false);
            GatewayTracing.StopSend(span, result);
            return result.IsSuccess
                ? Results.Json(new SendResponse(chatId, result.Seq, result.MessageId!, result.SentAt, result.Duplicate), statusCode: result.Duplicate ? 200 : 201)
                : Error(result.Error, result.ErrorMessage);
        }).AddEndpointFilter(CountSendAsync);
    }

    /// <summary>History, <c>GET /v1/chats/{chatId}/messages</c> with the user's JWT: a page before a seq.</summary>
    private static void MapHistory(WebApplication app)
    {
        app.MapGet("/v1/chats/{chatId}/messages", async (string chatId, ulong? beforeSeq, int? limit, HttpRequest request,
            JwtAuthenticator auth, IMembership membership, IMessageHistory history, CancellationToken ct) =>
        {
            var (principal, denied) = await AuthenticateAsync(request, auth).ConfigureAwait(false);
            if (principal is null)
            {
                return denied!;
            }

            var n = limit ?? 50;
            if (n is < 1 or > ProtocolConstants.MaxHistoryPage)
            {
                return Error(ErrorCode.ValidationFailed, $"limit must be 1..{ProtocolConstants.MaxHistoryPage}");
            }

            if (!Validation.IsValidId(chatId) || !await membership.IsMemberAsync(principal.TenantId, chatId, principal.UserId, ct).ConfigureAwait(false))
            {
                return Error(ErrorCode.NotMember, "not a member of this chat");
            }

            var rows = await history.ReadBeforeAsync(principal.TenantId, chatId, beforeSeq ?? 0, n, ct).ConfigureAwait(false);
            return Results.Json(rows.Select(m => new
            {
                m.Seq,
                m.MessageId,
                m.SenderId,
                m.SentAt,
                m.ContentType,
                text = m.ContentType.StartsWith("text/", StringComparison.Ordinal) ? Encoding.UTF8.GetString(m.Content.Span) : null,
                contentBase64 = Convert.ToBase64String(m.Content.Span),
                m.ExpiresAt,
            }));
        });
    }

    /// <summary>The request's traceparent when it is a valid W3C one (else null), and its tracestate when that is valid too.</summary>
    private static (string? TraceParent, string? TraceState) TraceHeaders(HttpRequest request)
    {
        var traceParent = request.Headers[TraceContext.TraceParentHeader].ToString();
        if (!TraceContext.IsValidTraceParent(traceParent))
        {
            return (null, null);
        }

        var traceState = request.Headers[TraceContext.TraceStateHeader].ToString();
        return (traceParent, TraceContext.IsValidTraceState(traceState) ? traceState : null);
    }

    /// <summary>The caller named by the bearer token, or a 401 result. Waits (without blocking a thread) only when the
    /// token names a signing key not fetched yet.</summary>
    private static async ValueTask<(Principal? Principal, IResult? Denied)> AuthenticateAsync(HttpRequest request, JwtAuthenticator auth)
    {
        var header = request.Headers.Authorization.ToString();
        var token = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : null;
        var (principal, failure) = await auth.ValidateAsync(token).ConfigureAwait(false);
        return (principal, principal is null ? HttpErrors.Result(401, failure ?? "unauthorized") : null);
    }

    /// <summary>
    /// Reads a JSON body of at most <paramref name="limit"/> bytes: 415 unless the content type is JSON, 413 when the
    /// declared or the actual length is over the limit (decided from <c>Content-Length</c> before reading when there is
    /// one), 400 ValidationFailed when it is not JSON of the expected shape. Call only after authentication.
    /// </summary>
    private static async Task<(T? Body, IResult? Refused)> ReadJsonAsync<T>(HttpRequest request, long limit, CancellationToken ct)
        where T : class
    {
        if (!request.HasJsonContentType())
        {
            return (null, HttpErrors.Result(415, "the body must be JSON (Content-Type: application/json)"));
        }

        if (request.ContentLength > limit)
        {
            return (null, TooLarge(limit));
        }

        // A chunked body has no length up front: Kestrel stops it at the limit while we read (413 from HttpErrors).
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = limit;
        }

        var reader = request.BodyReader;
        while (true)
        {
            var read = await reader.ReadAsync(ct).ConfigureAwait(false);
            var buffer = read.Buffer;
            if (buffer.Length > limit)
            {
                reader.AdvanceTo(buffer.End);
                return (null, TooLarge(limit));
            }

            if (read.IsCompleted)
            {
                try
                {
                    return Deserialize<T>(buffer) is { } body
                        ? (body, null)
                        : (null, Error(ErrorCode.ValidationFailed, "the body must be a JSON object"));
                }
                catch (JsonException e)
                {
                    return (null, Error(ErrorCode.ValidationFailed, $"the body is not valid JSON of this request's shape: {e.Message}"));
                }
                finally
                {
                    reader.AdvanceTo(buffer.End);
                }
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static T? Deserialize<T>(ReadOnlySequence<byte> utf8)
    {
        var json = new Utf8JsonReader(utf8);
        return JsonSerializer.Deserialize<T>(ref json, JsonSerializerOptions.Web);
    }

    private static IResult TooLarge(long limit) => HttpErrors.Result(413, $"the body is larger than this endpoint's limit of {limit} bytes");

    /// <summary>Counts every answered HTTP send in <c>gateway.sends</c> and <c>gateway.send.duration</c> (transport
    /// <c>http</c>), whatever answered it (the handler, a refusal before the body, the 500 of an exception): the status is
    /// known when the response starts.</summary>
    private static ValueTask<object?> CountSendAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var response = context.HttpContext.Response;
        response.OnStarting(static state =>
        {
            var (response, receivedAt) = ((HttpResponse, long))state;
            var status = response.StatusCode;
            GatewayMetrics.SendAnswered(http: true, status is 200 or 201 ? "ok" : HttpErrors.ForStatus(status).Error, receivedAt);
            return Task.CompletedTask;
        }, (response, System.Diagnostics.Stopwatch.GetTimestamp()));
        return next(context);
    }

    private static IResult Error(ErrorCode code, string? message) => HttpErrors.Result(code switch
    {
        ErrorCode.NotMember => 403,
        ErrorCode.IdempotencyConflict => 409,
        ErrorCode.Unavailable => 503,
        ErrorCode.RateLimited => 429,
        ErrorCode.Internal => 500,
        _ => 400,
    }, (int)code, code.ToString(), message ?? code.ToString());

    internal sealed record CreateChatRequest(string? ChatId, string[]? Members);

    internal sealed record AddMemberRequest(string? UserId);

    internal sealed record SendRequest(string? ContentType, string? Text, string? ContentBase64, long? ExpiresAt);

    internal sealed record SendResponse(string ChatId, ulong Seq, string MessageId, long SentAt, bool Duplicate);
}
