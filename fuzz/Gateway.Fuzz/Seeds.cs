using System.Text;
using System.Text.Json;

namespace Gateway.Fuzz;

/// <summary>
/// Writes the seed corpus: the golden vectors of <c>proto/vectors</c> (hex → binary) for the two MessagePack targets,
/// the same payloads wrapped in masked WebSocket frames for the receive path, and hand-made frame headers and upgrade
/// requests. Deterministic, so rerunning it after a vector change gives a reviewable diff.
/// </summary>
internal static class Seeds
{
    /// <summary>Fixed mask key of the seed frames (any value works; a non-zero one makes masking visible).</summary>
    private static readonly byte[] MaskKey = [0x37, 0xfa, 0x21, 0x3d];

    public static int Write(string vectorsDir, string seedsDir)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        void Put(string target, string name, byte[] bytes)
        {
            var dir = Path.Combine(seedsDir, target);
            Directory.CreateDirectory(dir);
            File.WriteAllBytes(Path.Combine(dir, name), bytes);
            counts[target] = counts.GetValueOrDefault(target) + 1;
        }

        foreach (var path in Directory.GetFiles(vectorsDir, "*.json").Order(StringComparer.Ordinal))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            bool client = Path.GetFileName(path).StartsWith("client-", StringComparison.Ordinal);
            foreach (var v in doc.RootElement.GetProperty("vectors").EnumerateArray())
            {
                var name = v.GetProperty("name").GetString()!;
                var bytes = Convert.FromHexString(v.GetProperty("hex").GetString()!);
                Put(client ? ClientFrameTarget.Name : ServerFrameTarget.Name, name, bytes);
                if (client)
                {
                    Put(ReceivePathTarget.Name, name, Frame(0x82, bytes));
                }
            }
        }

        foreach (var (name, bytes) in FrameHeaders())
        {
            Put(FrameHeaderTarget.Name, name, bytes);
        }

        foreach (var (name, text) in Handshakes())
        {
            Put(HandshakeTarget.Name, name, Encoding.ASCII.GetBytes(text));
        }

        foreach (var (name, bytes) in Connections())
        {
            Put(ReceivePathTarget.Name, name, bytes);
        }

        foreach (var (target, n) in counts.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            Console.WriteLine($"{target}: {n} seeds");
        }

        return 0;
    }

    private static IEnumerable<(string, byte[])> FrameHeaders()
    {
        // b0 = FIN|RSV|opcode, b1 = MASK|len7; then 0, 2 or 8 length bytes; then 4 mask bytes when masked.
        yield return ("binary-masked-5", [0x82, 0x85, .. MaskKey]);
        yield return ("binary-unmasked-5", [0x82, 0x05]);
        yield return ("len16-masked", [0x82, 0xfe, 0x01, 0x00, .. MaskKey]);
        yield return ("len64-masked", [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, .. MaskKey]);
        yield return ("len64-msb-set", [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, .. MaskKey]);
        yield return ("len64-max", [0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, .. MaskKey]);
        yield return ("continuation-nofin", [0x00, 0x83, .. MaskKey]);
        yield return ("text", [0x81, 0x80, .. MaskKey]);
        yield return ("ping-125", [0x89, 0xfd, .. MaskKey]);
        yield return ("ping-126", [0x89, 0xfe, 0x00, 0x7e, .. MaskKey]);
        yield return ("close-fragmented", [0x08, 0x82, .. MaskKey]);
        yield return ("pong", [0x8a, 0x80, .. MaskKey]);
        yield return ("rsv1", [0xc2, 0x80, .. MaskKey]);
        yield return ("opcode-3", [0x83, 0x80, .. MaskKey]);
        yield return ("opcode-11", [0x8b, 0x80, .. MaskKey]);
        yield return ("cut-len16", [0x82, 0xfe, 0x01]);
        yield return ("cut-mask", [0x82, 0x85, 0x37]);
        yield return ("one-byte", [0x82]);
    }

    private static IEnumerable<(string, string)> Handshakes()
    {
        const string Key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        const string Base = "Host: example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + Key + "Sec-WebSocket-Version: 13\r\n";
        yield return ("valid", "GET /v1/ws HTTP/1.1\r\n" + Base + "\r\n");
        yield return ("valid-subprotocols", "GET /v1/ws?token=abc HTTP/1.1\r\n" + Base +
            "Sec-WebSocket-Protocol: chatgw.v1, access_token.eyJ\r\nOrigin: https://a.example\r\n\r\n");
        yield return ("valid-with-frame", "GET /v1/ws HTTP/1.1\r\n" + Base + "\r\n\x82\x80\x37\xfa\x21\x3d");
        yield return ("lists-and-case", "GET / HTTP/1.1\r\nhost: h\r\nupgrade: foo, WebSocket\r\nconnection: keep-alive, upgrade\r\n" +
            "sec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==\r\nsec-websocket-version: 13\r\n\r\n");
        yield return ("post", "POST /v1/ws HTTP/1.1\r\n" + Base + "\r\n");
        yield return ("http10", "GET /v1/ws HTTP/1.0\r\n" + Base + "\r\n");
        yield return ("version-8", "GET /v1/ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + Key + "Sec-WebSocket-Version: 8\r\n\r\n");
        yield return ("short-key", "GET /v1/ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: abc=\r\nSec-WebSocket-Version: 13\r\n\r\n");
        yield return ("folded-header", "GET /v1/ws HTTP/1.1\r\n" + Base + " folded\r\n\r\n");
        yield return ("absolute-form", "GET http://h/v1/ws HTTP/1.1\r\n" + Base + "\r\n");
        yield return ("no-terminator", "GET /v1/ws HTTP/1.1\r\nHost: h\r\n");
        yield return ("empty-line", "\r\n\r\n");
    }

    private static IEnumerable<(string, byte[])> Connections()
    {
        // Send [3, 1, "c", "m", "t", bin "hi", nil] split over three fragments.
        byte[] send = Convert.FromHexString("970301a163a16da174c4026869c0");
        yield return ("fragmented-send", [.. Frame(0x02, send[..4]), .. Frame(0x00, send[4..9]), .. Frame(0x80, send[9..])]);
        yield return ("ping-between-fragments", [.. Frame(0x02, send[..4]), .. Frame(0x89, "ping"u8.ToArray()), .. Frame(0x80, send[4..])]);
        yield return ("close-1000", Frame(0x88, [0x03, 0xe8, .. "bye"u8]));
        yield return ("close-empty", Frame(0x88, []));
        yield return ("close-bad-utf8", Frame(0x88, [0x03, 0xe8, 0xc3, 0x28]));
        yield return ("handler-fault", Frame(0x82, [0xc1]));
        yield return ("malformed-then-send", [.. Frame(0x82, [0x81]), .. Frame(0x82, send)]);
        yield return ("text-frame", Frame(0x81, "hi"u8.ToArray()));
        yield return ("unmasked", [0x82, 0x01, 0x90]);
        yield return ("too-big", [0x82, 0xfe, 0x10, 0x01, .. MaskKey]);
    }

    /// <summary>A client frame: <paramref name="b0"/> (FIN/opcode), masked with <see cref="MaskKey"/> (RFC 6455 §5.3).</summary>
    private static byte[] Frame(byte b0, byte[] payload)
    {
        var header = new List<byte> { b0 };
        if (payload.Length < 126)
        {
            header.Add((byte)(0x80 | payload.Length));
        }
        else
        {
            // 126 escape: a 16-bit length follows (payloads here stay far below 65536).
            header.Add(0x80 | 126);
            header.Add((byte)(payload.Length >> 8));
            header.Add((byte)payload.Length);
        }

        header.AddRange(MaskKey);
        var masked = new byte[payload.Length];
        for (int i = 0; i < payload.Length; i++)
        {
            masked[i] = (byte)(payload[i] ^ MaskKey[i % 4]);
        }

        return [.. header, .. masked];
    }
}
