using System.Threading.Tasks.Sources;
using Gateway.Protocol;

namespace Gateway.Domain.Internal;

/// <summary>
/// A command waiting for the commit loop. It is its own <see cref="IValueTaskSource{TResult}"/>, so a queued send
/// costs one allocation and no per-command async state machine. Completed only by the commit loop (or by the
/// enqueuing caller when the loop never saw it); every method is called from one thread at a time.
/// </summary>
internal abstract class PendingCommand
{
    protected PendingCommand(CancellationToken cancellationToken) => CancellationToken = cancellationToken;

    /// <summary>The caller's token; honoured only while the command waits in the queue.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>True once a result or exception was set; later completions are ignored.</summary>
    public bool IsCompleted { get; protected set; }

    /// <summary>Completes with a failed result of the command's kind.</summary>
    public abstract void CompleteFailed(ErrorCode code, string message);

    /// <summary>Completes as cancelled (the caller gave up before the loop took the command).</summary>
    public abstract void CompleteCanceled();
}

/// <summary>A pending command that produces <typeparamref name="TResult"/>.</summary>
internal abstract class PendingCommand<TResult> : PendingCommand, IValueTaskSource<TResult>
{
    // Continuations run asynchronously so that a caller's continuation never executes on (and stalls) the commit loop.
    private ManualResetValueTaskSourceCore<TResult> _core = new() { RunContinuationsAsynchronously = true };

    protected PendingCommand(CancellationToken cancellationToken)
        : base(cancellationToken)
    {
    }

    /// <summary>The task the caller awaits. Await it once.</summary>
    public ValueTask<TResult> AsValueTask() => new(this, _core.Version);

    /// <summary>Sets the result unless the command already completed.</summary>
    public void Complete(TResult result)
    {
        if (IsCompleted)
        {
            return;
        }

        IsCompleted = true;
        _core.SetResult(result);
    }

    /// <inheritdoc />
    public override void CompleteCanceled()
    {
        if (IsCompleted)
        {
            return;
        }

        IsCompleted = true;
        _core.SetException(new OperationCanceledException(CancellationToken));
    }

    /// <inheritdoc />
    public TResult GetResult(short token) => _core.GetResult(token);

    /// <inheritdoc />
    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    /// <inheritdoc />
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}

/// <summary>A queued send. <see cref="Content"/> is the command's, handed over by the caller: the committed message keeps it.</summary>
internal sealed class SendCommand : PendingCommand<SendResult>
{
    public SendCommand(SendMessage message, CancellationToken cancellationToken)
        : base(cancellationToken) => Message = message;

    public SendMessage Message { get; }

    public ReadOnlyMemory<byte> Content => Message.Content;

    public override void CompleteFailed(ErrorCode code, string message) => Complete(SendResult.Fail(code, message));
}

/// <summary>Which membership change an <see cref="AdminCommand"/> makes.</summary>
internal enum AdminKind
{
    CreateChat,
    AddMember,
    RemoveMember,
}

/// <summary>A queued membership change.</summary>
internal sealed class AdminCommand : PendingCommand<AdminResult>
{
    public AdminCommand(AdminKind kind, string tenantId, string chatId, string[] userIds, CancellationToken cancellationToken)
        : base(cancellationToken)
    {
        Kind = kind;
        TenantId = tenantId;
        ChatId = chatId;
        UserIds = userIds;
    }

    public AdminKind Kind { get; }

    public string TenantId { get; }

    public string ChatId { get; }

    /// <summary>The users to add or remove (one for add and remove), the caller's collection copied.</summary>
    public string[] UserIds { get; }

    public override void CompleteFailed(ErrorCode code, string message) => Complete(AdminResult.Fail(code, message));
}
