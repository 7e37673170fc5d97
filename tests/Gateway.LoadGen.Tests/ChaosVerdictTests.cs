using Gateway.LoadGen.Chaos;

namespace Gateway.LoadGen.Tests;

/// <summary>The chaos verdict over synthetic observations: a clean run counts 0 everywhere, and each injected fault
/// is counted where it belongs (and fails the verdict).</summary>
public class ChaosVerdictTests
{
    private const string Chat = "chat-1";

    /// <summary>Two members (a, b), messages 1..n sent alternately by a and b, each acked once, delivered once in order
    /// to both, in the log once in order, and in history on two servers.</summary>
    private static ChaosObservations Clean(int n = 5)
    {
        var o = new ChaosObservations();
        o.ChatMembers[Chat] = ["a", "b"];
        var history = new List<ChaosHistoryEntry>();
        for (var i = 1; i <= n; i++)
        {
            var seq = (ulong)i;
            var sender = i % 2 == 1 ? "a" : "b";
            var cmid = $"{sender}-{i}";
            var mid = $"m{i}";
            var send = new ChaosSend { Sender = sender, Chat = Chat, ClientMessageId = cmid, IssuedAt = i, Attempts = 1 };
            send.Acks.Add(new ChaosAck(seq, mid, false, i + 0.01));
            o.Sends.Add(send);
            o.Deliveries.Add(new ChaosDelivery("a", Chat, seq, mid, sender, cmid, 1, i + 0.02));
            o.Deliveries.Add(new ChaosDelivery("b", Chat, seq, mid, sender, cmid, 1, i + 0.02));
            history.Add(new ChaosHistoryEntry(seq, mid, sender, cmid));
        }

        o.Log = [.. o.Sends.Select((s, i) => new ChaosLogEntry("CHATLOG_0_15", (ulong)(i + 10), "chaos", Chat, s.Acks[0].Seq, s.Acks[0].MessageId, s.Sender, s.ClientMessageId))];
        o.Histories["writer-1"] = new() { [Chat] = history };
        o.Histories["gateway-1"] = new() { [Chat] = [.. history.AsEnumerable().Reverse()] };
        return o;
    }

    private static void AssertOnly(ChaosVerdictResult r, string counter, long expected)
    {
        var all = new Dictionary<string, long>
        {
            ["lost"] = r.Lost,
            ["duplicated"] = r.Duplicated,
            ["reordered"] = r.Reordered,
            ["unacknowledged"] = r.Unacknowledged,
            ["seqConflicts"] = r.SeqConflicts,
            ["idempotency"] = r.IdempotencyViolations,
            ["logDuplicates"] = r.LogDuplicates ?? 0,
            ["logOutOfOrder"] = r.LogOutOfOrder ?? 0,
            ["logMissing"] = r.LogMissing ?? 0,
            ["historyMismatches"] = r.HistoryMismatches ?? 0,
            ["historyUnreadable"] = r.HistoryUnreadable,
        };
        Assert.Equal(expected, all[counter]);
        foreach (var (name, value) in all)
        {
            if (name != counter)
            {
                Assert.True(value == 0, $"{name} = {value}, expected 0 (only {counter} was injected). Samples: {string.Join(" | ", r.Samples.SelectMany(kv => kv.Value))}");
            }
        }

        Assert.False(r.Passed);
    }

    [Fact]
    public void A_clean_run_counts_nothing_and_passes()
    {
        var r = ChaosVerdict.Evaluate(Clean());
        Assert.True(r.Passed, r.OneLine());
        Assert.Equal((0L, 0L, 0L, 0L, 0L, 0L), (r.Lost, r.Duplicated, r.Reordered, r.Unacknowledged, r.SeqConflicts, r.IdempotencyViolations));
        Assert.Equal((0L, 0L, 0L, 0L), (r.LogDuplicates, r.LogOutOfOrder, r.LogMissing, r.HistoryMismatches));
        Assert.Equal(5UL, r.Heads[Chat]);
        Assert.Equal((5L, 5L, 10L, 5L), (r.Sends, r.Acked, r.Deliveries, r.Messages));
        Assert.StartsWith("PASS", r.OneLine(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_delivery_never_made_is_lost()
    {
        var o = Clean();
        o.Deliveries.RemoveAll(d => d.Member == "b" && d.Seq == 3);
        var r = ChaosVerdict.Evaluate(o);
        AssertOnly(r, "lost", 1);
        Assert.Contains("b chat-1 seq 3", r.Samples["lost"][0], StringComparison.Ordinal);
        Assert.Equal(1, r.Gaps); // b's stream jumped from 2 to 4
    }

    [Fact]
    public void The_last_seq_missing_at_a_member_is_lost_too()
    {
        var o = Clean();
        o.Deliveries.RemoveAll(d => d.Member == "a" && d.Seq == 5);
        AssertOnly(ChaosVerdict.Evaluate(o), "lost", 1);
    }

    [Fact]
    public void A_second_delivery_of_a_seq_is_a_duplicate()
    {
        var o = Clean();
        o.Deliveries.Add(o.Deliveries.First(d => d.Member == "a" && d.Seq == 2) with { Connection = 2 });
        AssertOnly(ChaosVerdict.Evaluate(o), "duplicated", 1);
    }

    [Fact]
    public void A_seq_delivered_after_a_higher_one_is_reordered()
    {
        var o = Clean();
        var i3 = o.Deliveries.FindIndex(d => d.Member == "b" && d.Seq == 3);
        var i4 = o.Deliveries.FindIndex(d => d.Member == "b" && d.Seq == 4);
        (o.Deliveries[i3], o.Deliveries[i4]) = (o.Deliveries[i4], o.Deliveries[i3]);
        var r = ChaosVerdict.Evaluate(o);
        AssertOnly(r, "reordered", 1);
    }

    [Fact]
    public void A_send_never_acknowledged_is_counted()
    {
        var o = Clean();
        o.Sends.Add(new ChaosSend { Sender = "a", Chat = Chat, ClientMessageId = "a-99", IssuedAt = 9, Attempts = 7 });
        var r = ChaosVerdict.Evaluate(o);
        AssertOnly(r, "unacknowledged", 1);
        Assert.Equal(5, r.Acked);
    }

    [Fact]
    public void Two_messages_delivered_under_one_seq_are_a_seq_conflict()
    {
        var o = Clean();
        // Member b got another message under seq 4 than member a (and the ack) did.
        var i = o.Deliveries.FindIndex(d => d.Member == "b" && d.Seq == 4);
        o.Deliveries[i] = o.Deliveries[i] with { MessageId = "m-other", ClientMessageId = "b-other" };
        var r = ChaosVerdict.Evaluate(o);
        Assert.Equal(1, r.SeqConflicts);
        Assert.Contains("chat-1 seq 4", r.Samples["seqConflicts"][0], StringComparison.Ordinal);
        Assert.False(r.Passed);
    }

    [Fact]
    public void A_retry_acknowledged_with_another_seq_is_a_seq_conflict_and_breaks_idempotency()
    {
        var o = Clean();
        // The retry of a-5 came back as a new message at seq 6 instead of the original seq 5.
        o.Sends[4].Acks.Add(new ChaosAck(6, "m6", false, 7));
        foreach (var m in new[] { "a", "b" })
        {
            o.Deliveries.Add(new ChaosDelivery(m, Chat, 6, "m6", "a", "a-5", 1, 7.1));
        }

        o.Log!.Add(new ChaosLogEntry("CHATLOG_0_15", 20, "chaos", Chat, 6, "m6", "a", "a-5"));
        o.Histories["writer-1"][Chat].Add(new ChaosHistoryEntry(6, "m6", "a", "a-5"));
        o.Histories["gateway-1"][Chat].Add(new ChaosHistoryEntry(6, "m6", "a", "a-5"));
        var r = ChaosVerdict.Evaluate(o);
        Assert.Equal(1, r.SeqConflicts);
        Assert.Equal(1, r.IdempotencyViolations);
        Assert.Equal((0L, 0L, 0L), (r.Lost, r.Duplicated, r.Reordered));
        Assert.False(r.Passed);
    }

    [Fact]
    public void A_seq_twice_in_the_log_is_a_log_duplicate()
    {
        var o = Clean();
        // Redelivered append: seq 3 stored again later in the stream, with another message id.
        o.Log!.Add(o.Log[2] with { StreamSeq = 99, MessageId = "m3-again", ClientMessageId = "a-3-again" });
        var r = ChaosVerdict.Evaluate(o);
        Assert.Equal(1, r.LogDuplicates);
        Assert.Equal(1, r.SeqConflicts); // two identities under seq 3
        Assert.False(r.Passed);
    }

    [Fact]
    public void Log_seqs_out_of_stream_order_and_missing_are_counted()
    {
        var o = Clean();
        (o.Log![1], o.Log[2]) = (o.Log[2], o.Log[1]); // 1, 3, 2, 4, 5
        var r = ChaosVerdict.Evaluate(o);
        AssertOnly(r, "logOutOfOrder", 1);

        o = Clean();
        o.Log!.RemoveAt(4); // seq 5 acked and delivered but not in the log
        AssertOnly(ChaosVerdict.Evaluate(o), "logMissing", 1);
    }

    [Fact]
    public void History_that_disagrees_with_the_ack_on_any_server_is_counted()
    {
        var o = Clean();
        o.Histories["writer-1"][Chat].RemoveAll(h => h.Seq == 2);
        AssertOnly(ChaosVerdict.Evaluate(o), "historyMismatches", 1);

        o = Clean();
        var list = o.Histories["gateway-1"][Chat];
        var i = list.FindIndex(h => h.Seq == 4);
        list[i] = list[i] with { MessageId = "m-wrong", ClientMessageId = "b-4" };
        var r = ChaosVerdict.Evaluate(o);
        Assert.Equal(1, r.HistoryMismatches);
        Assert.Equal(1, r.SeqConflicts); // m4 vs m-wrong under seq 4
        Assert.False(r.Passed);

        o = Clean();
        o.Histories["writer-1"].Remove(Chat);
        o.HistoryFailures.Add("writer-1 chat-1: timed out");
        AssertOnly(ChaosVerdict.Evaluate(o), "historyUnreadable", 1);
    }

    [Fact]
    public void Embedded_runs_without_a_log_report_log_counts_as_not_applicable()
    {
        var o = Clean();
        o.Log = null;
        var r = ChaosVerdict.Evaluate(o);
        Assert.True(r.Passed, r.OneLine());
        Assert.Null(r.LogDuplicates);
        Assert.Contains("logDuplicates=n/a", r.OneLine(), StringComparison.Ordinal);
    }

    [Fact]
    public void Recovery_is_measured_from_the_kill_to_the_first_ack_of_a_later_send_and_to_the_drained_backlog()
    {
        var o = new ChaosObservations();
        o.ChatMembers[Chat] = ["a"];
        ChaosSend Send(string id, double issued, double? acked)
        {
            var s = new ChaosSend { Sender = "a", Chat = Chat, ClientMessageId = id, IssuedAt = issued };
            if (acked is { } t)
            {
                s.Acks.Add(new ChaosAck((ulong)(o.Sends.Count + 1), "m" + id, false, t));
            }

            o.Sends.Add(s);
            return s;
        }

        Send("before-acked", 9.0, 9.5);    // done before the kill: not backlog
        Send("in-flight", 9.9, 14.0);      // outstanding at the kill: backlog, drained at 14.0
        Send("during", 11.0, 13.5);        // issued after the kill, acked first at 13.5
        Send("after", 13.8, 13.9);         // issued after the first ack: not backlog
        o.Kills.Add(new ChaosKill { Component = "writer-1", Kind = "writer", KilledAt = 10.0 });
        var r = new ChaosVerdictResult();
        ChaosVerdict.Recovery(o, r);
        var k = o.Kills[0];
        Assert.Equal(3.5, k.FirstAckAfterSeconds!.Value, 6);
        Assert.Equal(2, k.Backlog);
        Assert.Equal(4.0, k.BacklogDrainedSeconds!.Value, 6);
        Assert.Equal(3.5, r.MaxFirstAckSeconds!.Value, 6);

        // A backlog send never acknowledged: not drained.
        o.Sends[1].Acks.Clear();
        ChaosVerdict.Recovery(o, r);
        Assert.Null(o.Kills[0].BacklogDrainedSeconds);
    }
}
