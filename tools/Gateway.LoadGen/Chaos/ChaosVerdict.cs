using System.Globalization;
using Gateway.LoadGen.Measurement;

namespace Gateway.LoadGen.Chaos;

/// <summary>The counts a chaos run is judged by; every one must be 0 for a pass (see <see cref="Passed"/>).</summary>
public sealed class ChaosVerdictResult
{
    /// <summary>(member, chat, seq) with seq in 1..head never delivered to a member that was subscribed throughout.</summary>
    public long Lost { get; set; }

    /// <summary>Deliveries of a (member, chat, seq) beyond the first.</summary>
    public long Duplicated { get; set; }

    /// <summary>Deliveries that arrived after a higher seq of the same (member, chat) had already arrived.</summary>
    public long Reordered { get; set; }

    /// <summary>Times a member's stream jumped past the next seq (informational: a gap that is never filled is also lost).</summary>
    public long Gaps { get; set; }

    /// <summary>Sends never acknowledged (or ended by a non-retryable error).</summary>
    public long Unacknowledged { get; set; }

    /// <summary>(chat, seq) under which two different message ids or client message ids were acknowledged, delivered,
    /// stored in the log or returned by history, plus sends acknowledged twice with a different seq or message id.</summary>
    public long SeqConflicts { get; set; }

    /// <summary>Client message ids committed under more than one seq (the idempotency key did not hold).</summary>
    public long IdempotencyViolations { get; set; }

    /// <summary>MessageCreated seqs that appear more than once in a chat's log (null: no log to read).</summary>
    public long? LogDuplicates { get; set; }

    /// <summary>Log events stored after a higher seq of their chat (in stream order); a gap never filled is <see cref="LogMissing"/>.</summary>
    public long? LogOutOfOrder { get; set; }

    /// <summary>Seqs in 1..head of a chat (head over every source) that the log does not hold.</summary>
    public long? LogMissing { get; set; }

    /// <summary>Seqs in 1..head missing from the history read, or there under another message id (null: not read).</summary>
    public long? HistoryMismatches { get; set; }

    /// <summary>(server, chat) history reads that failed even after retries (a wedged writer times out here).</summary>
    public long HistoryUnreadable { get; set; }

    public long Sends { get; set; }

    public long Acked { get; set; }

    public long Deliveries { get; set; }

    public long Messages { get; set; }

    /// <summary>Highest seq per chat over every source.</summary>
    public Dictionary<string, ulong> Heads { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Up to <see cref="ChaosVerdict.MaxSamples"/> examples per kind of anomaly, for diagnosis.</summary>
    public Dictionary<string, List<string>> Samples { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Per kill: recovery figures (also on the kill records).</summary>
    public double? MaxFirstAckSeconds { get; set; }

    public double? MedianFirstAckSeconds { get; set; }

    public double? MaxBacklogDrainedSeconds { get; set; }

    public double? MedianBacklogDrainedSeconds { get; set; }

    /// <summary>True when every failure count is 0.</summary>
    public bool Passed =>
        Lost == 0 && Duplicated == 0 && Reordered == 0 && Unacknowledged == 0 && SeqConflicts == 0 && IdempotencyViolations == 0
        && (LogDuplicates ?? 0) == 0 && (LogOutOfOrder ?? 0) == 0 && (LogMissing ?? 0) == 0 && (HistoryMismatches ?? 0) == 0 && HistoryUnreadable == 0;

    /// <summary>One line for people and CI logs.</summary>
    public string OneLine() => string.Create(CultureInfo.InvariantCulture,
        $"{(Passed ? "PASS" : "FAIL")}: lost={Lost} duplicated={Duplicated} reordered={Reordered} unacked={Unacknowledged} " +
        $"seqConflicts={SeqConflicts} idempotency={IdempotencyViolations} logDuplicates={Show(LogDuplicates)} logOutOfOrder={Show(LogOutOfOrder)} " +
        $"logMissing={Show(LogMissing)} historyMismatches={Show(HistoryMismatches)} historyUnreadable={HistoryUnreadable} (sends={Sends} acked={Acked} messages={Messages} deliveries={Deliveries}, gaps={Gaps})");

    private static string Show(long? v) => v?.ToString(CultureInfo.InvariantCulture) ?? "n/a";
}

/// <summary>
/// Judges a chaos run from what the clients saw, what the log holds and what history returns. Pure: no I/O, so the
/// tests feed it synthetic observations.
/// </summary>
public static class ChaosVerdict
{
    /// <summary>Examples kept per anomaly kind.</summary>
    public const int MaxSamples = 20;

    public static ChaosVerdictResult Evaluate(ChaosObservations o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var r = new ChaosVerdictResult();
        void Sample(string kind, string text)
        {
            if (!r.Samples.TryGetValue(kind, out var list))
            {
                r.Samples[kind] = list = [];
            }

            if (list.Count < MaxSamples)
            {
                list.Add(text);
            }
        }

        // Identity of every (chat, seq) from every source: message ids and client message ids.
        var ids = new Dictionary<(string Chat, ulong Seq), Identity>();
        void Claim(string chat, ulong seq, string messageId, string? clientId, string source)
        {
            if (!ids.TryGetValue((chat, seq), out var entry))
            {
                ids[(chat, seq)] = entry = new Identity();
            }

            entry.MessageIds.Add(messageId);
            if (clientId is not null)
            {
                entry.ClientIds.Add(clientId);
            }

            if (!entry.Sources.Contains(source, StringComparison.Ordinal))
            {
                entry.Sources += source;
            }
        }

        // Where each client message id was committed: (chat, cmid) → seqs.
        var committed = new Dictionary<(string Chat, string ClientId), HashSet<ulong>>();
        void Commit(string chat, string? clientId, ulong seq)
        {
            if (clientId is null)
            {
                return;
            }

            if (!committed.TryGetValue((chat, clientId), out var seqs))
            {
                committed[(chat, clientId)] = seqs = [];
            }

            seqs.Add(seq);
        }

        var heads = r.Heads;
        void Head(string chat, ulong seq)
        {
            if (!heads.TryGetValue(chat, out var h) || seq > h)
            {
                heads[chat] = seq;
            }
        }

        foreach (var chat in o.ChatMembers.Keys)
        {
            heads[chat] = 0;
        }

        // Sends and acks.
        var ackedId = new Dictionary<(string Chat, ulong Seq), string>();
        foreach (var send in o.Sends)
        {
            r.Sends++;
            if (send.Acks.Count == 0 || send.FatalError is not null)
            {
                r.Unacknowledged++;
                Sample("unacknowledged", $"{send.Sender} {send.Chat} {send.ClientMessageId} attempts={send.Attempts}{(send.FatalError is { } f ? " error=" + f : "")}");
                if (send.Acks.Count == 0)
                {
                    continue;
                }
            }
            else
            {
                r.Acked++;
            }

            var first = send.Acks[0];
            foreach (var ack in send.Acks)
            {
                if (ack.Seq != first.Seq || !string.Equals(ack.MessageId, first.MessageId, StringComparison.Ordinal))
                {
                    r.SeqConflicts++;
                    Sample("seqConflicts", $"send {send.ClientMessageId} in {send.Chat} acked as seq {first.Seq}/{first.MessageId} and later as seq {ack.Seq}/{ack.MessageId}");
                }

                Claim(send.Chat, ack.Seq, ack.MessageId, send.ClientMessageId, "a");
                Commit(send.Chat, send.ClientMessageId, ack.Seq);
                ackedId.TryAdd((send.Chat, ack.Seq), ack.MessageId);
                Head(send.Chat, ack.Seq);
            }
        }

        // Deliveries, per (member, chat) in arrival order.
        var streams = new Dictionary<(string Member, string Chat), (SeqChecker Checker, HashSet<ulong> Seen)>();
        foreach (var d in o.Deliveries)
        {
            r.Deliveries++;
            if (!streams.TryGetValue((d.Member, d.Chat), out var s))
            {
                streams[(d.Member, d.Chat)] = s = (new SeqChecker(), []);
            }

            var highest = s.Checker.Highest;
            switch (s.Checker.Observe(d.Seq))
            {
                case SeqObservation.Duplicate:
                    r.Duplicated++;
                    Sample("duplicated", $"{d.Member} {d.Chat} seq {d.Seq} again on connection {d.Connection} at {d.T:0.0}s");
                    break;
                case SeqObservation.Reordered:
                    r.Reordered++;
                    Sample("reordered", $"{d.Member} {d.Chat} seq {d.Seq} after seq {highest} on connection {d.Connection} at {d.T:0.0}s");
                    break;
                case SeqObservation.Gap:
                    r.Gaps++;
                    Sample("gaps", $"{d.Member} {d.Chat} seq {d.Seq} after seq {highest} on connection {d.Connection} at {d.T:0.0}s");
                    break;
            }

            s.Seen.Add(d.Seq);
            Claim(d.Chat, d.Seq, d.MessageId, d.ClientMessageId, "d");
            Commit(d.Chat, d.ClientMessageId, d.Seq);
            Head(d.Chat, d.Seq);
        }

        // The log.
        Dictionary<string, List<ChaosLogEntry>>? logByChat = null;
        if (o.Log is { } log)
        {
            logByChat = new(StringComparer.Ordinal);
            foreach (var e in log)
            {
                if (!o.ChatMembers.ContainsKey(e.Chat))
                {
                    continue; // not a chat of this run
                }

                if (!logByChat.TryGetValue(e.Chat, out var list))
                {
                    logByChat[e.Chat] = list = [];
                }

                list.Add(e);
                Claim(e.Chat, e.Seq, e.MessageId, e.ClientMessageId, "l");
                Commit(e.Chat, e.ClientMessageId, e.Seq);
                Head(e.Chat, e.Seq);
            }
        }

        // History, from every server it was read from.
        foreach (var (_, history) in o.Histories)
        {
            foreach (var (chat, entries) in history)
            {
                foreach (var h in entries)
                {
                    Claim(chat, h.Seq, h.MessageId, h.ClientMessageId, "h");
                    Commit(chat, h.ClientMessageId, h.Seq);
                    Head(chat, h.Seq);
                }
            }
        }

        r.Messages = heads.Values.Sum(h => (long)h);

        // Lost: every member of every chat must have every seq in 1..head.
        foreach (var (chat, members) in o.ChatMembers)
        {
            var head = heads[chat];
            foreach (var member in members)
            {
                var seen = streams.TryGetValue((member, chat), out var s) ? s.Seen : [];
                ulong? runStart = null;
                for (ulong seq = 1; seq <= head + 1; seq++)
                {
                    if (seq <= head && !seen.Contains(seq))
                    {
                        r.Lost++;
                        runStart ??= seq;
                    }
                    else if (runStart is { } from)
                    {
                        // One example per run of consecutive lost seqs.
                        Sample("lost", from == seq - 1 ? $"{member} {chat} seq {from} (head {head})" : $"{member} {chat} seqs {from}..{seq - 1} (head {head})");
                        runStart = null;
                    }
                }
            }
        }

        // Seq conflicts: two identities under one (chat, seq).
        foreach (var ((chat, seq), entry) in ids.OrderBy(k => k.Key.Chat, StringComparer.Ordinal).ThenBy(k => k.Key.Seq))
        {
            if (entry.MessageIds.Count > 1 || entry.ClientIds.Count > 1)
            {
                r.SeqConflicts++;
                Sample("seqConflicts", $"{chat} seq {seq}: message ids [{string.Join(", ", entry.MessageIds)}], client ids [{string.Join(", ", entry.ClientIds)}] (sources {entry.Sources}: a=ack d=delivery l=log h=history)");
            }
        }

        // Idempotency: one client message id, one seq.
        foreach (var ((chat, clientId), seqs) in committed)
        {
            if (seqs.Count > 1)
            {
                r.IdempotencyViolations++;
                Sample("idempotency", $"{chat} client id {clientId} committed as seqs {string.Join(", ", seqs.Order())}");
            }
        }

        // The log: per chat, MessageCreated seqs 1..head exactly once, in stream order.
        if (logByChat is not null)
        {
            r.LogDuplicates = 0;
            r.LogOutOfOrder = 0;
            r.LogMissing = 0;
            foreach (var (chat, _) in o.ChatMembers)
            {
                var entries = logByChat.TryGetValue(chat, out var l) ? l : [];
                var seen = new HashSet<ulong>();
                ulong highest = 0;
                foreach (var e in entries)
                {
                    if (!seen.Add(e.Seq))
                    {
                        r.LogDuplicates++;
                        Sample("logDuplicates", $"{e.Tenant}/{chat} seq {e.Seq} again at {e.Stream} #{e.StreamSeq} ({e.MessageId}, client id {e.ClientMessageId})");
                        continue;
                    }

                    if (e.Seq < highest)
                    {
                        // Stored after a higher seq: the log is not in seq order (a jump that is never filled is LogMissing).
                        r.LogOutOfOrder++;
                        Sample("logOutOfOrder", $"{e.Tenant}/{chat} seq {e.Seq} at {e.Stream} #{e.StreamSeq}, after seq {highest}");
                    }

                    highest = Math.Max(highest, e.Seq);
                }

                for (ulong seq = 1; seq <= heads[chat]; seq++)
                {
                    if (!seen.Contains(seq))
                    {
                        r.LogMissing++;
                        Sample("logMissing", $"{chat} seq {seq} (head {heads[chat]}) not in the log");
                    }
                }
            }
        }

        // History agrees with what was acknowledged / delivered, on every server it was read from.
        if (o.Histories.Count > 0)
        {
            r.HistoryMismatches = 0;
        }

        foreach (var (source, hist) in o.Histories)
        {
            foreach (var chat in o.ChatMembers.Keys)
            {
                if (!hist.TryGetValue(chat, out var entries))
                {
                    continue; // not read from this server: counted in HistoryUnreadable
                }

                var bySeq = new Dictionary<ulong, string>();
                foreach (var h in entries)
                {
                    bySeq.TryAdd(h.Seq, h.MessageId);
                }

                for (ulong seq = 1; seq <= heads[chat]; seq++)
                {
                    var expectedId = ackedId.TryGetValue((chat, seq), out var a) ? a
                        : ids.TryGetValue((chat, seq), out var e) && e.MessageIds.Count > 0 ? e.MessageIds.First() : null;
                    if (!bySeq.TryGetValue(seq, out var got))
                    {
                        r.HistoryMismatches++;
                        Sample("history", $"{source}: {chat} seq {seq} missing from history (expected {expectedId ?? "?"})");
                    }
                    else if (expectedId is not null && !string.Equals(got, expectedId, StringComparison.Ordinal))
                    {
                        r.HistoryMismatches++;
                        Sample("history", $"{source}: {chat} seq {seq}: history has {got}, acknowledged/delivered {expectedId}");
                    }
                }
            }
        }

        foreach (var failure in o.HistoryFailures)
        {
            r.HistoryUnreadable++;
            Sample("historyUnreadable", failure);
        }

        Recovery(o, r);
        return r;
    }

    /// <summary>
    /// Per kill: seconds until the first ack of a send issued after it, and until the backlog (sends outstanding at
    /// the kill plus those issued before that first ack) was acknowledged. Written onto the kill records.
    /// </summary>
    public static void Recovery(ChaosObservations o, ChaosVerdictResult r)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(r);
        foreach (var kill in o.Kills)
        {
            var k = kill.KilledAt;
            double? firstAck = null;
            foreach (var s in o.Sends)
            {
                if (s.IssuedAt >= k && s.FirstAckAt is { } a && (firstAck is null || a < firstAck))
                {
                    firstAck = a;
                }
            }

            kill.FirstAckAfterSeconds = firstAck - k;
            if (firstAck is null)
            {
                kill.BacklogDrainedSeconds = null;
                kill.Backlog = o.Sends.Count(s => s.IssuedAt >= k || s.FirstAckAt is null || s.FirstAckAt > k);
                continue;
            }

            var backlog = o.Sends.Where(s => s.IssuedAt <= firstAck && (s.FirstAckAt is null || s.FirstAckAt > k)).ToList();
            kill.Backlog = backlog.Count;
            kill.BacklogDrainedSeconds = backlog.Count == 0 ? firstAck - k
                : backlog.Any(s => s.FirstAckAt is null) ? null
                : backlog.Max(s => s.FirstAckAt!.Value) - k;
        }

        var firsts = o.Kills.Where(x => x.FirstAckAfterSeconds is not null).Select(x => x.FirstAckAfterSeconds!.Value).Order().ToList();
        var drains = o.Kills.Where(x => x.BacklogDrainedSeconds is not null).Select(x => x.BacklogDrainedSeconds!.Value).Order().ToList();
        r.MaxFirstAckSeconds = firsts.Count > 0 ? firsts[^1] : null;
        r.MedianFirstAckSeconds = Median(firsts);
        r.MaxBacklogDrainedSeconds = drains.Count > 0 ? drains[^1] : null;
        r.MedianBacklogDrainedSeconds = Median(drains);
    }

    private sealed class Identity
    {
        public HashSet<string> MessageIds { get; } = new(StringComparer.Ordinal);

        public HashSet<string> ClientIds { get; } = new(StringComparer.Ordinal);

        public string Sources { get; set; } = "";
    }

    private static double? Median(List<double> sorted) =>
        sorted.Count == 0 ? null : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
}
