namespace Gateway.Nats.Tests;

/// <summary>The read coalescing that README and proto/NATS.md promise, at the mechanism: deterministic, no timing.</summary>
public sealed class CoalescerTests
{
    [Fact]
    public async Task Concurrent_calls_with_one_key_share_one_execution_and_the_entry_ends_with_it()
    {
        var coalescer = new Coalescer<string, int>();
        var release = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var executions = 0;
        Task<int> Factory(string _)
        {
            Interlocked.Increment(ref executions);
            return release.Task;
        }

        var calls = Enumerable.Range(0, 10).Select(_ => coalescer.RunAsync("chat-1/after-5", Factory)).ToArray();
        var other = coalescer.RunAsync("chat-2/after-5", _ => Task.FromResult(7));

        Assert.Equal(7, await other);
        Assert.Equal(1, executions);
        Assert.Equal(9, coalescer.Joined);
        Assert.All(calls, c => Assert.False(c.IsCompleted));

        release.SetResult(42);
        Assert.All(await Task.WhenAll(calls), v => Assert.Equal(42, v));

        // Nothing is cached beyond the flight: the next call reads again.
        Assert.Equal(43, await coalescer.RunAsync("chat-1/after-5", _ => Task.FromResult(43)));
        Assert.Equal(9, coalescer.Joined);
    }

    [Fact]
    public async Task A_failed_execution_fails_every_joiner_and_is_not_kept()
    {
        var coalescer = new Coalescer<string, int>();
        var release = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var a = coalescer.RunAsync("k", _ => release.Task);
        var b = coalescer.RunAsync("k", _ => Task.FromResult(0));
        release.SetException(new RemoteException(Gateway.Protocol.ErrorCode.Unavailable, "writer gone"));

        await Assert.ThrowsAsync<RemoteException>(() => a);
        await Assert.ThrowsAsync<RemoteException>(() => b);
        Assert.Equal(5, await coalescer.RunAsync("k", _ => Task.FromResult(5)));
    }
}
