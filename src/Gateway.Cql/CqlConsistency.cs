namespace Gateway.Cql;

/// <summary>A consistency level as the protocol numbers it (spec §3, [consistency]).</summary>
public enum CqlConsistency : ushort
{
    Any = 0x0000,
    One = 0x0001,
    Two = 0x0002,
    Three = 0x0003,
    Quorum = 0x0004,
    All = 0x0005,
    LocalQuorum = 0x0006,
    EachQuorum = 0x0007,
    Serial = 0x0008,
    LocalSerial = 0x0009,
    LocalOne = 0x000A,
}

/// <summary>The kind of a BATCH (spec §4.1.7).</summary>
public enum CqlBatchType : byte
{
    /// <summary>Applied atomically through the batch log.</summary>
    Logged = 0,

    /// <summary>No batch log: atomic only within one partition.</summary>
    Unlogged = 1,

    /// <summary>Counter updates only.</summary>
    Counter = 2,
}
