using System.Collections.Concurrent;
using System.Diagnostics;
using Gateway.Domain;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Xunit;

namespace Gateway.TestUtilities;

/// <summary>
/// Records every ended span of the Gateway source while it lives, through OpenTelemetry's SDK as a host would export
/// them: a tracer provider on the source (always sampled) with the in-memory exporter.
/// </summary>
public sealed class SpanRecorder : IDisposable
{
    private readonly Exported _stopped = new();
    private readonly TracerProvider _provider;

    public SpanRecorder()
    {
        _provider = Sdk.CreateTracerProviderBuilder()
            .AddSource(GatewayTracing.SourceName)
            .SetSampler(new AlwaysOnSampler())
            .AddInMemoryExporter(_stopped)
            .Build();
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

    public void Dispose() => _provider.Dispose();

    /// <summary>The exporter's collection: spans end on many threads while the test reads.</summary>
    private sealed class Exported : ICollection<Activity>
    {
        private readonly ConcurrentQueue<Activity> _items = new();

        public int Count => _items.Count;

        public bool IsReadOnly => false;

        public void Add(Activity item) => _items.Enqueue(item);

        public void Clear() => _items.Clear();

        public bool Contains(Activity item) => _items.Contains(item);

        public void CopyTo(Activity[] array, int arrayIndex) => _items.CopyTo(array, arrayIndex);

        public bool Remove(Activity item) => throw new NotSupportedException();

        public IEnumerator<Activity> GetEnumerator() => _items.GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
