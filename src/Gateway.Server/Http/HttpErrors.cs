using System.Text.Json;
using System.Text.Json.Serialization;
using Gateway.Protocol;

namespace Gateway.Server.Http;

/// <summary>
/// The one error shape of the HTTP listener, <c>{ code, error, message }</c> (plus <c>retryAfterMs</c> on 429), for
/// every 4xx and 5xx: those our handlers answer, and those raised before or around them (routing 404/405, binding
/// failures, Kestrel's body limit, unhandled exceptions), which <see cref="UseJsonErrors"/> turns into the same shape.
/// </summary>
/// <remarks>
/// <c>code</c> is the WebSocket protocol's error code where one means the same thing (20 ValidationFailed for every
/// 400, 10 NotMember, 21 IdempotencyConflict, 40 RateLimited, 30 Unavailable, 50 Internal for every 5xx), and otherwise
/// the HTTP status itself (401, 404, 405, 408, 413, 414, 415, 431, …).
/// </remarks>
internal static class HttpErrors
{
    /// <summary>Longest path plus query string the API answers; every route of ours fits in a few hundred bytes.</summary>
    public const int MaxUrlLength = 2048;

    /// <summary>The code and name <paramref name="status"/> stands for when nothing more specific is known.</summary>
    public static (int Code, string Error) ForStatus(int status) => status switch
    {
        400 => ((int)ErrorCode.ValidationFailed, nameof(ErrorCode.ValidationFailed)),
        401 => (401, "Unauthorized"),
        403 => (403, "Forbidden"),
        404 => (404, "NotFound"),
        405 => (405, "MethodNotAllowed"),
        408 => (408, "RequestTimeout"),
        409 => ((int)ErrorCode.IdempotencyConflict, nameof(ErrorCode.IdempotencyConflict)),
        411 => (411, "LengthRequired"),
        413 => (413, "PayloadTooLarge"),
        414 => (414, "UriTooLong"),
        415 => (415, "UnsupportedMediaType"),
        429 => ((int)ErrorCode.RateLimited, nameof(ErrorCode.RateLimited)),
        431 => (431, "RequestHeaderFieldsTooLarge"),
        503 => ((int)ErrorCode.Unavailable, nameof(ErrorCode.Unavailable)),
        >= 500 => ((int)ErrorCode.Internal, nameof(ErrorCode.Internal)),
        _ => (status, "HttpError"),
    };

    /// <summary>An error result with the code and name of <paramref name="status"/>.</summary>
    public static IResult Result(int status, string message)
    {
        var (code, error) = ForStatus(status);
        return Result(status, code, error, message);
    }

    /// <summary>An error result with an explicit code and name.</summary>
    public static IResult Result(int status, int code, string error, string message) =>
        new ErrorResult(status, Serialize(new ApiError(code, error, message)), 0);

    /// <summary>429 with <c>Retry-After</c> (whole seconds, rounded up) and <c>retryAfterMs</c>, as a WebSocket Error 40 carries.</summary>
    public static IResult RateLimited(TimeSpan retryAfter, string message)
    {
        var ms = (long)Math.Clamp(Math.Ceiling(retryAfter.TotalMilliseconds), 1, uint.MaxValue);
        return new ErrorResult(429, Serialize(new ApiError((int)ErrorCode.RateLimited, nameof(ErrorCode.RateLimited), message, ms)),
            (int)Math.Ceiling(ms / 1000.0));
    }

    /// <summary>
    /// Middleware (first in the pipeline after routing): URLs over <see cref="MaxUrlLength"/> → 414; a
    /// <see cref="BadHttpRequestException"/> (binding failures, Kestrel's body limit, a broken chunked body) → its status;
    /// any other exception → 500 Internal, logged; and any 4xx/5xx that left without a body (404, 405, …) gets one.
    /// </summary>
    /// <remarks>Kestrel answers a few malformed requests itself, before any middleware runs, with an empty body: a request
    /// line over <c>MaxRequestLineSize</c> (8 KiB) and headers over <c>MaxRequestHeadersTotalSize</c> (32 KiB) among them.</remarks>
    public static void UseJsonErrors(WebApplication app)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Gateway.Http");
        app.Use(async (context, next) =>
        {
            var request = context.Request;
            if ((request.Path.Value?.Length ?? 0) + (request.QueryString.Value?.Length ?? 0) > MaxUrlLength)
            {
                await WriteAsync(context, 414, $"the path and query are longer than {MaxUrlLength} bytes").ConfigureAwait(false);
                return;
            }

            try
            {
                await next(context).ConfigureAwait(false);
            }
            catch (BadHttpRequestException e) when (!context.Response.HasStarted)
            {
                await WriteAsync(context, e.StatusCode, e.Message).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (!context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
            {
                logger.LogError(e, "HTTP {Method} {Path} failed", request.Method, request.Path);
                await WriteAsync(context, 500, "internal error").ConfigureAwait(false);
                return;
            }

            var status = context.Response.StatusCode;
            if (status >= 400 && !context.Response.HasStarted)
            {
                await WriteAsync(context, status, status switch
                {
                    404 => "no such resource",
                    405 => $"method {request.Method} is not allowed here",
                    400 => "the request is malformed",
                    _ => Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status),
                }, clear: false).ConfigureAwait(false);
            }
        });
    }

    private const string JsonContentType = "application/json; charset=utf-8";

    // Serialized up front so that every error carries a Content-Length (no chunked framing for a few dozen bytes).
    private static byte[] Serialize(ApiError error) => JsonSerializer.SerializeToUtf8Bytes(error, JsonSerializerOptions.Web);

    private static Task WriteAsync(HttpContext context, int status, string message, bool clear = true)
    {
        // After an exception, headers a handler set for a success no longer describe this body; a bodiless error keeps
        // its headers (Allow on a 405).
        if (clear)
        {
            context.Response.Clear();
        }

        var (code, error) = ForStatus(status);
        return new ErrorResult(status, Serialize(new ApiError(code, error, message)), 0).ExecuteAsync(context);
    }

    /// <summary>The error body.</summary>
    internal sealed record ApiError(
        int Code,
        string Error,
        string Message,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? RetryAfterMs = null);

    /// <summary>An error response: status, JSON body with its length, and <c>Retry-After</c> when positive.</summary>
    private sealed class ErrorResult(int status, byte[] body, int retryAfterSeconds) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            var response = httpContext.Response;
            response.StatusCode = status;
            if (retryAfterSeconds > 0)
            {
                response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            response.ContentType = JsonContentType;
            response.ContentLength = body.Length;
            return response.Body.WriteAsync(body).AsTask();
        }
    }
}
