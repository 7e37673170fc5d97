using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Gateway.Benchmarks.Support;

/// <summary>
/// Samples what the process allocates through the runtime's GCAllocationTick event (one event per ~100 KB allocated,
/// naming the type that crossed the threshold), so a non-zero alloc-check figure can be attributed to a type.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, int> _types = new(StringComparer.Ordinal);
    private volatile bool _recording;

    public void Start()
    {
        _types.Clear();
        _recording = true;
    }

    public IReadOnlyList<KeyValuePair<string, int>> Stop()
    {
        _recording = false;
        return [.. _types.OrderByDescending(kv => kv.Value)];
    }

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (!_recording || eventData.EventName is null || !eventData.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal))
        {
            return;
        }

        int index = eventData.PayloadNames?.IndexOf("TypeName") ?? -1;
        if (index >= 0 && eventData.Payload?[index] is string type)
        {
            _types.AddOrUpdate(type, 1, static (_, n) => n + 1);
        }
    }
}
