using System.IO.Pipelines;
using Gateway.Protocol;
using Gateway.Server.Connections;
using Gateway.WebSockets;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gateway.Server.Tests;

/// <summary>
/// The drain coordinator on its own, with real connections over in-memory pipes (never run: the test reads what the
/// coordinator asked of them). It alone closes what is left at shutdown, so every path must end in a 1001.
/// </summary>
public sealed class DrainCoordinatorTests
{
    private sealed class Transport : IDuplexPipe
    {
        private readonly Pipe _in = new();
        private readonly Pipe _out = new();

        public PipeReader Input => _in.Reader;

        public PipeWriter Output => _out.Writer;
    }

    private static DrainCoordinator Create() =>
        new(new GatewayOptions { DrainGraceSeconds = 0, DrainJitterSeconds = 0 }, TimeProvider.System, NullLogger<DrainCoordinator>.Instance);

    private static WebSocketConnection NewConnection() => new(new Transport(), new Gateway.WebSockets.WebSocketOptions());

    [Fact]
    public async Task Sessions_left_after_the_grace_are_closed_with_1001()
    {
        var drain = Create();
        var a = NewConnection();
        var b = NewConnection();
        var registrationA = drain.Register(a);
        var registrationB = drain.Register(b);
        Assert.Equal(2, drain.Count);

        var draining = drain.DrainAsync(CancellationToken.None);
        foreach (var c in new[] { a, b })
        {
            Assert.Equal(CloseCodes.GoingAway, c.CloseStatus);
            Assert.Equal(DrainCoordinator.Reason, c.CloseReason);
            Assert.True(c.Closing.IsCancellationRequested);
        }

        // The drain waits for the closes to finish, i.e. for the sessions to end.
        Assert.False(draining.IsCompleted);
        registrationA.Dispose();
        Assert.False(draining.IsCompleted);
        registrationB.Dispose();
        await draining.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, drain.Count);
        a.Abort();
        b.Abort();
    }

    [Theory]
    [InlineData(true)] // the drain had to close a session itself
    [InlineData(false)] // every session had left within the grace
    public async Task A_session_that_registers_after_the_drain_is_over_is_closed_at_once(bool oneLeftOpen)
    {
        var drain = Create();
        var early = NewConnection();
        var registration = oneLeftOpen ? drain.Register(early) : default;
        var draining = drain.DrainAsync(CancellationToken.None);
        registration.Dispose();
        await draining.WaitAsync(TimeSpan.FromSeconds(10));

        // Admitted before the drain began, registered after it ended: no one else would ever close it (Kestrel's own
        // close request on shutdown is not listened to).
        var late = NewConnection();
        using (drain.Register(late))
        {
            Assert.Equal(CloseCodes.GoingAway, late.CloseStatus);
            Assert.Equal(DrainCoordinator.ShutdownReason, late.CloseReason);

            // The Drain frame still went out first, then the close frame.
            Assert.Equal(2, late.FramesQueued);
        }

        Assert.Equal(0, drain.Count);
        early.Abort();
        late.Abort();
    }

    [Fact]
    public void Sessions_registered_while_the_grace_runs_get_a_drain_notice_and_stay_open()
    {
        var drain = new DrainCoordinator(new GatewayOptions { DrainGraceSeconds = 60, DrainJitterSeconds = 0 }, TimeProvider.System,
            NullLogger<DrainCoordinator>.Instance);
        drain.BeginDrain();
        var connection = NewConnection();
        using (drain.Register(connection))
        {
            Assert.Equal(1, connection.FramesQueued);
            Assert.Null(connection.CloseStatus);
        }

        connection.Abort();
    }
}
