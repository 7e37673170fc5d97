namespace Gateway.Domain.Ports;

/// <summary>Read access to committed history, used by catch-up and history pages.</summary>
public interface IMessageHistory
{
    /// <summary>The highest committed seq of a chat, 0 if none.</summary>
    ValueTask<ulong> GetHeadAsync(string tenantId, string chatId, CancellationToken cancellationToken = default);

    /// <summary>Messages with seq &gt; <paramref name="afterSeq"/>, ascending, at most <paramref name="limit"/>.
    /// Expired messages are left out, so the result may skip seqs; a caller detects holes against the head,
    /// not against this list.</summary>
    ValueTask<IReadOnlyList<ChatMessage>> ReadAfterAsync(string tenantId, string chatId, ulong afterSeq, int limit, CancellationToken cancellationToken = default);

    /// <summary>Messages with seq &lt; <paramref name="beforeSeq"/> (0 = no bound), newest first, at most <paramref name="limit"/>.</summary>
    ValueTask<IReadOnlyList<ChatMessage>> ReadBeforeAsync(string tenantId, string chatId, ulong beforeSeq, int limit, CancellationToken cancellationToken = default);
}
