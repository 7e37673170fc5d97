using Microsoft.AspNetCore.SignalR;

namespace SignalRPeer;

/// <summary>
/// Rooms are SignalR groups. <see cref="Join"/> returns once the connection is in the group, so a client that
/// invokes it (rather than sending it) knows it is subscribed. <see cref="Publish"/> broadcasts to the whole group,
/// the sender included when it is a member, as <c>m(room, payload)</c>.
/// </summary>
public sealed class ChatHub : Hub
{
    public Task Join(string room) => Groups.AddToGroupAsync(Context.ConnectionId, room);

    public Task Publish(string room, byte[] payload) => Clients.Group(room).SendAsync("m", room, payload);
}
