namespace Gateway.Cql;

/// <summary>A consistency level as the protocol numbers it (spec §3, [consistency]).</summary>
public enum CqlConsistency : ushort
{
    /// <summary>A write succeeds once any node (a hint included) has it. Writes only.</summary>
    Any = 0x0000,

    /// <summary>One replica.</summary>
    One = 0x0001,

    /// <summary>Two replicas.</summary>
    Two = 0x0002,

    /// <summary>Three replicas.</summary>
    Three = 0x0003,

    /// <summary>A majority of all replicas, across datacenters.</summary>
    Quorum = 0x0004,

    /// <summary>Every replica.</summary>
    All = 0x0005,

    /// <summary>A majority of the replicas in the coordinator's datacenter (the default here).</summary>
    LocalQuorum = 0x0006,

    /// <summary>A majority of the replicas in each datacenter. Writes only.</summary>
    EachQuorum = 0x0007,

    /// <summary>Paxos phase of a lightweight transaction, across datacenters.</summary>
    Serial = 0x0008,

    /// <summary>Paxos phase of a lightweight transaction, in the local datacenter.</summary>
    LocalSerial = 0x0009,

    /// <summary>One replica in the coordinator's datacenter.</summary>
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
