using System.Buffers;
using Gateway.Protocol;

namespace Gateway.Client.Internal;

/// <summary>A request other than a send: fails when its connection is lost, never retried.</summary>
internal abstract class PendingCall
{
    private readonly TaskCompletionSource<ServerFrame> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<ServerFrame> Task => _result.Task;

    /// <summary>The answer frame type this call expects.</summary>
    public abstract FrameType Answer { get; }

    /// <summary>Issued by the client itself (resume, gap repair): nobody awaits it, so it is never faulted.</summary>
    public virtual bool IsInternal => false;

    /// <summary>Writes the request frame.</summary>
    public abstract void Write(IBufferWriter<byte> output, uint requestId);

    public void Complete(ServerFrame answer) => _result.TrySetResult(answer);

    public void Fail(Exception error)
    {
        // An internal call has no awaiter: a faulted task would surface as UnobservedTaskException.
        if (IsInternal)
        {
            _result.TrySetCanceled();
        }
        else
        {
            _result.TrySetException(error);
        }
    }
}

/// <summary>Subscribe. <see cref="Resume"/> marks the client's own re-subscribe (reconnect or gap repair): it keeps
/// the client's cursors, while an application subscribe sets them to the requested values.</summary>
internal sealed class SubscribeCall : PendingCall
{
    public SubscribeCall(ChatCursor[] cursors, bool resume)
    {
        Cursors = cursors;
        Resume = resume;
    }

    public ChatCursor[] Cursors { get; }

    public bool Resume { get; }

    /// <summary>For a resume re-subscribe that got a retryable error: how many times it was sent again.</summary>
    public int Attempt { get; init; }

    public override bool IsInternal => Resume;

    public override FrameType Answer => FrameType.Subscribed;

    public override void Write(IBufferWriter<byte> output, uint requestId) => ClientFrameWriter.WriteSubscribe(output, requestId, Cursors);
}

/// <summary>Unsubscribe.</summary>
internal sealed class UnsubscribeCall(string[] chatIds) : PendingCall
{
    public override FrameType Answer => FrameType.Unsubscribed;

    public override void Write(IBufferWriter<byte> output, uint requestId) => ClientFrameWriter.WriteUnsubscribe(output, requestId, chatIds);
}

/// <summary>History.</summary>
internal sealed class HistoryCall(string chatId, ulong beforeSeq, uint limit) : PendingCall
{
    public override FrameType Answer => FrameType.HistoryPage;

    public override void Write(IBufferWriter<byte> output, uint requestId) => ClientFrameWriter.WriteHistory(output, requestId, chatId, beforeSeq, limit);
}

/// <summary>RefreshToken: answered by TokenRefreshed, or Error(Unauthenticated).</summary>
internal sealed class RefreshTokenCall(string token) : PendingCall
{
    public override FrameType Answer => FrameType.TokenRefreshed;

    public override void Write(IBufferWriter<byte> output, uint requestId) => ClientFrameWriter.WriteRefreshToken(output, requestId, token);
}
