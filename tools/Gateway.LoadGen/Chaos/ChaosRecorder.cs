using System.Diagnostics;
using System.Globalization;

namespace Gateway.LoadGen.Chaos;

/// <summary>Thread-safe record of a chaos run: sends, acks, deliveries, counters, and a time-stamped event log file.</summary>
internal sealed class ChaosRecorder : IDisposable
{
    private readonly Stopwatch _clock;
    private readonly Lock _lock = new();
    private readonly List<ChaosSend> _sends = [];
    private readonly List<ChaosDelivery> _deliveries = [];
    private readonly Dictionary<string, long> _counters = new(StringComparer.Ordinal);
    private readonly StreamWriter _events;
    private long _eventLines;

    public ChaosRecorder(Stopwatch clock, string eventsPath)
    {
        _clock = clock;
        _events = new StreamWriter(eventsPath, append: false) { AutoFlush = true };
    }

    /// <summary>Seconds since the run started.</summary>
    public double Now => _clock.Elapsed.TotalSeconds;

    public void Issued(ChaosSend send)
    {
        lock (_lock)
        {
            _sends.Add(send);
        }
    }

    public void Acked(ChaosSend send, ChaosAck ack)
    {
        lock (_lock)
        {
            send.Acks.Add(ack);
        }
    }

    public void Delivered(ChaosDelivery d)
    {
        lock (_lock)
        {
            _deliveries.Add(d);
        }
    }

    public void Count(string key)
    {
        lock (_lock)
        {
            _counters[key] = _counters.GetValueOrDefault(key) + 1;
        }
    }

    /// <summary>One line in events.log (capped at 200,000 lines).</summary>
    public void Event(string text)
    {
        lock (_lock)
        {
            if (++_eventLines <= 200_000)
            {
                _events.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{Now,8:0.000}] {text}"));
            }
        }
    }

    /// <summary>Acks so far (for the progress line).</summary>
    public (long Sends, long Acked, long Deliveries) Totals()
    {
        lock (_lock)
        {
            return (_sends.Count, _sends.Count(s => s.Acks.Count > 0), _deliveries.Count);
        }
    }

    /// <summary>A copy of everything, for the verdict.</summary>
    public (List<ChaosSend> Sends, List<ChaosDelivery> Deliveries, Dictionary<string, long> Counters) Snapshot()
    {
        lock (_lock)
        {
            return ([.. _sends], [.. _deliveries], new Dictionary<string, long>(_counters, StringComparer.Ordinal));
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _events.Dispose();
        }
    }
}
