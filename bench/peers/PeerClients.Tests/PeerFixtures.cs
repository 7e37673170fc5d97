using System.Security.Cryptography;
using System.Text;
using Gateway.Tools.Common;

namespace PeerClients.Tests;

/// <summary>
/// One peer, started twice through its start.sh: open, and requiring credentials. The two start one after the other
/// (a first SignalR start builds the server; two builds of one project at once would fight over obj/).
/// </summary>
public abstract class PeerFixture : IAsyncLifetime
{
    // Generous: a first SignalR start includes a Release build (about 10-40 s on two shared cores).
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(150);

    private PeerProcess? _open;
    private PeerProcess? _secured;

    protected PeerFixture(string name) => Name = name;

    public string Name { get; }

    public PeerProcess Open => _open ?? throw new InvalidOperationException("Not started.");

    public PeerProcess Secured => _secured ?? throw new InvalidOperationException("Not started.");

    public abstract ILoadConnection CreateClient();

    public abstract Uri Endpoint(PeerProcess peer);

    /// <summary>Environment that makes the peer require credentials.</summary>
    protected abstract IReadOnlyDictionary<string, string> SecuredEnvironment { get; }

    /// <summary>A credential the secured instance accepts for <paramref name="userId"/>.</summary>
    public abstract string GoodToken(string userId);

    /// <summary>A credential of the right shape that the secured instance must refuse.</summary>
    public abstract string BadToken(string userId);

    public async Task InitializeAsync()
    {
        _open = await PeerProcess.StartAsync(Name, new Dictionary<string, string>(), ReadyTimeout);
        _secured = await PeerProcess.StartAsync(Name, SecuredEnvironment, ReadyTimeout);
    }

    public async Task DisposeAsync()
    {
        if (_open is not null)
        {
            await _open.DisposeAsync();
        }
        if (_secured is not null)
        {
            await _secured.DisposeAsync();
        }
    }
}

/// <summary>SignalR and Node ws take an HS256 JWT (the gateway's key format: base64, 32 bytes).</summary>
public abstract class JwtPeerFixture(string name) : PeerFixture(name)
{
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _otherKey = RandomNumberGenerator.GetBytes(32);

    protected override IReadOnlyDictionary<string, string> SecuredEnvironment
        => new Dictionary<string, string> { ["PEER_JWT_KEY"] = Convert.ToBase64String(_key) };

    public override string GoodToken(string userId) => Jwt.Create(_key, userId);

    public override string BadToken(string userId) => Jwt.Create(_otherKey, userId);
}

public sealed class SignalRFixture() : JwtPeerFixture("signalr")
{
    public override ILoadConnection CreateClient() => new SignalRLoadConnection();

    public override Uri Endpoint(PeerProcess peer) => new($"ws://127.0.0.1:{peer.Port}/hub");
}

public sealed class NodeWsFixture() : JwtPeerFixture("node-ws")
{
    public override ILoadConnection CreateClient() => new NodeWsLoadConnection();

    public override Uri Endpoint(PeerProcess peer) => new($"ws://127.0.0.1:{peer.Port}/");
}

/// <summary>nats-server takes a server token in CONNECT (its simple token auth).</summary>
public sealed class NatsWsFixture() : PeerFixture("nats-ws")
{
    private readonly string _token = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));

    protected override IReadOnlyDictionary<string, string> SecuredEnvironment
        => new Dictionary<string, string> { ["PEER_NATS_TOKEN"] = _token };

    public override ILoadConnection CreateClient() => new NatsWsLoadConnection();

    public override Uri Endpoint(PeerProcess peer) => new($"ws://127.0.0.1:{peer.Port}/");

    public override string GoodToken(string userId) => _token;

    public override string BadToken(string userId) => "not-" + _token;
}

/// <summary>Mints HS256 JWTs by hand (header.claims.signature, base64url), so the tests need no JWT package.</summary>
internal static class Jwt
{
    public static string Create(byte[] key, string subject)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = Base64Url("""{"alg":"HS256","typ":"JWT"}"""u8);
        var claims = Base64Url(Encoding.UTF8.GetBytes($$"""{"sub":"{{subject}}","iat":{{now}},"exp":{{now + 3600}}}"""));
        var signature = Base64Url(HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(header + "." + claims)));
        return header + "." + claims + "." + signature;
    }

    private static string Base64Url(ReadOnlySpan<byte> bytes)
        => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
