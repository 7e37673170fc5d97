using System.Security.Cryptography;
using System.Text;
using Gateway.Domain;
using Gateway.Domain.Ports;
using Gateway.Protocol;
using Gateway.Server.Auth;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Http;

/// <summary>
/// The HTTP API on the HTTP listener: health, chat administration (admin key), and the server-side send and
/// history for backends-for-frontends (user JWT). Errors are JSON <c>{ code, error, message }</c> with the same
/// numeric codes as the WebSocket protocol.
/// </summary>
internal static class HttpApi
{
    public static void Map(WebApplication app)
    {
        var adminKey = app.Services.GetRequiredService<IOptions<AuthOptions>>().Value.AdminKey;
        if (string.IsNullOrEmpty(adminKey))
        {
            adminKey = DevKeys.GetOrCreate(app.Services.GetRequiredService<IOptions<GatewayOptions>>().Value.DataDirectory, "admin.key");
        }

        var adminKeyBytes = Encoding.UTF8.GetBytes(adminKey);
        // Only the HTTP listener serves these routes: the WebSocket listener has no HTTP pipeline at all.
        app.MapGet("/healthz", () => Results.Text("ok"));

        var admin = app.MapGroup("/v1/admin/tenants/{tenantId}").AddEndpointFilter(async (ctx, next) =>
        {
            var header = ctx.HttpContext.Request.Headers.Authorization.ToString();
            var given = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? Encoding.UTF8.GetBytes(header[7..].Trim()) : [];
            return CryptographicOperations.FixedTimeEquals(given, adminKeyBytes)
                ? await next(ctx).ConfigureAwait(false)
                : Results.Json(new ApiError(401, "Unauthorized", "admin key required (Authorization: Bearer <admin key>)"), statusCode: 401);
        });

        admin.MapPost("/chats", async (string tenantId, CreateChatRequest body, IWriteService writer, CancellationToken ct) =>
        {
            if (body.ChatId is null)
            {
                return Error(ErrorCode.ValidationFailed, "chatId is required");
            }

            var result = await writer.CreateChatAsync(tenantId, body.ChatId, body.Members ?? [], ct).ConfigureAwait(false);
            return result.IsSuccess
                ? Results.Json(new { tenantId, chatId = body.ChatId, members = body.Members ?? [] }, statusCode: 201)
                : Error(result.Error, result.ErrorMessage);
        });

        admin.MapPost("/chats/{chatId}/members", async (string tenantId, string chatId, AddMemberRequest body, IWriteService writer, CancellationToken ct) =>
        {
            if (body.UserId is null)
            {
                return Error(ErrorCode.ValidationFailed, "userId is required");
            }

            var result = await writer.AddMemberAsync(tenantId, chatId, body.UserId, ct).ConfigureAwait(false);
            return result.IsSuccess ? Results.Json(new { tenantId, chatId, userId = body.UserId }) : Error(result.Error, result.ErrorMessage);
        });

        admin.MapDelete("/chats/{chatId}/members/{userId}", async (string tenantId, string chatId, string userId, IWriteService writer, CancellationToken ct) =>
        {
            var result = await writer.RemoveMemberAsync(tenantId, chatId, userId, ct).ConfigureAwait(false);
            return result.IsSuccess ? Results.NoContent() : Error(result.Error, result.ErrorMessage);
        });

        admin.MapGet("/chats/{chatId}/members", async (string tenantId, string chatId, IMembership membership, CancellationToken ct) =>
            Results.Json(new { tenantId, chatId, members = await membership.GetMembersAsync(tenantId, chatId, ct).ConfigureAwait(false) }));

        // Server-side send (the BFF path): the caller presents the user's JWT; the same domain code as the socket.
        app.MapPost("/v1/chats/{chatId}/messages", async (string chatId, SendRequest body, HttpRequest request, JwtAuthenticator auth,
            IWriteService writer, CancellationToken ct) =>
        {
            var principal = Authenticate(request, auth, out var denied);
            if (principal is null)
            {
                return denied!;
            }

            var key = request.Headers["Idempotency-Key"].ToString();
            if (string.IsNullOrEmpty(key))
            {
                return Error(ErrorCode.ValidationFailed, "the Idempotency-Key header is required");
            }

            byte[] content;
            try
            {
                content = body.ContentBase64 is { } b64 ? Convert.FromBase64String(b64) : Encoding.UTF8.GetBytes(body.Text ?? "");
            }
            catch (FormatException)
            {
                return Error(ErrorCode.ValidationFailed, "contentBase64 is not valid base64");
            }

            var result = await writer.SendAsync(new SendMessage(principal.TenantId, chatId, principal.UserId, key,
                body.ContentType ?? "text/plain", content, body.ExpiresAt, request.Headers["traceparent"].ToString() is { Length: > 0 } tp ? tp : null), ct)
                .ConfigureAwait(false);
            return result.IsSuccess
                ? Results.Json(new SendResponse(chatId, result.Seq, result.MessageId!, result.SentAt, result.Duplicate), statusCode: result.Duplicate ? 200 : 201)
                : Error(result.Error, result.ErrorMessage);
        });

        app.MapGet("/v1/chats/{chatId}/messages", async (string chatId, ulong? beforeSeq, int? limit, HttpRequest request,
            JwtAuthenticator auth, IMembership membership, IMessageHistory history, CancellationToken ct) =>
        {
            var principal = Authenticate(request, auth, out var denied);
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

    private static Principal? Authenticate(HttpRequest request, JwtAuthenticator auth, out IResult? denied)
    {
        var header = request.Headers.Authorization.ToString();
        var token = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : null;
        var principal = auth.Validate(token, out var failure);
        denied = principal is null ? Results.Json(new ApiError(401, "Unauthorized", failure ?? "unauthorized"), statusCode: 401) : null;
        return principal;
    }

    private static IResult Error(ErrorCode code, string? message) => Results.Json(new ApiError((int)code, code.ToString(), message ?? code.ToString()),
        statusCode: code switch
        {
            ErrorCode.NotMember => 403,
            ErrorCode.IdempotencyConflict => 409,
            ErrorCode.Unavailable => 503,
            ErrorCode.RateLimited => 429,
            ErrorCode.Internal => 500,
            _ => 400,
        });

    internal sealed record ApiError(int Code, string Error, string Message);

    internal sealed record CreateChatRequest(string? ChatId, string[]? Members);

    internal sealed record AddMemberRequest(string? UserId);

    internal sealed record SendRequest(string? ContentType, string? Text, string? ContentBase64, long? ExpiresAt);

    internal sealed record SendResponse(string ChatId, ulong Seq, string MessageId, long SentAt, bool Duplicate);
}
