using System.Collections.Concurrent;
using System.Diagnostics;
using Gateway.Domain;

namespace Gateway.Server.Tests;

/// <summary>Records every stopped span of the Gateway source while it lives (all sampled, all data).</summary>
public sealed class SpanRecorder : IDisposable
{
    private readonly ConcurrentQueue<Activity> _stopped = new();
    private readonly ActivityListener _listener;

    public SpanRecorder()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == GatewayTracing.SourceName,
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public IReadOnlyCollection<Activity> All => [.. _stopped];

    /// <summary>The first stopped span that matches, waiting for it (spans end on other threads than the test's).</summary>
    public async Task<Activity> WaitForAsync(Func<Activity, bool> match, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            if (_stopped.FirstOrDefault(match) is { } found)
            {
                return found;
            }

            Assert.True(DateTime.UtcNow < deadline, "no such span; spans seen: " + string.Join(", ", _stopped.Select(s => $"{s.DisplayName} {s.TraceId}")));
            await Task.Delay(20);
        }
    }

    public void Dispose() => _listener.Dispose();
}
