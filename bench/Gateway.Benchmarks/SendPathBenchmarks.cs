using BenchmarkDotNet.Attributes;
using Gateway.Domain;
using Gateway.Domain.InProcess;
using Gateway.Domain.Ports;

namespace Gateway.Benchmarks;

/// <summary>
/// One Send through the embedded write path, from the bytes a connection has just read to the caller's answer: take the
/// content out of a reused receive buffer the way <c>Session.Commands.cs</c> does, build the <see cref="SendMessage"/>,
/// and await <see cref="LocalWriteService.SendAsync"/> (validate, queue, sequence, commit to the store, publish the event,
/// answer). The store is <see cref="DiscardingChatStore"/>, so what is measured is the write path's allocations (content
/// copies among them), not a disk or a store that grows with every iteration.
/// </summary>
/// <remarks>
/// One send at a time, so every send is its own commit batch: the per-batch costs are in every number. Each send has a
/// fresh client message id (a retry would be answered from the idempotency cache instead); the id string is part of
/// what a real send allocates too.
/// </remarks>
[MemoryDiagnoser]
public class SendPathBenchmarks
{
    private const string Tenant = "bench";
    private const string Chat = "general";
    private const string Sender = "user-0000";

    private byte[] _receiveBuffer = null!;
    private DiscardingChatStore _store = null!;
    private InProcessEventBus _bus = null!;
    private LocalWriteService _writer = null!;
    private long _next;

    /// <summary>Content bytes: 1 KiB, and 32 KiB (the default content limit).</summary>
    [Params(1024, 32 * 1024)]
    public int ContentBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        // Stands for the pipe's buffer: the same memory every send, overwritten by the next read.
        _receiveBuffer = new byte[ContentBytes + 64];
        _receiveBuffer.AsSpan().Fill((byte)'x');
        _store = new DiscardingChatStore();
        _bus = new InProcessEventBus();
        _writer = new LocalWriteService(_store, _bus);
        var created = _writer.CreateChatAsync(Tenant, Chat, [Sender]).AsTask().GetAwaiter().GetResult();
        if (!created.IsSuccess)
        {
            throw new InvalidOperationException("setup: " + created.ErrorMessage);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _bus.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _store.Dispose();
    }

    [Benchmark]
    public async Task<ulong> Send()
    {
        var content = new ReadOnlyMemory<byte>(_receiveBuffer, 32, ContentBytes);

        // As Session.Commands.cs does: the command outlives the read, so the content leaves the receive buffer here.
        var command = new SendMessage(Tenant, Chat, Sender, (++_next).ToString(System.Globalization.CultureInfo.InvariantCulture), "text/plain",
            content.ToArray(), null);
        var result = await _writer.SendAsync(command).ConfigureAwait(false);
        return result.IsSuccess ? result.Seq : throw new InvalidOperationException(result.ErrorMessage);
    }

    /// <summary>
    /// A store double that keeps chats, members and heads but no messages and no idempotency records (every key is new
    /// in this benchmark, so none is ever asked for), and commits at once.
    /// </summary>
    private sealed class DiscardingChatStore : IChatStore
    {
        private readonly Dictionary<(string, string), (HashSet<string> Members, ulong Head)> _chats = [];

        public ValueTask<IdempotencyRecord?> GetIdempotencyAsync(string tenantId, string senderId, string clientMessageId, CancellationToken cancellationToken = default) =>
            new((IdempotencyRecord?)null);

        public ValueTask AppendAsync(IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken = default)
        {
            lock (_chats)
            {
                for (var i = 0; i < messages.Count; i++)
                {
                    var m = messages[i];
                    var chat = _chats[(m.TenantId, m.ChatId)];
                    _chats[(m.TenantId, m.ChatId)] = (chat.Members, m.Seq);
                }
            }

            return default;
        }

        public ValueTask<IReadOnlyList<string>> GetMembersAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
        {
            lock (_chats)
            {
                return new(_chats.TryGetValue((tenantId, chatId), out var chat) ? [.. chat.Members] : []);
            }
        }

        public ValueTask<bool> ChatExistsAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
        {
            lock (_chats)
            {
                return new(_chats.ContainsKey((tenantId, chatId)));
            }
        }

        public ValueTask AddMembersAsync(string tenantId, string chatId, IReadOnlyCollection<string> userIds, long joinedAt, CancellationToken cancellationToken = default)
        {
            lock (_chats)
            {
                if (!_chats.TryGetValue((tenantId, chatId), out var chat))
                {
                    chat = ([], 0);
                    _chats[(tenantId, chatId)] = chat;
                }

                chat.Members.UnionWith(userIds);
            }

            return default;
        }

        public ValueTask<bool> RemoveMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default)
        {
            lock (_chats)
            {
                return new(_chats.TryGetValue((tenantId, chatId), out var chat) && chat.Members.Remove(userId));
            }
        }

        public ValueTask<ulong> GetHeadAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
        {
            lock (_chats)
            {
                return new(_chats.TryGetValue((tenantId, chatId), out var chat) ? chat.Head : 0UL);
            }
        }

        public ValueTask<IReadOnlyList<ChatMessage>> ReadAfterAsync(string tenantId, string chatId, ulong afterSeq, int limit, CancellationToken cancellationToken = default) =>
            new((IReadOnlyList<ChatMessage>)[]);

        public ValueTask<IReadOnlyList<ChatMessage>> ReadBeforeAsync(string tenantId, string chatId, ulong beforeSeq, int limit, CancellationToken cancellationToken = default) =>
            new((IReadOnlyList<ChatMessage>)[]);

        public void Dispose()
        {
        }
    }
}
