namespace Gateway.Nats;

/// <summary>Operations of <see cref="Subjects.RpcRead"/>.</summary>
internal enum ReadOp
{
    Head = 1,
    After = 2,
    Before = 3,
    IsMember = 4,
    Members = 5,
}

/// <summary>Key of a coalesced read.</summary>
internal readonly record struct ReadKey(ReadOp Op, string TenantId, string ChatId, ulong Seq, string? UserId, int Limit);
