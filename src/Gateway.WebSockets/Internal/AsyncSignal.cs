using System.Threading.Tasks.Sources;

namespace Gateway.WebSockets.Internal;

/// <summary>
/// An auto-reset signal with one waiter and any number of setters, awaited without allocating
/// (a reusable <see cref="IValueTaskSource"/>). Used to wake the writer loop.
/// </summary>
internal sealed class AsyncSignal : IValueTaskSource
{
    private const int Idle = 0;
    private const int Waiting = 1;
    private const int Signaled = 2;

    // Continuations run on the thread pool: a TryEnqueue caller (e.g. a fanout loop) must never end up running the
    // writer loop inline.
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private int _state;

    /// <summary>Completes when <see cref="Set"/> was called since the last wait. Only one waiter at a time.</summary>
    public ValueTask WaitAsync()
    {
        if (Interlocked.CompareExchange(ref _state, Idle, Signaled) == Signaled)
        {
            return default;
        }

        _core.Reset();
        if (Interlocked.CompareExchange(ref _state, Waiting, Idle) == Idle)
        {
            return new ValueTask(this, _core.Version);
        }

        // Set() ran between the two exchanges.
        Volatile.Write(ref _state, Idle);
        return default;
    }

    /// <summary>Wakes the waiter, or makes the next wait complete at once.</summary>
    public void Set()
    {
        while (true)
        {
            int state = Volatile.Read(ref _state);
            if (state == Signaled)
            {
                return;
            }

            if (state == Waiting)
            {
                if (Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
                {
                    _core.SetResult(true);
                    return;
                }
            }
            else if (Interlocked.CompareExchange(ref _state, Signaled, Idle) == Idle)
            {
                return;
            }
        }
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token,
        ValueTaskSourceOnCompletedFlags flags) => _core.OnCompleted(continuation, state, token, flags);
}
