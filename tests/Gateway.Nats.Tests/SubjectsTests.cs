namespace Gateway.Nats.Tests;

/// <summary>The subject layout is part of a deployment's persistent state: a chat must map to the same partition in
/// every process and version, or its log subject (and the CAS on it) moves.</summary>
public sealed class SubjectsTests
{
    [Fact]
    public void Partition_is_fnv1a_of_tenant_slash_chat_fixed_across_versions()
    {
        // FNV-1a-32("t1/general") = 2270528961 (computed independently); 2270528961 mod 16 = 1.
        var subjects = new Subjects(16, 8);
        Assert.Equal(1, subjects.Partition("t1", "general"));
        Assert.Equal("chat.1.t1.general", subjects.Log("t1", "general"));
        Assert.Equal("live.chat.1.t1.general", subjects.Live("t1", "general"));
        Assert.Equal("typing.1.t1.general", subjects.Typing("t1", "general"));
        Assert.Equal("CHATLOG_0_7", subjects.StreamOf("t1", "general"));
        Assert.Equal(["chat.8.>", "chat.9.>", "chat.10.>", "chat.11.>", "chat.12.>", "chat.13.>", "chat.14.>", "chat.15.>"], subjects.StreamSubjects(1));
    }

    [Fact]
    public void A_stream_size_that_does_not_divide_the_partitions_is_refused() =>
        Assert.Throws<ArgumentException>(() => new Subjects(10, 3));
}
