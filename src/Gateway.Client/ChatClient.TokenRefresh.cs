using Gateway.Client.Internal;
using Gateway.Protocol;

namespace Gateway.Client;

public sealed partial class ChatClient
{
    private long _tokenExpiresAt;
    private long _tokenRefreshes;
    private long _tokenRefreshFailures;

    /// <summary>
    /// When the current connection's token expires, as Unix milliseconds: <see cref="HelloFrame.TokenExpiresAt"/>
    /// of the latest connection, replaced by the new expiry after each successful in-place refresh. Null before
    /// the first connect.
    /// </summary>
    public long? TokenExpiresAt => Volatile.Read(ref _hello) is null ? null : Interlocked.Read(ref _tokenExpiresAt);

    /// <summary>Tokens replaced on a live connection (RefreshToken answered with TokenRefreshed).</summary>
    public long TokenRefreshes => Interlocked.Read(ref _tokenRefreshes);

    /// <summary>
    /// In-place refreshes that failed: the provider threw or timed out, the server answered
    /// <see cref="ErrorCode.Unauthenticated"/>, or no answer came. The server then closes with 4001 at the
    /// announced time and the reconnect asks <see cref="ChatClientOptions.TokenProvider"/> again.
    /// </summary>
    public long TokenRefreshFailures => Interlocked.Read(ref _tokenRefreshFailures);

    /// <summary>The server announced the token's expiry: refresh in place when a provider can give a new token.</summary>
    private void OnTokenExpiring(Connection conn, TokenExpiringFrame expiring)
    {
        if (_options.TokenProvider is null)
        {
            Log($"connection {conn.Number}: token expires at {expiring.ExpiresAt}; no TokenProvider, so the server closes with 4001 at {expiring.CloseAt}");
            return;
        }

        if (!conn.TryStartRefresh())
        {
            return; // one refresh per connection at a time; the running one answers this notice too
        }

        _ = RefreshTokenAsync(conn, _options.TokenProvider);
    }

    /// <summary>Asks the provider for a token and sends RefreshToken; never throws (its outcome is counted and logged).</summary>
    private async Task RefreshTokenAsync(Connection conn, Func<CancellationToken, ValueTask<string>> provider)
    {
        uint requestId = 0;
        var ended = false;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(conn.Token, _disposeToken);
            timeout.CancelAfter(_options.RequestTimeout);
            var token = await provider(timeout.Token).ConfigureAwait(false);
            var call = new RefreshTokenCall(token);
            await conn.SendLock.WaitAsync(timeout.Token).ConfigureAwait(false);
            try
            {
                if (conn.CloseSent)
                {
                    return; // draining: the next connection starts with a fresh token anyway
                }

                requestId = await WriteCallLockedAsync(conn, call).ConfigureAwait(false);
            }
            finally
            {
                conn.SendLock.Release();
            }

            var answer = (TokenRefreshedFrame)await call.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
            Interlocked.Exchange(ref _tokenExpiresAt, answer.ExpiresAt);

            // Ended before it is counted: whoever sees the count (an app, or the server's next TokenExpiring right
            // after) must find no refresh running, or that notice would be dropped as answered by this one.
            conn.EndRefresh();
            ended = true;
            Interlocked.Increment(ref _tokenRefreshes);
            Log($"connection {conn.Number}: token refreshed; it now expires at {answer.ExpiresAt}");
        }
        catch (Exception e)
        {
            // Not fatal: without a refresh the server closes with 4001 and the reconnect asks the provider again.
            conn.Pending.TryRemove(requestId, out _);
            if (!ended)
            {
                conn.EndRefresh();
                ended = true;
            }

            Interlocked.Increment(ref _tokenRefreshFailures);
            Log($"connection {conn.Number}: token refresh failed ({e.GetType().Name}: {e.Message}); the server will close with 4001");
        }
        finally
        {
            if (!ended)
            {
                conn.EndRefresh();
            }
        }
    }
}
