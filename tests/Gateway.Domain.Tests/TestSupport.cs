using System.Text;
using Gateway.Domain.InProcess;
using Gateway.Storage.RocksDb;

namespace Gateway.Domain.Tests;

/// <summary>A unique directory under the temp folder, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "gateway-domain-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

/// <summary>The tests' clock: a <see cref="FakeTimeProvider"/> that moves only when told to, from a fixed start.</summary>
internal static class TestClock
{
    public static DateTimeOffset DefaultStart { get; } = new(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);

    public static FakeTimeProvider New() => new(DefaultStart);

    /// <summary>Now, in Unix milliseconds (what the store and the write service stamp).</summary>
    public static long NowMs(this TimeProvider time) => time.GetUtcNow().ToUnixTimeMilliseconds();
}

internal static class Wait
{
    /// <summary>Every await in these tests is bounded; generous because the machine is shared.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static Task<T> Within<T>(this ValueTask<T> task) => task.AsTask().WaitAsync(Timeout);

    public static Task Within(this ValueTask task) => task.AsTask().WaitAsync(Timeout);

    public static Task Within(this Task task) => task.WaitAsync(Timeout);

    public static Task<T> Within<T>(this Task<T> task) => task.WaitAsync(Timeout);
}

/// <summary>Records every envelope the bus dispatches, in dispatch order.</summary>
internal sealed class EventRecorder : IDisposable
{
    private readonly List<EventEnvelope> _events = [];
    private readonly IDisposable _subscription;

    public EventRecorder(IEventBus bus) => _subscription = bus.Subscribe(e =>
    {
        lock (_events)
        {
            _events.Add(e);
        }
    });

    public IReadOnlyList<EventEnvelope> Snapshot()
    {
        lock (_events)
        {
            return [.. _events];
        }
    }

    public IReadOnlyList<ChatMessage> Messages() =>
        [.. Snapshot().Where(e => e.EventType == EventTypes.MessageCreated).Select(e => ((MessageCreated)e.Payload).Message)];

    public void Dispose() => _subscription.Dispose();
}

/// <summary>
/// Fault injection around the real RocksDB store (not a mock: every call reaches RocksDB unless a fault is armed):
/// can fail appends and hold an append until released, so a test can line commands up into one batch.
/// </summary>
internal sealed class ControllableStore(IChatStore inner) : IChatStore
{
    private readonly Lock _lock = new();
    private TaskCompletionSource? _gate;
    private TaskCompletionSource? _entered;
    private bool _armed;

    public Exception? FailAppendsWith { get; set; }

    public List<int> AppendBatchSizes { get; } = [];

    /// <summary>Makes the next append wait for <see cref="Release"/>; the returned task completes once it waits.</summary>
    public Task HoldNextAppend()
    {
        lock (_lock)
        {
            _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _armed = true;
            return _entered.Task;
        }
    }

    public void Release()
    {
        lock (_lock)
        {
            _gate?.TrySetResult();
        }
    }

    public ValueTask AppendAsync(IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            AppendBatchSizes.Add(messages.Count);
            if (_armed)
            {
                _armed = false;
                _entered!.TrySetResult();
                return HeldAsync(_gate!.Task, messages, cancellationToken);
            }
        }

        if (FailAppendsWith is { } ex)
        {
            return ValueTask.FromException(ex);
        }

        return inner.AppendAsync(messages, cancellationToken);
    }

    public ValueTask<IdempotencyRecord?> GetIdempotencyAsync(string tenantId, string senderId, string clientMessageId, CancellationToken cancellationToken = default) =>
        inner.GetIdempotencyAsync(tenantId, senderId, clientMessageId, cancellationToken);

    public ValueTask<IReadOnlyList<string>> GetMembersAsync(string tenantId, string chatId, CancellationToken cancellationToken = default) =>
        inner.GetMembersAsync(tenantId, chatId, cancellationToken);

    public ValueTask<bool> ChatExistsAsync(string tenantId, string chatId, CancellationToken cancellationToken = default) =>
        inner.ChatExistsAsync(tenantId, chatId, cancellationToken);

    public ValueTask AddMembersAsync(string tenantId, string chatId, IReadOnlyCollection<string> userIds, long joinedAt, CancellationToken cancellationToken = default) =>
        inner.AddMembersAsync(tenantId, chatId, userIds, joinedAt, cancellationToken);

    public ValueTask<bool> RemoveMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default) =>
        inner.RemoveMemberAsync(tenantId, chatId, userId, cancellationToken);

    public ValueTask<ulong> GetHeadAsync(string tenantId, string chatId, CancellationToken cancellationToken = default) =>
        inner.GetHeadAsync(tenantId, chatId, cancellationToken);

    public ValueTask<IReadOnlyList<ChatMessage>> ReadAfterAsync(string tenantId, string chatId, ulong afterSeq, int limit, CancellationToken cancellationToken = default) =>
        inner.ReadAfterAsync(tenantId, chatId, afterSeq, limit, cancellationToken);

    public ValueTask<IReadOnlyList<ChatMessage>> ReadBeforeAsync(string tenantId, string chatId, ulong beforeSeq, int limit, CancellationToken cancellationToken = default) =>
        inner.ReadBeforeAsync(tenantId, chatId, beforeSeq, limit, cancellationToken);

    public void Dispose() => inner.Dispose();

    private async ValueTask HeldAsync(Task gate, IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken)
    {
        await gate.WaitAsync(Wait.Timeout, cancellationToken);
        await inner.AppendAsync(messages, cancellationToken);
    }
}

/// <summary>A real store in a temp directory, a real bus, and the service on top; can restart from the same directory.</summary>
internal sealed class ServiceHarness : IAsyncDisposable
{
    public const string Tenant = "t1";

    private readonly TempDirectory _dir = new();

    private ServiceHarness(WriteServiceOptions? options)
    {
        Options = options;
        Open();
    }

    public FakeTimeProvider Time { get; } = TestClock.New();

    public WriteServiceOptions? Options { get; }

    public RocksDbChatStore Store { get; private set; } = null!;

    public ControllableStore Faults { get; private set; } = null!;

    public InProcessEventBus Bus { get; private set; } = null!;

    public LocalWriteService Service { get; private set; } = null!;

    public EventRecorder Events { get; private set; } = null!;

    public static ServiceHarness Start(WriteServiceOptions? options = null) => new(options);

    public static SendMessage Text(string chatId, string senderId, string clientMessageId, string text = "hello", string? traceId = null, long? expiresAt = null) =>
        new(Tenant, chatId, senderId, clientMessageId, "text/plain", Encoding.UTF8.GetBytes(text), expiresAt, traceId);

    public async Task CreateChatAsync(string chatId, params string[] members)
    {
        var result = await Service.CreateChatAsync(Tenant, chatId, members).Within();
        Assert.True(result.IsSuccess, result.ErrorMessage);
    }

    /// <summary>Waits until the bus has dispatched everything published so far.</summary>
    public Task FlushAsync() => Bus.FlushAsync().Within();

    /// <summary>Shuts everything down and opens a new store, bus and service on the same directory.</summary>
    public async Task RestartAsync()
    {
        await CloseAsync();
        Open();
    }

    public async ValueTask DisposeAsync()
    {
        await CloseAsync();
        _dir.Dispose();
    }

    private void Open()
    {
        Store = new RocksDbChatStore(_dir.Path, timeProvider: Time);
        Faults = new ControllableStore(Store);
        Bus = new InProcessEventBus();
        Events = new EventRecorder(Bus);
        Service = new LocalWriteService(Faults, Bus, Options, Time);
    }

    private async Task CloseAsync()
    {
        await Service.DisposeAsync().AsTask().Within();
        await Bus.DisposeAsync().AsTask().Within();
        Events.Dispose();
        Store.Dispose();
    }
}
