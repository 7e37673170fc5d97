using System.Globalization;
using System.Text;

namespace Gateway.Nats;

/// <summary>
/// The subject layout (proto/NATS.md, Subjects). Tenant and chat ids are <c>[A-Za-z0-9_-]{1,64}</c> (validated before they get
/// here), so they are safe as subject tokens without escaping.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>chat.&lt;p&gt;.&lt;tenant&gt;.&lt;chat&gt;</c>: the commit log. Only writers publish here, through JetStream, with a per-subject
/// compare-and-set. Nobody subscribes to it with core NATS: a publish that JetStream REJECTS (lost CAS race, duplicate)
/// still reaches core subscribers of the subject, so they would see events that never happened.</item>
/// <item><c>live.chat.&lt;p&gt;.&lt;tenant&gt;.&lt;chat&gt;</c>: the stream's RePublish of what it STORED, in stream order. Gateways
/// subscribe here, per chat with local subscribers.</item>
/// <item><c>typing.&lt;p&gt;.&lt;tenant&gt;.&lt;chat&gt;</c>: ephemeral signals between gateways, core NATS only, never stored.</item>
/// <item><c>chatgw.rpc.*</c>: gateway → writer requests, served by the queue group <c>writers</c>.</item>
/// </list>
/// </remarks>
public sealed class Subjects
{
    /// <summary>Prefix the stream republishes under.</summary>
    public const string LivePrefix = "live.";

    /// <summary>Queue group of the writers' request handlers.</summary>
    public const string WriterQueue = "writers";

    /// <summary>Send requests.</summary>
    public const string RpcSend = "chatgw.rpc.send";

    /// <summary>Membership changes.</summary>
    public const string RpcAdmin = "chatgw.rpc.admin";

    /// <summary>History and membership reads.</summary>
    public const string RpcRead = "chatgw.rpc.read";

    /// <summary>Creates the layout for a partition count and stream size.</summary>
    public Subjects(int partitions, int partitionsPerStream)
    {
        if (partitions < 1 || partitionsPerStream < 1 || partitions % partitionsPerStream != 0)
        {
            throw new ArgumentException("Nats:Partitions must be >= 1 and a multiple of Nats:PartitionsPerStream");
        }

        Partitions = partitions;
        PartitionsPerStream = partitionsPerStream;
    }

    /// <summary>Number of partitions.</summary>
    public int Partitions { get; }

    /// <summary>Partitions per stream.</summary>
    public int PartitionsPerStream { get; }

    /// <summary>Number of streams.</summary>
    public int StreamCount => Partitions / PartitionsPerStream;

    /// <summary>The chat's partition: FNV-1a (32 bit) of <c>tenant/chat</c>, mod the partition count. Stable across
    /// processes and versions, unlike <see cref="string.GetHashCode()"/>.</summary>
    public int Partition(string tenantId, string chatId)
    {
        var hash = 2166136261u;
        hash = Fnv(hash, tenantId);
        hash = (hash ^ '/') * 16777619u;
        hash = Fnv(hash, chatId);
        return (int)(hash % (uint)Partitions);
    }

    /// <summary>The commit-log subject of a chat.</summary>
    public string Log(string tenantId, string chatId) => $"chat.{Partition(tenantId, chatId)}.{tenantId}.{chatId}";

    /// <summary>The live (republished) subject of a chat.</summary>
    public string Live(string tenantId, string chatId) => LivePrefix + Log(tenantId, chatId);

    /// <summary>The typing subject of a chat.</summary>
    public string Typing(string tenantId, string chatId) => $"typing.{Partition(tenantId, chatId)}.{tenantId}.{chatId}";

    /// <summary>The stream holding a chat's log.</summary>
    public string StreamOf(string tenantId, string chatId) => StreamName(Partition(tenantId, chatId) / PartitionsPerStream);

    /// <summary>The name of stream <paramref name="index"/> (covering partitions index*size … index*size+size-1).</summary>
    public string StreamName(int index)
    {
        var first = index * PartitionsPerStream;
        return $"CHATLOG_{first}_{first + PartitionsPerStream - 1}";
    }

    /// <summary>The subjects stream <paramref name="index"/> captures.</summary>
    public string[] StreamSubjects(int index)
    {
        var first = index * PartitionsPerStream;
        var subjects = new string[PartitionsPerStream];
        for (var i = 0; i < subjects.Length; i++)
        {
            subjects[i] = $"chat.{first + i}.>";
        }

        return subjects;
    }

    /// <summary>
    /// The JetStream dedup id of a log append: the claim of the chat's next event number. Every writer that appends
    /// from the same chat state claims the same number, and JetStream stores at most one entry per dedup id within its
    /// window, so a second claim is refused as a duplicate even where the per-subject compare-and-set is not serialized
    /// (clustered streams of nats-server 2.9: concurrent appends with one expected subject sequence can all be stored).
    /// Ids are <c>[A-Za-z0-9_-]</c>, so <c>tenant/chat#n</c> is unambiguous.
    /// </summary>
    public static string EventClaim(string tenantId, string chatId, ulong eventNo) =>
        string.Create(CultureInfo.InvariantCulture, $"{tenantId}/{chatId}#{eventNo}");

    private static uint Fnv(uint hash, string s)
    {
        Span<byte> buffer = stackalloc byte[256];
        var n = Encoding.UTF8.GetBytes(s, buffer);
        foreach (var b in buffer[..n])
        {
            hash = (hash ^ b) * 16777619u;
        }

        return hash;
    }
}
