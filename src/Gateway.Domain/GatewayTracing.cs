using System.Diagnostics;
using Gateway.Protocol;

namespace Gateway.Domain;

/// <summary>
/// The one <see cref="ActivitySource"/> of every layer (<c>Gateway</c>), its span names, and the rules for continuing a
/// trace across a hop. A span is started only while something listens to the source (an OpenTelemetry
/// <c>TracerProvider</c> with <c>AddSource("Gateway")</c>, or an <see cref="ActivityListener"/>); with nobody listening
/// each call site costs one <see cref="ActivitySource.HasListeners"/> check and allocates nothing.
/// </summary>
/// <remarks>
/// <para>Spans: <see cref="Send"/> (server: a WebSocket or HTTP send, from received to answered) → embedded:
/// <see cref="Commit"/> (one synced batch) → distributed: <see cref="RpcSend"/> (client on the gateway, server on the
/// writer) → <see cref="Append"/> (producer: the JetStream append) → <see cref="Project"/> (consumer: a writer's
/// projection batch) and <see cref="Fanout"/> (consumer: one event fanned out to a gateway's subscribers; one span per
/// event and gateway, never per connection).</para>
/// <para>Across hops the context travels as a W3C traceparent string (<see cref="TraceContext"/>):
/// <see cref="SendMessage.TraceId"/>, <see cref="EventEnvelope.TraceId"/>, and the <c>traceparent</c>/<c>tracestate</c>
/// NATS headers (proto/NATS.md). A batch span (commit, projection) is the child of its first traced entry and links
/// every traced entry, so each send's trace reaches the batch that made it durable.</para>
/// </remarks>
public static class GatewayTracing
{
    /// <summary>The source name to pass to <c>AddSource</c>.</summary>
    public const string SourceName = "Gateway";

    /// <summary>Send received → answered (server; tag <see cref="TransportTag"/> ws or http).</summary>
    public const string Send = "chatgw.send";

    /// <summary>Embedded mode: one synced commit of a batch of sends.</summary>
    public const string Commit = "chatgw.commit";

    /// <summary>Distributed mode: the send request gateway → writer (client on the gateway, server on the writer).</summary>
    public const string RpcSend = "chatgw.rpc.send";

    /// <summary>Distributed mode: one compare-and-set append of an event to the JetStream log (producer).</summary>
    public const string Append = "chatgw.log.append";

    /// <summary>Distributed mode: a writer's projection writing a batch of log entries into its store (consumer).</summary>
    public const string Project = "chatgw.project";

    /// <summary>One committed message fanned out to this gateway's subscribers of its chat (consumer).</summary>
    public const string Fanout = "chatgw.fanout";

    /// <summary>Tag: ws or http.</summary>
    public const string TransportTag = "chatgw.transport";

    /// <summary>Tag: the tenant id.</summary>
    public const string TenantTag = "chatgw.tenant_id";

    /// <summary>Tag: the chat id.</summary>
    public const string ChatTag = "chatgw.chat_id";

    /// <summary>Tag: the message's seq.</summary>
    public const string SeqTag = "chatgw.seq";

    /// <summary>Tag: the error code of a failed send.</summary>
    public const string ErrorTag = "chatgw.error";

    /// <summary>Tag: commands or entries in a batch.</summary>
    public const string BatchSizeTag = "chatgw.batch.size";

    /// <summary>Tag: this gateway's subscriptions of the chat when the fanout began.</summary>
    public const string SubscribersTag = "chatgw.subscribers";

    /// <summary>Tag (OpenTelemetry messaging): nats.</summary>
    public const string MessagingSystemTag = "messaging.system";

    /// <summary>Tag (OpenTelemetry messaging): the NATS subject.</summary>
    public const string DestinationTag = "messaging.destination.name";

    /// <summary>The source; its version is the assembly's.</summary>
    public static ActivitySource Source { get; } = new(SourceName, typeof(GatewayTracing).Assembly.GetName().Version?.ToString());

    /// <summary>True while something listens: check it before doing any work for a span.</summary>
    public static bool Enabled => Source.HasListeners();

    /// <summary>
    /// Starts a span that continues <paramref name="traceParent"/> when it is a valid W3C traceparent, else
    /// <see cref="Activity.Current"/> (a new trace when there is none). Null when nothing listens or the sampler
    /// declines.
    /// </summary>
    public static Activity? Start(string name, ActivityKind kind, string? traceParent, string? traceState = null)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        TraceContext.TryParse(traceParent, traceState, out var parent); // default (= Activity.Current) when invalid
        return Source.StartActivity(name, kind, parent);
    }

    /// <summary>
    /// Starts a span only to continue <paramref name="traceParent"/>: null when it is missing or invalid (a hop that
    /// receives no valid context makes no new root trace per entry), when nothing listens, or when the sampler declines.
    /// </summary>
    public static Activity? Continue(string name, ActivityKind kind, string? traceParent, string? traceState = null)
    {
        if (!Source.HasListeners() || !TraceContext.TryParse(traceParent, traceState, out var parent))
        {
            return null;
        }

        return Source.StartActivity(name, kind, parent);
    }

    /// <summary>
    /// Starts a batch span: the child of the first valid context of <paramref name="traceParents"/>, linked to every
    /// valid one. Null when nothing listens, no entry is traced (untraced batches make no spans), or the sampler declines.
    /// </summary>
    public static Activity? StartBatch(string name, ActivityKind kind, IEnumerable<string?> traceParents)
    {
        ArgumentNullException.ThrowIfNull(traceParents);
        if (!Source.HasListeners())
        {
            return null;
        }

        ActivityContext parent = default;
        List<ActivityLink>? links = null;
        var count = 0;
        foreach (var traceParent in traceParents)
        {
            count++;
            if (!TraceContext.TryParse(traceParent, out var context))
            {
                continue;
            }

            if (links is null)
            {
                parent = context;
                links = [];
            }

            links.Add(new ActivityLink(context));
        }

        if (links is null)
        {
            return null;
        }

        var activity = Source.StartActivity(name, kind, parent, links: links);
        activity?.SetTag(BatchSizeTag, count);
        return activity;
    }

    /// <summary>The traceparent to hand to the next hop: the span's own when there is one, else the incoming one
    /// unchanged (a hop that does not trace still passes the context on).</summary>
    public static string? Propagate(Activity? activity, string? incoming) => activity is null ? incoming : TraceContext.Format(activity);

    /// <summary>The tracestate to hand to the next hop.</summary>
    public static string? PropagateState(Activity? activity, string? incoming) => activity is null ? incoming : activity.TraceStateString;

    /// <summary>Ends a send span with its outcome. Safe on any thread: stopping a span that is not
    /// <see cref="Activity.Current"/> there leaves Current as it was (<see cref="Activity.Stop"/> alone would set it to
    /// the span's parent).</summary>
    public static void StopSend(Activity? activity, in SendResult result)
    {
        if (activity is null)
        {
            return;
        }

        if (result.IsSuccess)
        {
            activity.SetTag(SeqTag, result.Seq);
        }
        else
        {
            activity.SetTag(ErrorTag, result.Error.ToString());
            activity.SetStatus(ActivityStatusCode.Error, result.ErrorMessage);
        }

        var current = Activity.Current;
        activity.Stop();
        if (!ReferenceEquals(current, activity))
        {
            Activity.Current = current;
        }
    }
}
