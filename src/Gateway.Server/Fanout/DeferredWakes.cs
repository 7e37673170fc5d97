namespace Gateway.Server.Fanout;

/// <summary>
/// The subscribers a fanout pass enqueued to without waking their writers, per thread (the bus dispatch thread of the
/// embedded bus; with NATS, whichever thread delivers a chat's events). <see cref="WakeAll"/> at the end of the pass
/// wakes each once, so a subscriber that got k frames in the pass writes them with one flush: one send syscall, not k.
/// </summary>
/// <remarks>
/// This is what nats-server does per read buffer (flush every client that got data once, after processing everything
/// read), and it tunes itself: when the fanout keeps up a pass is one event and nothing waits; when events queue
/// up, passes grow and each connection's sends carry more frames, which is when syscalls are the bottleneck (see
/// bench/README.md, "First profile of broadcast at saturation").
/// </remarks>
internal static class DeferredWakes
{
    [ThreadStatic]
    private static List<ISubscriber>? _pending;

    [ThreadStatic]
    private static int _frames;

    /// <summary>Deferred frames (deliveries) since the last <see cref="WakeAll"/> on this thread.</summary>
    public static int Frames => _frames;

    /// <summary>Remembers a subscriber whose writer must be woken at the end of the pass.</summary>
    public static void Add(ISubscriber subscriber) => (_pending ??= new List<ISubscriber>(64)).Add(subscriber);

    /// <summary>Counts deferred deliveries, so a pass can end early once the first frames have waited long enough.</summary>
    public static void CountFrames(int frames) => _frames += frames;

    /// <summary>Wakes every subscriber deferred on this thread.</summary>
    public static void WakeAll()
    {
        _frames = 0;
        if (_pending is not { Count: > 0 } pending)
        {
            return;
        }

        foreach (var subscriber in pending)
        {
            subscriber.Wake();
        }

        pending.Clear();
    }
}
