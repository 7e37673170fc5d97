using Gateway.Domain;
using Gateway.Protocol;
using Gateway.WebSockets;

namespace Gateway.Server.Fanout;

/// <summary>Builds Message frames for live fanout and catch-up.</summary>
internal static class MessageFrames
{
    /// <summary>Frame overhead beyond content: tag, ids, timestamps, header. 256 bytes covers the longest ids.</summary>
    private const int Overhead = 256;

    public static OutboundFrame Build(ChatMessage m)
    {
        var frame = OutboundFrame.Rent(Overhead + m.Content.Length);
        ServerFrameWriter.WriteMessage(frame, m.ChatId, ToFields(m));
        return frame.Seal();
    }

    public static MessageFields ToFields(ChatMessage m) =>
        new(m.Seq, m.MessageId, m.SenderId, m.SentAt, m.ContentType, m.Content, m.ExpiresAt);
}
