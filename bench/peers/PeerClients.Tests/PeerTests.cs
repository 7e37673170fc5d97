using System.Net;
using System.Text;
using Gateway.Tools.Common;

namespace PeerClients.Tests;

/// <summary>
/// The same checks for every peer: two members of a room exchange messages both ways (the sender hears its own
/// broadcast too, as all three systems do by default), a member of another room gets nothing of it, and the secured
/// instance refuses a connection without a valid credential and serves one with it.
/// </summary>
public abstract class PeerTests<TFixture>(TFixture fixture) where TFixture : PeerFixture
{
    private static readonly TimeSpan ExpectTimeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task TwoMembersExchangeMessagesBothWaysAndAnotherRoomGetsNothing()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var endpoint = fixture.Endpoint(fixture.Open);
        var room = "room-" + Guid.NewGuid().ToString("N");
        var otherRoom = "other-" + Guid.NewGuid().ToString("N");

        await using var alice = fixture.CreateClient();
        await using var bob = fixture.CreateClient();
        await using var carol = fixture.CreateClient();
        var toAlice = new Deliveries(alice);
        var toBob = new Deliveries(bob);
        var toCarol = new Deliveries(carol);

        await alice.ConnectAsync(endpoint, "alice", null, null, cts.Token);
        // Bob connects from another loopback address, the way the load generator spreads its sockets.
        await bob.ConnectAsync(endpoint, "bob", null, new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0), cts.Token);
        await carol.ConnectAsync(endpoint, "carol", null, null, cts.Token);
        await alice.SubscribeAsync(room, cts.Token);
        await bob.SubscribeAsync(room, cts.Token);
        await carol.SubscribeAsync(otherRoom, cts.Token);

        var fromAlice = Encoding.UTF8.GetBytes("from alice " + new string('a', 100));
        await alice.PublishAsync(room, fromAlice, cts.Token);
        await toBob.ExpectAsync(room, fromAlice, ExpectTimeout);
        await toAlice.ExpectAsync(room, fromAlice, ExpectTimeout);

        var fromBob = new byte[1000];
        Random.Shared.NextBytes(fromBob);
        await bob.PublishAsync(room, fromBob, cts.Token);
        await toAlice.ExpectAsync(room, fromBob, ExpectTimeout);
        await toBob.ExpectAsync(room, fromBob, ExpectTimeout);

        // Both broadcasts were fanned out before Carol publishes; whatever of them she would wrongly get is queued
        // ahead of her own message on her socket.
        var fromCarol = "carol"u8.ToArray();
        await carol.PublishAsync(otherRoom, fromCarol, cts.Token);
        await toCarol.ExpectAsync(otherRoom, fromCarol, ExpectTimeout);
        var carolSaw = toCarol.Seen;
        Assert.Single(carolSaw);
        Assert.Equal(0UL, carolSaw[0].Seq);

        Assert.DoesNotContain(toAlice.Seen, m => m.Room != room);
        Assert.DoesNotContain(toBob.Seen, m => m.Room != room);
        Assert.Empty(toAlice.Errors);
        Assert.Empty(toBob.Errors);
        Assert.Empty(toCarol.Errors);
    }

    [Fact]
    public async Task OnePublishersBurstReachesEverySubscriberCompleteAndInOrder()
    {
        // Back-to-back publishes make the servers batch several deliveries into one socket write (nats-server even
        // into one WebSocket message), which the clients must split; order per publisher is kept by all three.
        const int messages = 500;
        const int subscribers = 4;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var endpoint = fixture.Endpoint(fixture.Open);
        var room = "burst-" + Guid.NewGuid().ToString("N");

        var members = new List<(ILoadConnection Connection, Deliveries Deliveries)>();
        try
        {
            for (var i = 0; i < subscribers; i++)
            {
                var member = fixture.CreateClient();
                members.Add((member, new Deliveries(member)));
                await member.ConnectAsync(endpoint, "member" + i, null, null, cts.Token);
                await member.SubscribeAsync(room, cts.Token);
            }
            await using var publisher = fixture.CreateClient();
            await publisher.ConnectAsync(endpoint, "publisher", null, null, cts.Token);

            var payload = new byte[100];
            for (var i = 0; i < messages; i++)
            {
                BitConverter.TryWriteBytes(payload, i);
                await publisher.PublishAsync(room, payload, cts.Token);
            }

            foreach (var (_, deliveries) in members)
            {
                var received = await deliveries.ExpectCountAsync(room, messages, ExpectTimeout);
                Assert.Equal(messages, received.Count);
                for (var i = 0; i < messages; i++)
                {
                    Assert.Equal(100, received[i].Length);
                    Assert.Equal(i, BitConverter.ToInt32(received[i]));
                }
                Assert.Empty(deliveries.Errors);
            }
        }
        finally
        {
            foreach (var (connection, _) in members)
            {
                await connection.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task SecuredPeerRefusesMissingOrWrongCredentialsAndServesAValidOne()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var endpoint = fixture.Endpoint(fixture.Secured);

        await using (var anonymous = fixture.CreateClient())
        {
            await Assert.ThrowsAnyAsync<Exception>(() => anonymous.ConnectAsync(endpoint, "mallory", null, null, cts.Token));
        }
        await using (var forged = fixture.CreateClient())
        {
            await Assert.ThrowsAnyAsync<Exception>(
                () => forged.ConnectAsync(endpoint, "mallory", fixture.BadToken("mallory"), null, cts.Token));
        }
        Assert.False(cts.IsCancellationRequested, "The refusals must come from the server, not from the test's timeout.");

        await using var dave = fixture.CreateClient();
        var toDave = new Deliveries(dave);
        await dave.ConnectAsync(endpoint, "dave", fixture.GoodToken("dave"), null, cts.Token);
        var room = "room-" + Guid.NewGuid().ToString("N");
        await dave.SubscribeAsync(room, cts.Token);
        var payload = "hello"u8.ToArray();
        await dave.PublishAsync(room, payload, cts.Token);
        await toDave.ExpectAsync(room, payload, ExpectTimeout);
    }
}

public sealed class SignalRPeerTests(SignalRFixture fixture) : PeerTests<SignalRFixture>(fixture), IClassFixture<SignalRFixture>;

public sealed class NodeWsPeerTests(NodeWsFixture fixture) : PeerTests<NodeWsFixture>(fixture), IClassFixture<NodeWsFixture>;

public sealed class NatsWsPeerTests(NatsWsFixture fixture) : PeerTests<NatsWsFixture>(fixture), IClassFixture<NatsWsFixture>;
