using System.Collections.Concurrent;

namespace Gateway.Nats;

/// <summary>
/// Request coalescing, as Discord's data services do it: concurrent calls with the same key share one in-flight
/// execution, and the entry is dropped when it completes (no caching beyond the flight). A thousand clients of one chat
/// resuming at once cost one read of each page, not a thousand.
/// </summary>
/// <remarks>A joiner may get an answer whose read began shortly before it arrived. Callers here tolerate that: catch-up
/// reads again whenever something newer than what it read has been announced.</remarks>
public sealed class Coalescer<TKey, TValue>
    where TKey : notnull
{
    private readonly ConcurrentDictionary<TKey, Lazy<Task<TValue>>> _inFlight = new();
    private long _joined;

    /// <summary>Calls that joined an in-flight execution instead of starting one.</summary>
    public long Joined => Interlocked.Read(ref _joined);

    /// <summary>Runs <paramref name="factory"/> for <paramref name="key"/>, or joins the run already in flight.</summary>
    public Task<TValue> RunAsync(TKey key, Func<TKey, Task<TValue>> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        var mine = new Lazy<Task<TValue>>(() => Execute(key, factory));
        var current = _inFlight.GetOrAdd(key, mine);
        if (!ReferenceEquals(current, mine))
        {
            Interlocked.Increment(ref _joined);
        }

        return current.Value;
    }

    private async Task<TValue> Execute(TKey key, Func<TKey, Task<TValue>> factory)
    {
        try
        {
            return await factory(key).ConfigureAwait(false);
        }
        finally
        {
            _inFlight.TryRemove(key, out _);
        }
    }
}
