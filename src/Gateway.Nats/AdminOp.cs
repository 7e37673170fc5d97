namespace Gateway.Nats;

/// <summary>Operations of <see cref="Subjects.RpcAdmin"/>.</summary>
internal enum AdminOp
{
    Create = 1,
    Add = 2,
    Remove = 3,
}
