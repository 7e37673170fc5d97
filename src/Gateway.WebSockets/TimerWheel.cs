namespace Gateway.WebSockets;

/// <summary>
/// One shared, coarse timer for many per-connection deadlines (keep-alive pings, idle checks, token expiry): a hashed
/// timing wheel driven by a single periodic <see cref="ITimer"/>. Scheduling, rescheduling and cancelling are O(1)
/// and allocate nothing; each deadline is one <see cref="TimerWheelEntry"/> the owner keeps for its whole life.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> A <see cref="Timer"/> per connection costs a Timer, a TimerHolder and a TimerQueueTimer (≈ 150 B),
/// and a <c>Task.Delay</c> with cancellation adds a promise, a timer, a linked token source and its registrations
/// (≈ 1 KB with the async method around it). An idle gateway holds tens of thousands of such deadlines, none of which
/// needs better than a tenth of a second.</para>
/// <para><b>Resolution.</b> Deadlines fire on the first tick at or after them: at most one <see cref="Tick"/> late (plus
/// scheduling delay), never early. The wheel has 1024 slots; a deadline further away than 1024 ticks stays in its slot
/// and is skipped (one comparison) on every turn of the wheel until it is due, so distant deadlines (a 24 h token) cost
/// one check per 102 s at the default 100 ms tick.</para>
/// <para><b>Threading.</b> All members are thread-safe. Callbacks run on the timer's thread-pool thread, outside the
/// wheel's lock, one after another; a callback may schedule or cancel any entry, its own included. A callback must be
/// short and must not block: it delays every deadline behind it.</para>
/// </remarks>
public sealed class TimerWheel : IDisposable
{
    private const int SlotCount = 1024; // a power of two: slot = tick & (SlotCount - 1)

    private readonly object _lock = new();
    private readonly TimerWheelEntry?[] _slots = new TimerWheelEntry?[SlotCount];
    private readonly TimeProvider _time;
    private readonly long _startTimestamp;
    private readonly long _tickTimestampUnits;
    private readonly ITimer _timer;
    private long _processedTick;
    private int _count;

    /// <summary>Creates a wheel that ticks every <paramref name="tick"/> on <paramref name="time"/>'s timers.</summary>
    /// <param name="tick">Resolution; at least 1 ms.</param>
    /// <param name="time">The clock and timer source (<see cref="TimeProvider.System"/> in production).</param>
    public TimerWheel(TimeSpan tick, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThan(tick, TimeSpan.FromMilliseconds(1));
        _time = time;
        Tick = tick;
        _startTimestamp = time.GetTimestamp();
        _tickTimestampUnits = Math.Max(1, (long)(tick.TotalSeconds * time.TimestampFrequency));
        _timer = time.CreateTimer(static s => ((TimerWheel)s!).OnTimer(), this, tick, tick);
    }

    /// <summary>
    /// The process-wide wheel on the system clock with a 100 ms tick: keep-alive intervals and token deadlines are
    /// seconds to hours, so a tenth of a second is ample, and an idle server wakes 10 times a second in all.
    /// </summary>
    public static TimerWheel Shared { get; } = new(TimeSpan.FromMilliseconds(100), TimeProvider.System);

    /// <summary>The resolution.</summary>
    public TimeSpan Tick { get; }

    /// <summary>The last tick the wheel has processed: a cheap clock of <see cref="Tick"/> resolution, for stamping events
    /// whose age a timer callback later compares (it never runs ahead of the callbacks that read it).</summary>
    public long ProcessedTick => Volatile.Read(ref _processedTick);

    /// <summary>Entries currently scheduled.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Schedules (or moves) <paramref name="entry"/> to fire once, <paramref name="dueIn"/> from now.</summary>
    /// <param name="entry">An entry of this wheel.</param>
    /// <param name="dueIn">Delay; zero or negative fires on the next tick.</param>
    public void Schedule(TimerWheelEntry entry, TimeSpan dueIn)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (entry.Wheel != this)
        {
            throw new ArgumentException("The entry belongs to another wheel.", nameof(entry));
        }

        // Round up: a deadline never fires before it is due. Capped far beyond any real deadline (2^40 ticks).
        long ticks = dueIn <= TimeSpan.Zero ? 0 : (long)Math.Min(Math.Ceiling(dueIn.Ticks / (double)Tick.Ticks), 1L << 40);
        lock (_lock)
        {
            Unlink(entry);
            long now = CurrentTick();
            entry.DueTick = Math.Max(now, _processedTick) + Math.Max(1, ticks);
            Link(entry);
        }
    }

    /// <summary>Cancels <paramref name="entry"/> if it is scheduled; returns whether it was. Idempotent.</summary>
    /// <param name="entry">An entry of this wheel.</param>
    public bool Cancel(TimerWheelEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_lock)
        {
            return Unlink(entry);
        }
    }

    /// <summary>Stops the wheel's timer; scheduled entries never fire.</summary>
    public void Dispose() => _timer.Dispose();

    private long CurrentTick() => (_time.GetTimestamp() - _startTimestamp) / _tickTimestampUnits;

    private void Link(TimerWheelEntry entry)
    {
        int slot = (int)(entry.DueTick & (SlotCount - 1));
        var head = _slots[slot];
        entry.Next = head;
        entry.Previous = null;
        if (head is not null)
        {
            head.Previous = entry;
        }

        _slots[slot] = entry;
        entry.Scheduled = true;
        _count++;
    }

    private bool Unlink(TimerWheelEntry entry)
    {
        if (!entry.Scheduled)
        {
            return false;
        }

        if (entry.Previous is not null)
        {
            entry.Previous.Next = entry.Next;
        }
        else
        {
            _slots[(int)(entry.DueTick & (SlotCount - 1))] = entry.Next;
        }

        if (entry.Next is not null)
        {
            entry.Next.Previous = entry.Previous;
        }

        entry.Next = null;
        entry.Previous = null;
        entry.Scheduled = false;
        _count--;
        return true;
    }

    private void OnTimer()
    {
        // Collect what is due under the lock into a chain through Next (no allocation), fire it outside the lock.
        TimerWheelEntry? due = null;
        lock (_lock)
        {
            long now = CurrentTick();

            // A late timer callback catches up tick by tick, but never walks more than one full turn: after that every
            // slot has been visited once, which finds every due entry.
            long from = Math.Max(_processedTick + 1, now - SlotCount + 1);
            for (long tick = from; tick <= now; tick++)
            {
                var entry = _slots[(int)(tick & (SlotCount - 1))];
                while (entry is not null)
                {
                    var next = entry.Next;
                    if (entry.DueTick <= now)
                    {
                        Unlink(entry);
                        entry.Next = due;
                        due = entry;
                    }

                    entry = next;
                }
            }

            _processedTick = Math.Max(_processedTick, now);
        }

        while (due is not null)
        {
            var entry = due;
            due = entry.Next;
            entry.Next = null;
            try
            {
                entry.Fire();
            }
            catch (Exception)
            {
                // A faulty callback must not stop the deadlines behind it; owners handle their own errors.
            }
        }
    }
}

/// <summary>
/// One deadline on a <see cref="TimerWheel"/>: a callback and its state, scheduled and rescheduled as often as
/// needed. Create one per owner and keep it; it costs one small object and nothing per schedule.
/// </summary>
public sealed class TimerWheelEntry
{
    private readonly Action<object?> _callback;
    private readonly object? _state;

    /// <summary>Creates an unscheduled entry.</summary>
    /// <param name="wheel">The wheel it will be scheduled on.</param>
    /// <param name="callback">Runs when the deadline passes (use a static lambda: the state carries the owner).</param>
    /// <param name="state">Passed to <paramref name="callback"/>.</param>
    public TimerWheelEntry(TimerWheel wheel, Action<object?> callback, object? state)
    {
        ArgumentNullException.ThrowIfNull(wheel);
        ArgumentNullException.ThrowIfNull(callback);
        Wheel = wheel;
        _callback = callback;
        _state = state;
    }

    /// <summary>The wheel this entry belongs to.</summary>
    public TimerWheel Wheel { get; }

    // Guarded by the wheel's lock.
    internal TimerWheelEntry? Previous { get; set; }

    internal TimerWheelEntry? Next { get; set; }

    internal long DueTick { get; set; }

    internal bool Scheduled { get; set; }

    internal void Fire() => _callback(_state);
}
