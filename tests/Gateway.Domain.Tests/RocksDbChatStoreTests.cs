using Gateway.Storage.RocksDb;

namespace Gateway.Domain.Tests;

public sealed class RocksDbChatStoreTests : ChatStoreContract
{
    private readonly TempDirectory _dir = new();

    protected override Task<IChatStore> OpenAsync(TimeProvider time) => Task.FromResult<IChatStore>(new RocksDbChatStore(_dir.Path, timeProvider: time));

    protected override ValueTask<IReadOnlyList<string>> GetChatsOfUserAsync(IChatStore store, string tenantId, string userId) =>
        ((RocksDbChatStore)store).GetChatsOfUserAsync(tenantId, userId);

    protected override Task CleanUpAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public void Idempotency_records_keep_the_payload_digest_and_records_without_one_still_read_and_match_any_payload()
    {
        var message = Message("general", 7, "alice", "c-1", [1, 2, 3], expiresAt: Time.NowMs() + 60_000);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        Storage.RocksDb.Internal.Values.WriteIdempotency(buffer, message);
        var record = Storage.RocksDb.Internal.Values.ReadIdempotency(buffer.WrittenMemory.ToArray());
        Assert.Equal(PayloadDigest.Of(message), record.PayloadDigest);
        Assert.True(record.IsRetry("general", PayloadDigest.Of(message)));
        Assert.False(record.IsRetry("general", PayloadDigest.Compute(message.ContentType, [1, 2, 4], message.ExpiresAt)));
        Assert.False(record.IsRetry("other", PayloadDigest.Of(message)));

        // As written before digests were kept: [1, chatId, seq, messageId, sentAt].
        var old = new System.Buffers.ArrayBufferWriter<byte>();
        Storage.RocksDb.Internal.Values.WriteIdempotencyWithoutDigest(old, message);
        var oldRecord = Storage.RocksDb.Internal.Values.ReadIdempotency(old.WrittenMemory.ToArray());
        Assert.Equal(new IdempotencyRecord("general", 7, message.MessageId, message.SentAt), oldRecord);
        Assert.True(oldRecord.IsRetry("general", PayloadDigest.Compute("anything", [9], null)));
        Assert.False(oldRecord.IsRetry("other", PayloadDigest.Of(message)));
    }

    [Fact]
    public async Task Ids_longer_than_a_length_byte_are_refused()
    {
        var longId = new string('a', 256);
        await Assert.ThrowsAsync<ArgumentException>(() => Store.GetHeadAsync(Tenant, longId).AsTask());
        Assert.Equal(0UL, await Store.GetHeadAsync(Tenant, new string('a', 255)).Within());
    }

}
