namespace Gateway.Domain.Ports;

/// <summary>Read access to committed history, used by catch-up and history pages.</summary>
public interface IMessageHistory
{
    /// <summary>The highest committed seq of a chat, 0 if none.</summary>
    ValueTask<ulong> GetHeadAsync(string tenantId, string chatId, CancellationToken cancellationToken = default);

    /// <summary>Committed messages with seq &gt; <paramref name="afterSeq"/>, ascending, at most <paramref name="limit"/>,
    /// never one above the head the store had when the read began (a store that writes a batch in steps may hold later
    /// messages, with holes, before their head is written). Expired messages are left out, so the result may skip seqs;
    /// a caller detects holes against the head, not against this list.</summary>
    ValueTask<IReadOnlyList<ChatMessage>> ReadAfterAsync(string tenantId, string chatId, ulong afterSeq, int limit, CancellationToken cancellationToken = default);

    /// <summary>Messages with seq &lt; <paramref name="beforeSeq"/> (0 = no bound), newest first, at most <paramref name="limit"/>.</summary>
    ValueTask<IReadOnlyList<ChatMessage>> ReadBeforeAsync(string tenantId, string chatId, ulong beforeSeq, int limit, CancellationToken cancellationToken = default);

    /// <summary>
    /// The chat's head and the messages after <paramref name="afterSeq"/>, both from ONE view of the store, as catch-up
    /// needs: every seq up to <c>Head</c> is committed, so a short page means everything up to it was seen (what is
    /// missing expired). A remote history served by several replicas must answer both from the same replica.
    /// </summary>
    async ValueTask<(ulong Head, IReadOnlyList<ChatMessage> Page)> ReadCatchUpAsync(string tenantId, string chatId, ulong afterSeq, int limit, CancellationToken cancellationToken = default)
    {
        var head = await GetHeadAsync(tenantId, chatId, cancellationToken).ConfigureAwait(false);
        var page = await ReadAfterAsync(tenantId, chatId, afterSeq, limit, cancellationToken).ConfigureAwait(false);
        return (head, page);
    }
}
