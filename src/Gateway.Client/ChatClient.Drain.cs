using System.Net.WebSockets;
using Gateway.Client.Internal;
using Gateway.Protocol;

namespace Gateway.Client;

public sealed partial class ChatClient
{
    // How long a drain close waits for the server's close reply while still reading answers. Cutting it short
    // loses nothing (unacknowledged sends are written again on the next connection with the same id); waiting
    // only saves those sends a second round trip. 2 s is far above a healthy server's close round trip.
    private static readonly TimeSpan DrainCloseTimeout = TimeSpan.FromSeconds(2);

    /// <summary>The server is shutting down: keep using the connection until its delay, then move.</summary>
    private void OnDrain(Connection conn, DrainFrame drain)
    {
        if (!conn.TryStartDrain())
        {
            return;
        }

        Log($"connection {conn.Number}: server draining ({drain.Message}); reconnecting in {drain.ReconnectAfterMs} ms");
        _ = DrainAfterAsync(conn, TimeSpan.FromMilliseconds(drain.ReconnectAfterMs));
    }

    private async Task DrainAfterAsync(Connection conn, TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, conn.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return; // the connection ended first (the server closed with 1001, or the client was disposed)
        }

        await CloseForDrainAsync(conn).ConfigureAwait(false);
    }

    /// <summary>
    /// Unpublishes the connection (new requests wait for the next one), sends a normal close, and keeps
    /// reading until the server's close reply so that acks already on their way still complete their sends.
    /// The receive loop then ends and the run loop reconnects at once and resumes.
    /// </summary>
    private async Task CloseForDrainAsync(Connection conn)
    {
        try
        {
            using var timeout = new CancellationTokenSource(DrainCloseTimeout);
            await conn.SendLock.WaitAsync(timeout.Token).ConfigureAwait(false);
            try
            {
                Unpublish(conn);
                conn.CloseSent = true; // under the send lock: no writer can slip a frame in after the close
                await conn.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "draining", timeout.Token).ConfigureAwait(false);
            }
            finally
            {
                conn.SendLock.Release();
            }

            await conn.ReceiveTask.WaitAsync(DrainCloseTimeout).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException || IsSocketFailure(e))
        {
            Log($"connection {conn.Number}: drain close did not complete ({e.GetType().Name}); dropping it");
            conn.Abort();
        }
    }
}
