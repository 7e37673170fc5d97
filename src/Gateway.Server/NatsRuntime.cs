using Gateway.Nats;
using NATS.Client.Core;

namespace Gateway.Server;

/// <summary>
/// Connects to NATS and starts the role's NATS parts before Kestrel takes connections (<see cref="StartingAsync"/>), and
/// stops them before the store closes. Fails start-up with a clear error when NATS or JetStream is not there.
/// </summary>
/// <param name="connection">The role's NATS connection, not yet connected.</param>
/// <param name="writer">A writer's parts; null in the gateway role.</param>
/// <param name="bus">A gateway's live-event bus, told about reconnects and dropped messages; null in the writer role.</param>
/// <param name="logger">Where connection changes are logged.</param>
internal sealed class NatsRuntime(NatsConnection connection, NatsRuntime.WriterParts? writer, NatsGatewayBus? bus, ILogger<NatsRuntime> logger)
    : IHostedLifecycleService
{
    /// <summary>A writer's NATS parts. The projector and the request server are created when start-up reaches them, after
    /// NATS has connected and the streams exist: creating the projector opens the history store (a Scylla cluster that
    /// cannot be reached takes up to 30 s to say so), and an unreachable NATS is the error start-up reports first.</summary>
    /// <param name="Log">The commit log, whose streams are created at start.</param>
    /// <param name="Projector">Projects the log into the history store.</param>
    /// <param name="Rpc">Serves the gateways' requests.</param>
    internal sealed record WriterParts(JetStreamLog Log, Lazy<Projector> Projector, Lazy<WriterRpcServer> Rpc);

    /// <summary>True once the role's NATS parts run (readiness).</summary>
    public bool IsReady { get; private set; }

    /// <summary>Why this role should not receive traffic now (null: it should): not started, or (writers) a projection
    /// that is far behind the log or stalled.</summary>
    public string? NotReadyReason()
    {
        if (!IsReady)
        {
            return "starting";
        }

        return writer is not null && !writer.Projector.Value.IsHealthy(out var reason) ? reason : null;
    }

    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        await ConnectAsync().ConfigureAwait(false);
        if (writer is not null)
        {
            await StartWriterAsync(writer, cancellationToken).ConfigureAwait(false);
        }

        if (bus is not null)
        {
            TellBusAboutConnection(bus);
        }

        connection.ConnectionDisconnected += (_, _) =>
        {
            logger.LogWarning("Disconnected from NATS; reconnecting");
            return ValueTask.CompletedTask;
        };
        IsReady = true;
        logger.LogInformation("NATS ready at {Url}", connection.Opts.Url);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>After Kestrel stopped: stop serving requests and projecting, so the store can close.</summary>
    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        IsReady = false;
        if (writer is null)
        {
            return;
        }

        // Only what start-up created: creating the projector now would open the store just to close it.
        if (writer.Rpc.IsValueCreated)
        {
            await writer.Rpc.Value.DisposeAsync().ConfigureAwait(false);
        }

        if (writer.Projector.IsValueCreated)
        {
            await writer.Projector.Value.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task ConnectAsync()
    {
        try
        {
            await connection.ConnectAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"cannot connect to NATS at {connection.Opts.Url} (Nats:Url): {e.Message}", e);
        }
    }

    private static async Task StartWriterAsync(WriterParts writer, CancellationToken cancellationToken)
    {
        await writer.Log.EnsureStreamsAsync(cancellationToken).ConfigureAwait(false);
        await writer.Projector.Value.StartAsync(cancellationToken).ConfigureAwait(false);
        await writer.Rpc.Value.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    private void TellBusAboutConnection(NatsGatewayBus bus)
    {
        connection.ConnectionOpened += (_, _) =>
        {
            // Also raised for the first connect, which happened above: harmless (nothing is watched yet).
            logger.LogInformation("Connected to NATS; re-checking every watched chat for events missed meanwhile");
            bus.NotifyReconnected();
            return ValueTask.CompletedTask;
        };
        connection.MessageDropped += (_, e) =>
        {
            bus.NotifyDropped(e.Subject);
            return ValueTask.CompletedTask;
        };
    }
}
