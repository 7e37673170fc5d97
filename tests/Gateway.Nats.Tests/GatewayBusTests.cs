using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;

namespace Gateway.Nats.Tests;

public sealed class GatewayBusTests
{
    [Fact]
    public async Task A_dropped_live_event_of_a_watched_chat_makes_that_chat_recheck_and_nothing_else()
    {
        await using var nats = await NatsServer.StartAsync();
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        await connection.ConnectAsync();
        var subjects = new Subjects(16, 16);
        await using var bus = new NatsGatewayBus(connection, subjects, NullLogger.Instance);
        var rechecked = new List<(string Tenant, string Chat)>();
        bus.OnReconnected += (tenant, chat) => rechecked.Add((tenant, chat));
        using var watch = await bus.WatchAsync("t1", "c1");

        bus.NotifyDropped(subjects.Live("t1", "c2"));        // not watched here
        bus.NotifyDropped(subjects.Typing("t1", "c1"));      // not a live event
        bus.NotifyDropped("live.chat.x");                    // malformed
        Assert.Empty(rechecked);

        bus.NotifyDropped(subjects.Live("t1", "c1"));
        Assert.Equal([("t1", "c1")], rechecked);
    }
}
