using Xunit;

namespace Gateway.WebSockets.Tests;

/// <summary>
/// The shared timer wheel, on a manual clock whose single timer the test fires by hand: deterministic, no sleeps.
/// </summary>
public class TimerWheelTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);

    /// <summary>A clock that moves only when told, and whose timers fire only when the test says so.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _now;
        private readonly List<ManualTimer> _timers = [];

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _now);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = new ManualTimer(callback, state);
            _timers.Add(timer);
            return timer;
        }

        /// <summary>Moves the clock forward and fires every timer once, as a periodic timer that ran late would.</summary>
        public void Advance(TimeSpan by)
        {
            Interlocked.Add(ref _now, by.Ticks);
            foreach (var t in _timers)
            {
                t.Fire();
            }
        }

        /// <summary>Moves forward one tick at a time, firing at each, like an on-time periodic timer.</summary>
        public void Run(TimeSpan total)
        {
            for (var t = TimeSpan.Zero; t < total; t += Tick)
            {
                Advance(Tick);
            }
        }

        private sealed class ManualTimer(TimerCallback callback, object? state) : ITimer
        {
            private bool _disposed;

            public void Fire()
            {
                if (!_disposed)
                {
                    callback(state);
                }
            }

            public bool Change(TimeSpan dueTime, TimeSpan period) => !_disposed;

            public void Dispose() => _disposed = true;

            public ValueTask DisposeAsync()
            {
                _disposed = true;
                return default;
            }
        }
    }

    private sealed class Recorder
    {
        public List<TimeSpan> Fired { get; } = [];
    }

    private static (TimerWheel Wheel, ManualClock Clock) NewWheel()
    {
        var clock = new ManualClock();
        return (new TimerWheel(Tick, clock), clock);
    }

    private static TimerWheelEntry Entry(TimerWheel wheel, ManualClock clock, Recorder recorder) =>
        new(wheel, s => recorder.Fired.Add(TimeSpan.FromTicks(clock.GetTimestamp())), null);

    [Fact]
    public void Fires_once_at_the_first_tick_at_or_after_the_deadline_never_before()
    {
        var (wheel, clock) = NewWheel();
        var recorder = new Recorder();
        var entry = Entry(wheel, clock, recorder);
        wheel.Schedule(entry, TimeSpan.FromMilliseconds(250));
        Assert.Equal(1, wheel.Count);

        clock.Run(TimeSpan.FromMilliseconds(200));
        Assert.Empty(recorder.Fired);

        clock.Run(TimeSpan.FromSeconds(5));
        var fired = Assert.Single(recorder.Fired);
        Assert.Equal(TimeSpan.FromMilliseconds(300), fired);
        Assert.Equal(0, wheel.Count);
    }

    [Fact]
    public void Cancel_prevents_firing_and_is_idempotent()
    {
        var (wheel, clock) = NewWheel();
        var recorder = new Recorder();
        var entry = Entry(wheel, clock, recorder);
        wheel.Schedule(entry, TimeSpan.FromMilliseconds(300));
        Assert.True(wheel.Cancel(entry));
        Assert.False(wheel.Cancel(entry));
        clock.Run(TimeSpan.FromSeconds(2));
        Assert.Empty(recorder.Fired);
        Assert.Equal(0, wheel.Count);
    }

    [Fact]
    public void Rescheduling_moves_the_deadline_instead_of_adding_one()
    {
        var (wheel, clock) = NewWheel();
        var recorder = new Recorder();
        var entry = Entry(wheel, clock, recorder);
        wheel.Schedule(entry, TimeSpan.FromMilliseconds(200));
        wheel.Schedule(entry, TimeSpan.FromMilliseconds(1000));
        Assert.Equal(1, wheel.Count);
        clock.Run(TimeSpan.FromSeconds(3));
        Assert.Equal([TimeSpan.FromSeconds(1)], recorder.Fired);
    }

    [Fact]
    public void A_callback_may_reschedule_its_own_entry_like_a_periodic_timer()
    {
        var (wheel, clock) = NewWheel();
        var fired = new List<TimeSpan>();
        TimerWheelEntry? entry = null;
        entry = new TimerWheelEntry(wheel, _ =>
        {
            fired.Add(TimeSpan.FromTicks(clock.GetTimestamp()));
            wheel.Schedule(entry!, TimeSpan.FromMilliseconds(500));
        }, null);
        wheel.Schedule(entry, TimeSpan.FromMilliseconds(500));
        clock.Run(TimeSpan.FromMilliseconds(2000));
        Assert.Equal([0.5, 1.0, 1.5, 2.0], fired.Select(t => t.TotalSeconds));
    }

    [Fact]
    public void Deadlines_beyond_one_turn_of_the_wheel_wait_for_their_turn()
    {
        // 1024 slots of 100 ms: one turn is 102.4 s. A deadline 250 s away passes its slot twice before it is due.
        var (wheel, clock) = NewWheel();
        var recorder = new Recorder();
        var far = Entry(wheel, clock, recorder);
        wheel.Schedule(far, TimeSpan.FromSeconds(250));
        clock.Run(TimeSpan.FromSeconds(249.9));
        Assert.Empty(recorder.Fired);
        clock.Run(TimeSpan.FromSeconds(1));
        Assert.Equal([TimeSpan.FromSeconds(250)], recorder.Fired);
    }

    [Fact]
    public void A_late_timer_fires_everything_that_came_due_meanwhile()
    {
        var (wheel, clock) = NewWheel();
        var recorder = new Recorder();
        var entries = Enumerable.Range(1, 50).Select(_ => Entry(wheel, clock, recorder)).ToArray();
        for (int i = 0; i < entries.Length; i++)
        {
            wheel.Schedule(entries[i], TimeSpan.FromSeconds(i + 1));
        }

        // One callback after 10 minutes (more than a full turn): all 50 fire in that one callback.
        clock.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(50, recorder.Fired.Count);
        Assert.Equal(0, wheel.Count);
    }

    [Fact]
    public void A_throwing_callback_does_not_stop_the_others()
    {
        var (wheel, clock) = NewWheel();
        var recorder = new Recorder();
        var bad = new TimerWheelEntry(wheel, _ => throw new InvalidOperationException("boom"), null);
        var good = Entry(wheel, clock, recorder);
        wheel.Schedule(bad, Tick);
        wheel.Schedule(good, Tick);
        clock.Run(Tick);
        Assert.Single(recorder.Fired);
    }

    [Fact]
    public void An_entry_belongs_to_one_wheel()
    {
        var (wheel, _) = NewWheel();
        var (other, _) = NewWheel();
        var entry = new TimerWheelEntry(other, _ => { }, null);
        Assert.Throws<ArgumentException>(() => wheel.Schedule(entry, Tick));
    }

    [Fact]
    public async Task Keep_alive_on_the_shared_wheel_pings_an_idle_connection()
    {
        // The real wheel and a real connection: with nothing sent or received, a ping comes after the interval.
        var input = new System.IO.Pipelines.Pipe();
        var output = new System.IO.Pipelines.Pipe();
        var connection = new WebSocketConnection(new Duplex(input.Reader, output.Writer),
            new WebSocketOptions { KeepAliveInterval = TimeSpan.FromMilliseconds(200), IdleTimeout = TimeSpan.Zero });
        var run = connection.RunAsync(new NullHandler(), CancellationToken.None);
        var read = await output.Reader.ReadAtLeastAsync(2).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        byte[] bytes = System.Buffers.BuffersExtensions.ToArray(read.Buffer);
        Assert.Equal(0x89, bytes[0]); // FIN + ping
        Assert.Equal(0x00, bytes[1]); // unmasked, empty
        output.Reader.AdvanceTo(read.Buffer.End);
        connection.Abort();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_peer_silent_in_the_middle_of_a_frame_is_closed_IdleTimeout_after_its_last_byte_not_an_interval_later()
    {
        var (wheel, clock) = NewWheel();
        var input = new System.IO.Pipelines.Pipe();
        var output = new System.IO.Pipelines.Pipe();
        var connection = new WebSocketConnection(new Duplex(input.Reader, output.Writer),
            new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30), IdleTimeout = TimeSpan.FromSeconds(90), Timers = wheel });
        var run = connection.RunAsync(new NullHandler(), CancellationToken.None);

        // 10 s into the first keep-alive interval the peer sends a ping and, in the same write, the first four bytes of
        // a frame it never completes. The pong proves that read was handled.
        clock.Run(TimeSpan.FromSeconds(10));
        await input.Writer.WriteAsync(new byte[] { 0x89, 0x80, 1, 2, 3, 4, 0x82, 0x85, 1, 2 });
        var pong = await output.Reader.ReadAtLeastAsync(2).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0x8A, pong.Buffer.FirstSpan[0]);
        output.Reader.AdvanceTo(pong.Buffer.End);

        // Open until 90 s after that byte (the keep-alive pings meanwhile do not count as hearing from the peer)...
        clock.Run(TimeSpan.FromSeconds(89.9));
        Assert.False(connection.Closing.IsCancellationRequested);

        // ...and closing right then, not at the next 30 s keep-alive tick (120 s after it).
        clock.Run(TimeSpan.FromSeconds(0.2));
        Assert.True(connection.Closing.IsCancellationRequested);
        connection.Abort();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    private sealed class Duplex(System.IO.Pipelines.PipeReader input, System.IO.Pipelines.PipeWriter output) : System.IO.Pipelines.IDuplexPipe
    {
        public System.IO.Pipelines.PipeReader Input { get; } = input;

        public System.IO.Pipelines.PipeWriter Output { get; } = output;
    }

    private sealed class NullHandler : IWebSocketMessageHandler
    {
        public ValueTask OnMessageAsync(WebSocketConnection connection, System.Buffers.ReadOnlySequence<byte> payload) => default;
    }
}
