using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Gateway.LoadGen.Reporting;
using Gateway.Tools.Common;

namespace Gateway.LoadGen.Chaos;

/// <summary>
/// <c>Gateway.LoadGen chaos</c>: runs a topology as child processes, drives chat load through raw-protocol clients that
/// reconnect to a random gateway, SIGKILLs and restarts components on a schedule, then lets everything settle,
/// resumes every client once more, reads history from every server and the JetStream log directly, and judges.
/// Exit code 0 only when every failure count of <see cref="ChaosVerdictResult"/> is 0.
/// </summary>
internal static class ChaosRunner
{
    private const string Tenant = "chaos";

    public static async Task<int> RunAsync(CommandLine cli)
    {
        var topologyKind = cli.Get("--topology", "distributed");
        var duration = cli.Double("--duration", 60);
        var rate = cli.Double("--rate", 200);
        var users = cli.Int("--users", 6);
        var chats = cli.Int("--chats", 8);
        var members = Math.Min(users, cli.Int("--members", 3));
        var killInterval = cli.Double("--kill-interval", 10);
        // The cluster run must kill a NATS node, then a writer, then a gateway: round-robin does exactly that.
        var killPlan = cli.Get("--kill-plan", topologyKind == "cluster" ? "roundrobin" : "random");
        var restartDelay = cli.Double("--restart-delay", 2);
        var settleSeconds = cli.Double("--settle-seconds", 60);
        var catchUpSeconds = cli.Double("--catchup-seconds", 30);
        var requestTimeout = TimeSpan.FromMilliseconds(cli.Int("--request-timeout-ms", 5000));
        var maxPending = cli.Int("--max-pending", 20_000);
        var quiet = cli.Flag("--quiet");
        var maxSeconds = cli.Double("--max-seconds", duration + settleSeconds + catchUpSeconds + 300);
        var seed = cli.OptionalInt("--seed") ?? Random.Shared.Next();
        var label = cli.Get("--label");
        var outDir = cli.Get("--out", Path.Combine("bench", "results", "chaos-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)));
        if (killPlan is not ("random" or "roundrobin" or "none"))
        {
            Console.Error.WriteLine("--kill-plan must be random, roundrobin or none");
            return 2;
        }

        if (users < 1 || chats < 1 || members < 1 || rate <= 0 || duration <= 0)
        {
            Console.Error.WriteLine("--users, --chats, --members, --rate and --duration must be positive");
            return 2;
        }

        var serverDll = cli.Get("--server", "auto") is var s && s == "auto" ? ServerLauncher.FindServerDll() : Path.GetFullPath(s);
        if (!File.Exists(serverDll))
        {
            Console.Error.WriteLine($"chaos: {serverDll} not found: build src/Gateway.Server -c Release first");
            return 1;
        }

        var natsServer = cli.Get("--nats-server") ?? (File.Exists("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server");

        // The writers' shared store: the CQL test peer's program (a test double of Scylla), or none (RocksDB per writer).
        var cqlPeer = cli.Get("--cql-peer") is { } peerPath ? Path.GetFullPath(peerPath) : null;
        if (cqlPeer is not null && (topologyKind == "embedded" || !File.Exists(cqlPeer)))
        {
            Console.Error.WriteLine($"chaos: --cql-peer needs the distributed or cluster topology and an existing program ({cqlPeer})");
            return 2;
        }
        Directory.CreateDirectory(outDir);
        var stem = Path.Combine(outDir, $"chaos-{topologyKind}{(label is null ? "" : "-" + label)}");

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(maxSeconds));
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            Console.Error.WriteLine("chaos: interrupted; stopping every child process");
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        var clock = Stopwatch.StartNew();
        var random = new Random(seed);
        using var recorder = new ChaosRecorder(clock, stem + "-events.log");
        var observations = new ChaosObservations();
        var notes = new List<string>();
        var report = new Dictionary<string, object?>
        {
            ["scenario"] = "chaos",
            ["topology"] = topologyKind,
            ["label"] = label,
            ["startedAt"] = DateTimeOffset.UtcNow,
            ["parameters"] = new Dictionary<string, object>
            {
                ["duration"] = duration,
                ["rate"] = rate,
                ["users"] = users,
                ["chats"] = chats,
                ["members"] = members,
                ["killInterval"] = killInterval,
                ["killPlan"] = killPlan,
                ["restartDelay"] = restartDelay,
                ["settleSeconds"] = settleSeconds,
                ["catchUpSeconds"] = catchUpSeconds,
                ["requestTimeoutMs"] = requestTimeout.TotalMilliseconds,
                ["seed"] = seed,
                ["serverDll"] = serverDll,
                ["natsServer"] = natsServer,
                ["serverArgs"] = cli.All("--server-arg"),
                ["store"] = cqlPeer is null ? "rocksdb" : "scylla (CQL test peer)",
            },
        };
        ChaosTopology? topology = null;
        var clientTasks = new List<Task>();
        using var clientsCts = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        ChaosVerdictResult? verdict = null;
        string? failure = null;
        string? coverage = null;
        try
        {
            Progress(quiet, clock, $"starting the {topologyKind} topology");
            topology = await ChaosTopology.StartAsync(topologyKind, serverDll, natsServer, outDir, cli.All("--server-arg"), clock, cts.Token, cqlPeer, label).ConfigureAwait(false);
            report["components"] = topology.Components.Select(c => new { c.Name, c.Kind, log = Path.GetRelativePath(outDir, c.LogPath) }).ToList();

            // Chats: chat k has members u(k), u(k+1), … u(k+members-1) (mod users).
            var chatIds = Enumerable.Range(1, chats).Select(k => $"chat-{k}").ToArray();
            var userIds = Enumerable.Range(1, users).Select(u => $"u{u}").ToArray();
            foreach (var (chat, k) in chatIds.Select((c, i) => (c, i)))
            {
                observations.ChatMembers[chat] = [.. Enumerable.Range(0, members).Select(j => userIds[(k + j) % users])];
            }

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            foreach (var (chat, chatMembers) in observations.ChatMembers)
            {
                await CreateChatAsync(http, topology, chat, chatMembers, random, TimeSpan.FromSeconds(60), cts.Token).ConfigureAwait(false);
            }

            Progress(quiet, clock, $"{chats} chats created; connecting {users} clients");
            var clients = new Dictionary<string, ChaosClient>(StringComparer.Ordinal);
            foreach (var user in userIds)
            {
                var userChats = observations.ChatMembers.Where(kv => kv.Value.Contains(user)).Select(kv => kv.Key).ToArray();
                if (userChats.Length == 0)
                {
                    continue;
                }

                var endpoints = topology.GatewayEndpoints;
                var client = new ChaosClient(user, userChats, () => endpoints[Random.Shared.Next(endpoints.Count)],
                    Tokens.Mint(topology.SigningKey, Tenant, user, TimeSpan.FromHours(6)), recorder, requestTimeout);
                clients[user] = client;
                clientTasks.Add(Task.Run(() => client.RunAsync(clientsCts.Token), CancellationToken.None));
            }

            // Load and faults, side by side, for `duration` seconds.
            var loadStart = recorder.Now;
            var loadEnd = loadStart + duration;
            var load = LoadAsync(clients, observations.ChatMembers, rate, loadEnd, maxPending, recorder, random, cts.Token);
            var faults = killPlan == "none"
                ? Task.CompletedTask
                : FaultsAsync(topology, killPlan, killInterval, restartDelay, loadEnd, observations.Kills, recorder, quiet, clock, seed, cts.Token);
            while (!load.IsCompleted)
            {
                await Task.WhenAny(load, Task.Delay(5000, cts.Token)).ConfigureAwait(false);
                var (sent, acked, delivered) = recorder.Totals();
                Progress(quiet, clock, $"sends {sent}, acked {acked}, deliveries {delivered}, pending {clients.Values.Sum(c => c.Pending)}, " +
                    $"up {string.Join(" ", topology.Components.Select(c => c.Name + (c.IsRunning ? "+" : "-")))}");
            }

            await load.ConfigureAwait(false);
            await faults.ConfigureAwait(false);
            if (killPlan == "roundrobin")
            {
                // A bounded run that promised a kill of every kind must have delivered them.
                var missing = topology.Components.Select(c => c.Kind).Distinct().Where(k => !observations.Kills.Any(x => x.Kind == k)).ToList();
                if (missing.Count > 0)
                {
                    coverage = $"the round-robin kill plan never reached {string.Join(", ", missing)} (run longer or shorten --kill-interval)";
                    notes.Add(coverage);
                }
            }

            // Everything back up.
            foreach (var c in topology.Components.Where(c => !c.IsRunning))
            {
                notes.Add($"{c.Name} was down at the end of the load: started again");
                await ChaosTopology.RestartAsync(c, cts.Token).ConfigureAwait(false);
            }

            // Final retry period: every send acknowledged, or the period is over.
            Progress(quiet, clock, $"load over; settling (up to {settleSeconds:0} s) until every send is acknowledged");
            var settleEnd = recorder.Now + settleSeconds;
            while (recorder.Now < settleEnd && clients.Values.Sum(c => c.Pending) > 0)
            {
                await Task.Delay(250, cts.Token).ConfigureAwait(false);
            }

            var settled = recorder.Now;
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"settled after {settled - loadEnd:0.0} s; {clients.Values.Sum(c => c.Pending)} send(s) still unacknowledged"));

            // Every client resumes once more from its cursors and catches up to the highest acknowledged seq.
            Progress(quiet, clock, "every client resumes once more from its cursors");
            foreach (var c in clients.Values)
            {
                c.Abort();
            }

            var (sends, _, _) = recorder.Snapshot();
            var ackedHeads = sends.Where(x => x.Acks.Count > 0).GroupBy(x => x.Chat).ToDictionary(g => g.Key, g => g.Max(x => x.Acks.Max(a => a.Seq)));
            var catchUpEnd = recorder.Now + catchUpSeconds;
            bool CaughtUp() => observations.ChatMembers.All(kv => kv.Value.All(m =>
                !clients.TryGetValue(m, out var c) || c.Cursor(kv.Key) >= ackedHeads.GetValueOrDefault(kv.Key)));
            await Task.Delay(1000, cts.Token).ConfigureAwait(false);
            while (recorder.Now < catchUpEnd && !CaughtUp())
            {
                await Task.Delay(250, cts.Token).ConfigureAwait(false);
            }

            notes.Add(string.Create(CultureInfo.InvariantCulture, $"final catch-up {(CaughtUp() ? "complete" : "INCOMPLETE")} after {recorder.Now - settled:0.0} s"));
            await Task.Delay(2000, cts.Token).ConfigureAwait(false); // stragglers (duplicates) still count
            await clientsCts.CancelAsync().ConfigureAwait(false);
            foreach (var c in clients.Values)
            {
                c.Abort();
            }

            await Task.WhenAll(clientTasks).WaitAsync(TimeSpan.FromSeconds(15), cts.Token).ConfigureAwait(false);

            // History from every server, and the log straight from JetStream.
            Progress(quiet, clock, "reading history from every server" + (topology.NatsUrls is null ? "" : " and the JetStream log"));
            // Writers first in the list (their projections are where a lost or doubled event shows), all servers in
            // parallel, each within its own 45 s.
            var reads = topology.HttpApis.OrderBy(a => a.Name.StartsWith("writer", StringComparison.Ordinal) ? 0 : 1)
                .Select(a => ReadAllHistoryAsync(http, a.Name, a.Http, observations.ChatMembers, topology.SigningKey, TimeSpan.FromSeconds(45), cts.Token))
                .ToList();
            foreach (var (name, perChat, failures) in await Task.WhenAll(reads).ConfigureAwait(false))
            {
                observations.Histories[name] = perChat;
                observations.HistoryFailures.AddRange(failures);
            }

            if (topology.NatsUrls is { } urls)
            {
                using var auditTimeout = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
                auditTimeout.CancelAfter(TimeSpan.FromSeconds(120));
                var (log, logNotes) = await JetStreamAudit.ReadAsync(urls, auditTimeout.Token).ConfigureAwait(false);
                observations.Log = [.. log.Where(e => e.Tenant == Tenant)];
                notes.AddRange(logNotes.Take(50));
            }

            var (allSends, deliveries, counters) = recorder.Snapshot();
            observations.Sends.AddRange(allSends);
            observations.Deliveries.AddRange(deliveries);
            verdict = ChaosVerdict.Evaluate(observations);
            report["counters"] = counters;
            report["reconnects"] = clients.Values.ToDictionary(c => c.User, c => c.Connections - 1);
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or HttpRequestException or IOException or TimeoutException or ArgumentException or JsonException
            or NATS.Client.Core.NatsException)
        {
            failure = cts.IsCancellationRequested && e is OperationCanceledException
                ? $"the run was stopped (interrupted, or over --max-seconds {maxSeconds:0})"
                : $"{e.GetType().Name}: {e.Message}";
            Console.Error.WriteLine("chaos: " + failure);
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
            await clientsCts.CancelAsync().ConfigureAwait(false);
            if (topology is not null)
            {
                await topology.DisposeAsync().ConfigureAwait(false);
            }
        }

        failure ??= coverage;
        report["durationSeconds"] = clock.Elapsed.TotalSeconds;
        report["kills"] = observations.Kills;
        report["verdict"] = verdict;
        report["passed"] = failure is null && verdict is { Passed: true };
        report["error"] = failure;
        report["notes"] = notes;
        await File.WriteAllTextAsync(stem + ".json", JsonSerializer.Serialize(report, ReportWriter.Json)).ConfigureAwait(false);
        await File.WriteAllTextAsync(stem + ".md", Markdown(topologyKind + (label is null ? "" : "-" + label), report, verdict, observations.Kills, notes, failure)).ConfigureAwait(false);
        var line = verdict is null ? $"FAIL: {failure}" : failure is null ? verdict.OneLine() : $"FAIL: {failure}; counts {verdict.OneLine()}";
        Console.Error.WriteLine($"[chaos {topologyKind}] {line}");
        if (verdict is not null)
        {
            static string S(double? x) => x?.ToString("0.00 's'", CultureInfo.InvariantCulture) ?? "n/a";
            Console.Error.WriteLine($"[chaos {topologyKind}] {observations.Kills.Count} kills ({observations.Kills.Count(k => k.BacklogDrainedSeconds is null)} never drained); recovery: " +
                $"first ack max {S(verdict.MaxFirstAckSeconds)} median {S(verdict.MedianFirstAckSeconds)}, backlog drained max {S(verdict.MaxBacklogDrainedSeconds)} median {S(verdict.MedianBacklogDrainedSeconds)}");
        }

        Console.WriteLine(stem + ".json");
        Console.WriteLine(stem + ".md");
        return failure is null && verdict is { Passed: true } ? 0 : 1;
    }

    private static void Progress(bool quiet, Stopwatch clock, string text)
    {
        if (!quiet)
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[chaos {clock.Elapsed.TotalSeconds,6:0.0}s] {text}"));
        }
    }

    /// <summary>Open loop: send i is due at start + i/rate; each picks a random chat and a random member of it as sender.</summary>
    private static async Task LoadAsync(Dictionary<string, ChaosClient> clients, Dictionary<string, string[]> chatMembers, double rate, double end,
        int maxPending, ChaosRecorder recorder, Random random, CancellationToken ct)
    {
        var chats = chatMembers.Keys.ToArray();
        var start = recorder.Now;
        long issued = 0;
        while (recorder.Now < end)
        {
            var due = (long)((recorder.Now - start) * rate);
            var pending = -1;
            for (; issued < due; issued++)
            {
                pending = pending < 0 ? clients.Values.Sum(c => c.Pending) : pending + 1;
                if (pending >= maxPending)
                {
                    recorder.Count("sends-skipped-backlog-full");
                    continue;
                }

                var chat = chats[random.Next(chats.Length)];
                var sender = chatMembers[chat][random.Next(chatMembers[chat].Length)];
                var send = new ChaosSend
                {
                    Sender = sender,
                    Chat = chat,
                    ClientMessageId = string.Create(CultureInfo.InvariantCulture, $"{sender}-{issued + 1}"),
                    IssuedAt = recorder.Now,
                };
                recorder.Issued(send);
                clients[sender].Enqueue(send);
            }

            await Task.Delay(10, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Every ~interval (±30 %): SIGKILL a component, wait, start it again on the same ports and data.</summary>
    private static async Task FaultsAsync(ChaosTopology topology, string plan, double interval, double restartDelay, double end,
        List<ChaosKill> kills, ChaosRecorder recorder, bool quiet, Stopwatch clock, int seed, CancellationToken ct)
    {
        var random = new Random(seed + 1);
        string[] kinds = topology.Kind == "embedded" ? ["server"] : ["nats", "writer", "gateway"];
        var nextOfKind = kinds.ToDictionary(k => k, _ => 0);
        var round = 0;
        var next = recorder.Now + (interval * (0.7 + (0.6 * random.NextDouble())));
        while (true)
        {
            var wait = next - recorder.Now;
            if (next + restartDelay + 1 > end)
            {
                return;
            }

            if (wait > 0)
            {
                await Task.Delay(TimeSpan.FromSeconds(wait), ct).ConfigureAwait(false);
            }

            ChaosProcess victim;
            if (plan == "roundrobin")
            {
                var kind = kinds[round++ % kinds.Length];
                var ofKind = topology.Components.Where(c => c.Kind == kind).ToList();
                victim = ofKind[nextOfKind[kind]++ % ofKind.Count];
            }
            else
            {
                victim = topology.Components[random.Next(topology.Components.Count)];
            }

            // The kill's time is when the process is gone (SIGKILL sent and reaped): a send issued after it cannot be
            // acknowledged by the killed process.
            victim.Kill("chaos");
            var kill = new ChaosKill { Component = victim.Name, Kind = victim.Kind, KilledAt = recorder.Now };
            kills.Add(kill);
            recorder.Event($"SIGKILL {victim.Name} (gone)");
            Progress(quiet, clock, $"SIGKILL {victim.Name}");
            await Task.Delay(TimeSpan.FromSeconds(restartDelay), ct).ConfigureAwait(false);
            try
            {
                await ChaosTopology.RestartAsync(victim, ct).ConfigureAwait(false);
                kill.RestartedAt = recorder.Now;
                recorder.Event($"{victim.Name} restarted");
                Progress(quiet, clock, string.Create(CultureInfo.InvariantCulture, $"{victim.Name} back after {kill.RestartedAt - kill.KilledAt:0.0} s"));
            }
            catch (InvalidOperationException e)
            {
                kill.Error = e.Message;
                recorder.Event($"{victim.Name} restart failed: {e.Message}");
            }

            next = recorder.Now + (interval * (0.7 + (0.6 * random.NextDouble())));
        }
    }

    /// <summary>Creates a chat through the admin API of any component that answers, retrying while components are down.</summary>
    private static async Task CreateChatAsync(HttpClient http, ChaosTopology topology, string chat, string[] chatMembers, Random random, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        var last = "";
        while (deadline.Elapsed < timeout)
        {
            var (name, api) = topology.HttpApis[random.Next(topology.HttpApis.Count)];
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(api, $"/v1/admin/tenants/{Tenant}/chats"))
                {
                    Content = JsonContent.Create(new { chatId = chat, members = chatMembers }),
                };
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", topology.AdminKey);
                using var response = await http.SendAsync(request, ct).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }

                last = $"{name}: HTTP {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false)}";
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                last = $"{name}: {e.Message}";
            }

            await Task.Delay(500, ct).ConfigureAwait(false);
        }

        throw new InvalidOperationException($"could not create chat {chat}: {last}");
    }

    /// <summary>Every chat's history from one server, within <paramref name="budget"/>; once one chat fails, the server's
    /// other chats are not tried (a wedged writer would time out on each).</summary>
    private static async Task<(string Name, Dictionary<string, List<ChaosHistoryEntry>> PerChat, List<string> Failures)> ReadAllHistoryAsync(
        HttpClient http, string name, Uri api, Dictionary<string, string[]> chatMembers, byte[] signingKey, TimeSpan budget, CancellationToken ct)
    {
        var perChat = new Dictionary<string, List<ChaosHistoryEntry>>(StringComparer.Ordinal);
        var failures = new List<string>();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(budget);
        string? down = null;
        foreach (var (chat, members) in chatMembers)
        {
            if (down is not null)
            {
                failures.Add($"{name} {chat}: not read ({down})");
                continue;
            }

            var token = Tokens.Mint(signingKey, Tenant, members[0], TimeSpan.FromHours(1));
            try
            {
                perChat[chat] = await ReadHistoryAsync(http, api, chat, token, deadline.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or JsonException && !ct.IsCancellationRequested)
            {
                var why = deadline.IsCancellationRequested ? $"not done within {budget.TotalSeconds:0} s" : e.Message;
                failures.Add($"{name} {chat}: {why}");
                down = $"{name} failed on {chat}";
            }
        }

        return (name, perChat, failures);
    }

    /// <summary>Every message of a chat from one server's HTTP history API, paging newest first.</summary>
    private static async Task<List<ChaosHistoryEntry>> ReadHistoryAsync(HttpClient http, Uri api, string chat, string token, CancellationToken ct)
    {
        var result = new List<ChaosHistoryEntry>();
        ulong before = 0;
        while (true)
        {
            JsonElement page = default;
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(api, $"/v1/chats/{chat}/messages?limit=200" + (before > 0 ? $"&beforeSeq={before}" : "")));
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                    using var response = await http.SendAsync(request, ct).ConfigureAwait(false);
                    var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
                    if (!response.IsSuccessStatusCode)
                    {
                        throw new HttpRequestException($"history of {chat} from {api}: HTTP {(int)response.StatusCode} {body}");
                    }

                    page = JsonDocument.Parse(body).RootElement;
                    break;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException && attempt < 1 && !ct.IsCancellationRequested)
                {
                    await Task.Delay(1000, ct).ConfigureAwait(false);
                }
            }

            var n = 0;
            foreach (var m in page.EnumerateArray())
            {
                n++;
                var seq = m.GetProperty("seq").GetUInt64();
                var text = m.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()
                    : m.TryGetProperty("contentBase64", out var b) && b.ValueKind == JsonValueKind.String ? Encoding.UTF8.GetString(b.GetBytesFromBase64()) : null;
                result.Add(new ChaosHistoryEntry(seq, m.GetProperty("messageId").GetString()!, m.GetProperty("senderId").GetString()!, text));
                before = before == 0 ? seq : Math.Min(before, seq);
            }

            if (n == 0 || before <= 1)
            {
                return result;
            }
        }
    }

    private static string Markdown(string topology, Dictionary<string, object?> report, ChaosVerdictResult? v, List<ChaosKill> kills, List<string> notes, string? failure)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"# Chaos soak: {topology}");
        sb.AppendLine();
        sb.AppendLine(inv, $"Started {report["startedAt"]:u}, {(double)report["durationSeconds"]!:0} s in all. Parameters: `{JsonSerializer.Serialize(report["parameters"])}`");
        sb.AppendLine();
        sb.AppendLine(inv, $"**Verdict: {(failure is null && v is { Passed: true } ? "PASS" : "FAIL")}**{(failure is null ? "" : $" — error: {failure}")}");
        sb.AppendLine();
        if (v is not null)
        {
            sb.AppendLine("| Count | Value | Meaning |");
            sb.AppendLine("|---|---:|---|");
            void Row(string name, long? value, string meaning) => sb.AppendLine(inv, $"| {name} | {(value is { } x ? x.ToString(inv) : "n/a")} | {meaning} |");
            Row("lost", v.Lost, "(member, chat, seq ≤ head) never delivered");
            Row("duplicated", v.Duplicated, "(member, chat, seq) delivered again");
            Row("reordered", v.Reordered, "delivered after a higher seq");
            Row("unacknowledged", v.Unacknowledged, "sends never acknowledged after the final retry period");
            Row("seqConflicts", v.SeqConflicts, "two identities under one (chat, seq), or one send acked as two");
            Row("idempotency", v.IdempotencyViolations, "one client message id committed under several seqs");
            Row("logDuplicates", v.LogDuplicates, "a MessageCreated seq twice in the JetStream log");
            Row("logOutOfOrder", v.LogOutOfOrder, "log seq not the next one in stream order");
            Row("logMissing", v.LogMissing, "seq ≤ head missing from the log");
            Row("historyMismatches", v.HistoryMismatches, "history (every server) missing a seq or under another message id");
            Row("historyUnreadable", v.HistoryUnreadable, "(server, chat) history reads that failed after retries (e.g. a wedged writer)");
            Row("gaps (info)", v.Gaps, "a member's stream jumped ahead");
            Row("sends / acked", v.Sends, $"{v.Acked} acknowledged");
            Row("messages / deliveries", v.Messages, $"{v.Deliveries} deliveries");
            sb.AppendLine();
            sb.AppendLine(inv, $"Recovery: first ack after a kill max {v.MaxFirstAckSeconds:0.00} s, median {v.MedianFirstAckSeconds:0.00} s; backlog drained max {v.MaxBacklogDrainedSeconds:0.00} s, median {v.MedianBacklogDrainedSeconds:0.00} s.");
            sb.AppendLine();
        }

        sb.AppendLine("| Kill at (s) | Component | Back after (s) | First ack after (s) | Backlog | Drained after (s) |");
        sb.AppendLine("|---:|---|---:|---:|---:|---:|");
        foreach (var k in kills)
        {
            sb.AppendLine(inv, $"| {k.KilledAt:0.0} | {k.Component} | {(k.RestartedAt - k.KilledAt)?.ToString("0.0", inv) ?? "not back: " + k.Error} | {k.FirstAckAfterSeconds?.ToString("0.00", inv) ?? "never"} | {k.Backlog} | {k.BacklogDrainedSeconds?.ToString("0.00", inv) ?? "never"} |");
        }

        sb.AppendLine();
        if (v is not null && v.Samples.Count > 0)
        {
            sb.AppendLine("## Examples");
            foreach (var (kind, list) in v.Samples)
            {
                sb.AppendLine(inv, $"- **{kind}**");
                foreach (var item in list)
                {
                    sb.AppendLine(inv, $"  - {item}");
                }
            }

            sb.AppendLine();
        }

        if (notes.Count > 0)
        {
            sb.AppendLine("## Notes");
            foreach (var n in notes)
            {
                sb.AppendLine(inv, $"- {n}");
            }
        }

        sb.AppendLine();
        sb.AppendLine("Child process logs: `logs-" + topology + "/`; client events: `*-events.log`.");
        return sb.ToString();
    }
}
