using Gateway.Client.Internal;
using Gateway.Protocol;

namespace Gateway.Client;

public sealed partial class ChatClient
{
    private long _typingDropped;

    /// <summary>
    /// <see cref="UserTypingFrame"/> notices dropped because the event buffer was full. Typing is ephemeral: it
    /// never holds back the socket the way messages do (the server drops it first under pressure too).
    /// </summary>
    public long TypingNoticesDropped => Interlocked.Read(ref _typingDropped);

    /// <summary>
    /// Tells the chat's other members that the user is typing. Fire-and-forget: the server answers nothing on
    /// success, silently drops notices over its per-user typing rate (5/s, burst 10 by default), and answers
    /// <see cref="ErrorCode.NotMember"/> or <see cref="ErrorCode.ValidationFailed"/> with an Error that the
    /// client only logs. Call it at most every few seconds while the user types (other clients show "typing"
    /// for about 5 s after the last notice).
    /// </summary>
    /// <param name="chatId">The chat.</param>
    /// <param name="cancellationToken">Stops waiting for the socket.</param>
    /// <returns>True when the frame was written; false when there is no connection right now (reconnecting,
    /// draining) or it broke meanwhile. The notice is then dropped, not queued: a late "typing" would be stale.</returns>
    /// <exception cref="ChatClientException">The client ended for good.</exception>
    public async Task<bool> SendTypingAsync(string chatId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(chatId);
        Connection? conn;
        lock (_stateLock)
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            if (_fatal is not null)
            {
                throw _fatal;
            }

            conn = _current;
        }

        if (conn is null)
        {
            return false;
        }

        try
        {
            await conn.SendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (conn.CloseSent || conn.IsTornDown)
                {
                    return false;
                }

                // A real request id, not 0: an Error (NotMember...) names it, so the log says what it answers.
                var requestId = conn.NextRequestId();
                conn.Buffer.ResetWrittenCount();
                ClientFrameWriter.WriteTyping(conn.Buffer, requestId, chatId);
                await conn.FlushBufferAsync().ConfigureAwait(false);
                return true;
            }
            finally
            {
                conn.SendLock.Release();
            }
        }
        catch (Exception e) when (IsSocketFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            Log($"connection {conn.Number}: typing for {chatId} not written ({e.GetType().Name})");
            return false;
        }
    }

    /// <summary>Hands a typing notice of a subscribed chat to the application without ever waiting for room.</summary>
    private void OnUserTyping(UserTypingFrame typing)
    {
        lock (_chatsLock)
        {
            if (!_chats.ContainsKey(typing.ChatId))
            {
                return; // unsubscribed or revoked while it was in flight
            }
        }

        if (!_events.Writer.TryWrite(typing))
        {
            Interlocked.Increment(ref _typingDropped);
        }
    }
}
