using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Gateway.Nats;
using Gateway.Protocol;
using YamlDotNet.RepresentationModel;

namespace Gateway.Server.Tests;

/// <summary>
/// No cluster and no Docker engine run here, so the container image, the Kubernetes manifests, the alert rules and the
/// dashboard are checked against the code instead: every setting they name is a property of the options classes, the
/// ports and probe paths are the ones the server listens on and answers (a real embedded server is asked), the grace
/// periods cover the drain, the metric names are the agreed ones (and, once <c>/metrics</c> exists, the ones a real
/// server exports), the Prometheus rules pass promtool and their unit tests, NATS accepts its configuration.
/// </summary>
public sealed class DeploymentManifestTests
{
    private static readonly string Root = FindRoot();
    private static readonly string KubernetesDir = Path.Combine(Root, "deploy", "kubernetes");

    /// <summary>The image name the manifests use for our server (kustomization.yaml rewrites it to a registry).</summary>
    private const string OurImage = "chatgw";

    // ---------------------------------------------------------------------------------------------------------------
    // Settings
    // ---------------------------------------------------------------------------------------------------------------

    [Fact]
    public void Every_setting_the_manifests_and_the_Dockerfile_name_is_a_real_setting_with_a_value_of_its_type()
    {
        var catalog = SettingCatalog();
        var problems = new List<string>();
        var checkedCount = 0;

        foreach (var (key, value) in Dockerfile.Load().FinalEnv())
        {
            checkedCount += CheckSetting("Dockerfile ENV", key.Replace("__", ":", StringComparison.Ordinal), value, catalog, problems);
        }

        foreach (var container in OurContainers())
        {
            foreach (var (key, value) in container.Settings())
            {
                checkedCount += CheckSetting($"{container.Where} env/args", key, value, catalog, problems);
            }
        }

        // Commented alternatives (JWKS file, TLS) are what an operator will uncomment: they must be real names too.
        foreach (var file in Directory.EnumerateFiles(KubernetesDir, "*.yaml", SearchOption.AllDirectories))
        {
            foreach (Match m in Regex.Matches(File.ReadAllText(file), @"#\s*-\s*name:\s*((?:Gateway|Nats)__[A-Za-z0-9_]+)"))
            {
                checkedCount += CheckSetting($"{Rel(file)} (comment)", m.Groups[1].Value.Replace("__", ":", StringComparison.Ordinal), null, catalog, problems);
            }
        }

        // Settings the runbook names, in either spelling (Gateway:X, Gateway__X).
        var docs = Path.Combine(Root, "docs", "OPERATIONS.md");
        foreach (Match m in Regex.Matches(File.ReadAllText(docs), @"\b((?:Gateway|Nats)(?::|__)[A-Z][A-Za-z0-9:_]*[A-Za-z0-9])"))
        {
            checkedCount += CheckSetting("docs/OPERATIONS.md", m.Groups[1].Value.Replace("__", ":", StringComparison.Ordinal), null, catalog, problems);
        }

        Assert.True(problems.Count == 0, string.Join('\n', problems));
        Assert.True(checkedCount > 20, $"only {checkedCount} settings found: the parsing is broken");
    }

    [Fact]
    public void The_catalog_walk_finds_nested_and_array_settings_and_refuses_a_typo()
    {
        // The settings check is only as good as the walk over the options types: prove it sees what it must see.
        var catalog = SettingCatalog();
        var problems = new List<string>();
        CheckSetting("t", "Gateway:Tls:CertificatePath", "/x", catalog, problems);
        CheckSetting("t", "Gateway:Auth:PublicKeyFiles:3", "/x", catalog, problems);
        CheckSetting("t", "nats:replicas", "3", catalog, problems);
        Assert.Empty(problems);
        CheckSetting("t", "Gateway:MaxOutbondFrames", "3", catalog, problems);
        CheckSetting("t", "Gateway:DrainGraceSeconds", "ten", catalog, problems);
        CheckSetting("t", "Gatway:Path", "/", catalog, problems);
        Assert.Equal(3, problems.Count);
    }

    [Fact]
    public void Secrets_come_from_the_Secret_never_from_literal_values_or_command_lines()
    {
        var secret = Manifests().Single(m => m.Kind == "Secret");
        var secretName = secret.Name;
        var secretKeys = Map(secret.Doc["stringData"]).Keys.ToHashSet(StringComparer.Ordinal);
        var problems = new List<string>();

        // Settings whose value is a credential: only ever from a secretKeyRef.
        string[] credentials = ["Gateway:Auth:AdminKey", "Gateway:Auth:SigningKey", "Gateway:Tls:Password", "Nats:Token", "Nats:Password"];
        foreach (var container in OurContainers())
        {
            foreach (var env in container.EnvEntries())
            {
                var key = Str(env["name"])!.Replace("__", ":", StringComparison.Ordinal);
                if (credentials.Contains(key, StringComparer.OrdinalIgnoreCase) && env.ContainsKey("value"))
                {
                    problems.Add($"{container.Where}: {key} has a literal value; use valueFrom.secretKeyRef");
                }

                if (Get(env, "valueFrom", "secretKeyRef") is Dictionary<string, object?> reference
                    && (Str(reference["name"]) != secretName || !secretKeys.Contains(Str(reference["key"])!)))
                {
                    problems.Add($"{container.Where}: {key} refers to {Str(reference["name"])}/{Str(reference["key"])}, which secret.example.yaml does not define");
                }
            }

            foreach (var arg in container.Args)
            {
                if (credentials.Any(c => arg.Contains(c, StringComparison.OrdinalIgnoreCase)))
                {
                    problems.Add($"{container.Where}: a credential on the command line: {arg}");
                }
            }

            // Key files must be files the pod mounts from the Secret. (AdminKeyFile and SigningKeyFile are accepted here for
            // when the options grow them; the settings test decides whether a name exists.)
            var settings = container.Settings();
            foreach (var (key, value) in settings)
            {
                if (value is null || !Regex.IsMatch(key, @"^Gateway:(Auth:(PublicKeyFiles:\d+|JwksFile|AdminKeyFile|SigningKeyFile)|Tls:(CertificatePath|KeyPath))$", RegexOptions.IgnoreCase))
                {
                    continue;
                }

                var mount = container.Mounts().FirstOrDefault(mt => value.StartsWith(mt.MountPath.TrimEnd('/') + "/", StringComparison.Ordinal));
                if (mount.Volume is null || Get(container.PodVolume(mount.Volume), "secret") is not Dictionary<string, object?> volumeSecret)
                {
                    problems.Add($"{container.Where}: {key}={value} is not on a volume from a Secret");
                    continue;
                }

                var fileName = value[(mount.MountPath.TrimEnd('/').Length + 1)..];
                var items = volumeSecret.TryGetValue("items", out var it) && it is List<object?> list
                    ? list.Select(i => Str(Map(i)["path"])!).ToList()
                    : [.. secretKeys];
                if (Str(volumeSecret["secretName"]) != secretName || !items.Contains(fileName))
                {
                    problems.Add($"{container.Where}: {key}={value}: the mounted Secret volume has no file {fileName}");
                }
            }

            // The server refuses to start without keys outside loopback: every container must configure both kinds.
            if (!settings.Keys.Any(k => Regex.IsMatch(k, @"^Gateway:Auth:(PublicKeyFiles:\d+|JwksFile|JwksUrl|SigningKey|SigningKeyFile)$", RegexOptions.IgnoreCase)))
            {
                problems.Add($"{container.Where}: no token verification key (Gateway:Auth:PublicKeyFiles / JwksFile / SigningKey)");
            }

            if (!settings.ContainsKey("Gateway:Auth:AdminKey") && !settings.ContainsKey("Gateway:Auth:AdminKeyFile"))
            {
                problems.Add($"{container.Where}: no Gateway:Auth:AdminKey");
            }
        }

        // Examples never put a credential on a command line (it would show in ps, pod specs and shell history).
        foreach (var file in Directory.EnumerateFiles(KubernetesDir, "*.yaml", SearchOption.AllDirectories).Append(Path.Combine(Root, "Dockerfile")))
        {
            foreach (var c in credentials)
            {
                if (File.ReadAllText(file).Contains("--" + c, StringComparison.OrdinalIgnoreCase))
                {
                    problems.Add($"{Rel(file)}: an example passes --{c} on a command line");
                }
            }
        }

        foreach (var (key, _) in Dockerfile.Load().FinalEnv())
        {
            if (credentials.Contains(key.Replace("__", ":", StringComparison.Ordinal), StringComparer.OrdinalIgnoreCase))
            {
                problems.Add($"Dockerfile: ENV {key} bakes a credential into the image");
            }
        }

        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Ports, probes, health check: against a real server
    // ---------------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task Probe_and_scrape_ports_are_the_listeners_the_settings_bind_and_the_paths_answer_on_a_real_server()
    {
        var image = Dockerfile.Load();
        var imageEnv = image.FinalEnv().ToDictionary(kv => kv.Key.Replace("__", ":", StringComparison.Ordinal), kv => kv.Value, StringComparer.OrdinalIgnoreCase);
        var problems = new List<string>();
        var paths = new HashSet<string>(StringComparer.Ordinal);

        // The image's own endpoints are the ports it exposes.
        var exposed = image.Final.Where(i => i.Keyword == "EXPOSE").SelectMany(i => i.Args.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Select(int.Parse).ToHashSet();
        foreach (var key in new[] { "Gateway:WebSocketEndpoint", "Gateway:HttpEndpoint" })
        {
            Assert.Contains(IPEndPoint.Parse(imageEnv[key]!).Port, exposed);
            Assert.Equal(IPAddress.Any, IPEndPoint.Parse(imageEnv[key]!).Address);
        }

        foreach (var container in OurContainers())
        {
            var settings = imageEnv.ToDictionary(kv => kv.Key, kv => (string?)kv.Value, StringComparer.OrdinalIgnoreCase);
            foreach (var (k, v) in container.Settings())
            {
                settings[k] = v;
            }

            var role = container.Role();
            var ports = container.Ports();
            var http = IPEndPoint.Parse(settings["Gateway:HttpEndpoint"]!);
            if (!Equals(http.Address, IPAddress.Any))
            {
                problems.Add($"{container.Where}: Gateway:HttpEndpoint {http} is not reachable from outside the pod");
            }

            if (ports.GetValueOrDefault("http") != http.Port)
            {
                problems.Add($"{container.Where}: containerPort 'http' is {ports.GetValueOrDefault("http")}, Gateway:HttpEndpoint binds {http.Port}");
            }

            if (role == "gateway")
            {
                var ws = IPEndPoint.Parse(settings["Gateway:WebSocketEndpoint"]!);
                if (ports.GetValueOrDefault("ws") != ws.Port || !Equals(ws.Address, IPAddress.Any))
                {
                    problems.Add($"{container.Where}: containerPort 'ws' is {ports.GetValueOrDefault("ws")}, Gateway:WebSocketEndpoint binds {ws}");
                }
            }

            // Every probe is an HTTP GET on the HTTP listener (the WebSocket listener answers no HTTP routes).
            foreach (var probeName in new[] { "startupProbe", "livenessProbe", "readinessProbe" })
            {
                if (Get(container.Spec, probeName, "httpGet") is not Dictionary<string, object?> get)
                {
                    if (probeName != "startupProbe")
                    {
                        problems.Add($"{container.Where}: no {probeName} with httpGet");
                    }

                    continue;
                }

                var port = ResolvePort(get["port"], ports);
                if (port != http.Port)
                {
                    problems.Add($"{container.Where}: {probeName} probes port {port}, the HTTP listener is {http.Port}");
                }

                paths.Add(Str(get["path"])!);
            }

            Assert.Equal("/healthz", Str(Get(container.Spec, "livenessProbe", "httpGet", "path")));
            Assert.Equal("/readyz", Str(Get(container.Spec, "readinessProbe", "httpGet", "path")));

            // Scrape annotations point at /metrics on the HTTP listener.
            var annotations = Map(Get(container.Workload.Doc, "spec", "template", "metadata", "annotations"));
            if (Str(annotations["prometheus.io/port"]) != http.Port.ToString(CultureInfo.InvariantCulture) || Str(annotations["prometheus.io/path"]) != "/metrics")
            {
                problems.Add($"{container.Where}: scrape annotations {Str(annotations["prometheus.io/port"])}{Str(annotations["prometheus.io/path"])} are not /metrics on {http.Port}");
            }
        }

        // Services and the PodMonitor name ports that the pods they select have.
        foreach (var service in Manifests().Where(m => m.Kind == "Service"))
        {
            var selector = Map(Get(service.Doc, "spec", "selector"));
            var pods = Workloads().Where(w => Matches(selector, w.TemplateLabels)).ToList();
            if (pods.Count == 0)
            {
                problems.Add($"Service {service.Name} selects no workload");
            }

            foreach (var port in List(Get(service.Doc, "spec", "ports")).Select(Map))
            {
                var target = port.TryGetValue("targetPort", out var t) ? t : port["port"];
                foreach (var workload in pods)
                {
                    if (!workload.Containers().Any(c => ResolvePort(target, c.Ports()) is not null))
                    {
                        problems.Add($"Service {service.Name}: targetPort {Str(target)} is not a port of {workload.Name}");
                    }
                }
            }
        }

        var podMonitor = Manifests().Single(m => m.Kind == "PodMonitor");
        foreach (var endpoint in List(Get(podMonitor.Doc, "spec", "podMetricsEndpoints")).Select(Map))
        {
            Assert.Equal("/metrics", Str(endpoint["path"]));
            Assert.All(OurContainers(), c => Assert.Equal(c.Ports()["http"], ResolvePort(endpoint["port"], c.Ports())));
        }

        Assert.True(problems.Count == 0, string.Join('\n', problems));
        Assert.Equal(new[] { "/healthz", "/readyz" }, paths.Order(StringComparer.Ordinal));

        // The paths are routes the server maps, and a healthy server answers them 200.
        await using var gw = await TestGateway.StartAsync();
        foreach (var path in paths)
        {
            using var response = await gw.Http.GetAsync(path);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {path} answered {(int)response.StatusCode} on a healthy server");
        }
    }

    [Fact]
    public async Task The_image_health_check_succeeds_on_a_live_HTTP_listener_and_fails_on_anything_else()
    {
        var image = Dockerfile.Load();
        var healthcheck = Assert.Single(image.Final, i => i.Keyword == "HEALTHCHECK");
        var copy = image.Final.Single(i => i.Keyword == "COPY" && i.Args.Contains("healthcheck.sh", StringComparison.Ordinal));
        var parts = copy.Args.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(parts[^1], healthcheck.Args, StringComparison.Ordinal);
        var script = Path.Combine(Root, parts[^2]);
        Assert.Contains("/healthz", await File.ReadAllTextAsync(script), StringComparison.Ordinal);

        await using var gw = await TestGateway.StartAsync();
        var httpPort = gw.HttpUri.Port;
        Assert.Equal(0, await RunHealthCheckAsync(script, $"127.0.0.1:{httpPort}"));

        // The image binds 0.0.0.0: the check probes loopback then.
        Assert.Equal(0, await RunHealthCheckAsync(script, $"0.0.0.0:{httpPort}"));

        // The WebSocket listener answers an HTTP GET with an error status: the check must not take that for health.
        Assert.NotEqual(0, await RunHealthCheckAsync(script, $"127.0.0.1:{gw.WebSocketUri.Port}"));

        // Nobody listening.
        using var holder = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var free = ((IPEndPoint)holder.LocalEndpoint).Port;
        holder.Stop();
        Assert.NotEqual(0, await RunHealthCheckAsync(script, $"127.0.0.1:{free}"));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Grace periods, scaling, disruption budgets
    // ---------------------------------------------------------------------------------------------------------------

    [Fact]
    public void Termination_grace_covers_preStop_plus_drain_grace_plus_the_hosts_close_margin()
    {
        var defaults = new GatewayOptions();
        foreach (var container in OurContainers())
        {
            var settings = container.Settings();
            var grace = settings.TryGetValue("Gateway:DrainGraceSeconds", out var g) ? double.Parse(g!, CultureInfo.InvariantCulture) : defaults.DrainGraceSeconds;
            var jitter = settings.TryGetValue("Gateway:DrainJitterSeconds", out var j) ? double.Parse(j!, CultureInfo.InvariantCulture) : defaults.DrainJitterSeconds;
            var preStop = PreStopSeconds(container.Spec);
            var termination = Convert.ToDouble(Str(Get(container.Workload.Doc, "spec", "template", "spec", "terminationGracePeriodSeconds")) ?? "30", CultureInfo.InvariantCulture);

            // GatewayHost: the host's shutdown timeout is DrainGraceSeconds + 5 s; the drain's jitter lies inside the grace
            // (clients are told to reconnect within it while the pod still serves). 5 s more before the kubelet's SIGKILL.
            const double HostCloseMargin = 5;
            const double Margin = 5;
            Assert.True(jitter <= grace, $"{container.Where}: DrainJitterSeconds {jitter} > DrainGraceSeconds {grace}: clients would be cut before their turn");
            Assert.True(termination >= preStop + grace + HostCloseMargin + Margin,
                $"{container.Where}: terminationGracePeriodSeconds {termination} < preStop {preStop} + drain grace {grace} + {HostCloseMargin} + margin {Margin}");
            Assert.True(termination > preStop + grace + jitter, $"{container.Where}: grace period does not cover drain grace + jitter");
            if (container.Role() == "gateway")
            {
                // Without a preStop pause, new clients reach a pod that already refuses them until endpoints update.
                Assert.True(preStop > 0, $"{container.Where}: no preStop pause before SIGTERM");
            }
        }
    }

    [Fact]
    public void Workloads_have_the_shape_the_distributed_mode_needs()
    {
        var nats = Workloads().Single(w => w.Name == "nats");
        var writer = Workloads().Single(w => w.Name == "writer");
        var gateway = Workloads().Single(w => w.Name == "gateway");
        Assert.Equal(("StatefulSet", "StatefulSet", "Deployment"), (nats.Kind, writer.Kind, gateway.Kind));

        // NATS: 3 servers, each with a volume at the JetStream store, routes to every one by its stable name.
        var natsReplicas = int.Parse(Str(Get(nats.Doc, "spec", "replicas"))!, CultureInfo.InvariantCulture);
        Assert.Equal(3, natsReplicas);
        var natsService = Str(Get(nats.Doc, "spec", "serviceName"))!;
        var conf = NatsConf();
        var storeDir = Regex.Match(conf, @"store_dir:\s*(\S+)").Groups[1].Value;
        var natsContainer = nats.Containers().Single();
        Assert.Contains(natsContainer.Mounts(), mt => storeDir.StartsWith(mt.MountPath, StringComparison.Ordinal) && nats.ClaimTemplates().Contains(mt.Volume));
        var clusterPort = natsContainer.Ports()["cluster"];
        var clientPort = natsContainer.Ports()["client"];
        for (var i = 0; i < natsReplicas; i++)
        {
            Assert.Contains($"nats://nats-{i}.{natsService}:{clusterPort}", conf, StringComparison.Ordinal);
        }

        Assert.Contains("jetstream", conf, StringComparison.Ordinal);

        // Writers and gateways reach every NATS server; writers' streams have no more replicas than NATS has servers.
        foreach (var container in OurContainers())
        {
            var settings = container.Settings();
            var urls = settings["Nats:Url"]!.Split(',').Select(u => new Uri(u)).ToList();
            Assert.Equal(Enumerable.Range(0, natsReplicas).Select(i => $"nats-{i}.{natsService}:{clientPort}"), urls.Select(u => $"{u.Host}:{u.Port}"));
            if (settings.TryGetValue("Nats:Replicas", out var r))
            {
                Assert.InRange(int.Parse(r!, CultureInfo.InvariantCulture), 1, natsReplicas);
            }
        }

        // Writers keep their data directory on a claim of their own.
        var writerContainer = writer.Containers().Single();
        Assert.Equal("writer", writerContainer.Role());
        var dataDir = writerContainer.Settings()["Gateway:DataDirectory"]!;
        Assert.Contains(writerContainer.Mounts(), mt => mt.MountPath == dataDir && writer.ClaimTemplates().Contains(mt.Volume));
        Assert.Equal("gateway", gateway.Containers().Single().Role());

        // Every workload has a disruption budget that selects it.
        foreach (var workload in new[] { nats, writer, gateway })
        {
            Assert.Contains(Manifests().Where(m => m.Kind == "PodDisruptionBudget"), pdb => Matches(Map(Get(pdb.Doc, "spec", "selector", "matchLabels")), workload.TemplateLabels));
        }

        // The autoscaler scales the gateway Deployment on connections per pod, a metric the server exports.
        var hpa = Manifests().Single(m => m.Kind == "HorizontalPodAutoscaler");
        Assert.Equal(("Deployment", gateway.Name), (Str(Get(hpa.Doc, "spec", "scaleTargetRef", "kind")), Str(Get(hpa.Doc, "spec", "scaleTargetRef", "name"))));
        var podMetric = List(Get(hpa.Doc, "spec", "metrics")).Select(Map).Single(m => Str(m["type"]) == "Pods");
        var metricName = Str(Get(podMetric, "pods", "metric", "name"))!;
        Assert.Equal("gateway_connections", metricName);
        Assert.True(AgreedMetrics.ContainsKey(metricName));
        Assert.Contains(metricName, File.ReadAllText(Path.Combine(KubernetesDir, "monitoring", "prometheus-adapter-rules.yaml")), StringComparison.Ordinal);

        // kustomization.yaml applies every manifest of the directory except the Secret example.
        var kustomization = Manifests().Single(m => m.Kind == "Kustomization");
        var resources = List(kustomization.Doc["resources"]).Select(r => Str(r)!).ToHashSet();
        var files = Directory.EnumerateFiles(KubernetesDir, "*.yaml").Select(Path.GetFileName).Where(f => f is not ("kustomization.yaml" or "secret.example.yaml")).ToHashSet();
        Assert.Equal(files.Order(StringComparer.Ordinal), resources.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task The_NATS_configuration_is_accepted_by_nats_server()
    {
        var natsServer = FindTool("nats-server", "/usr/sbin/nats-server")
            ?? throw new Xunit.Sdk.XunitException("nats-server not found: install the Debian package nats-server (test.sh does)");
        var dir = TestGateway.NewTempDirectory();
        try
        {
            // The container's paths become temporary ones; the variables come from the pod's environment.
            var conf = NatsConf()
                .Replace("/data/jetstream", Path.Combine(dir, "js"), StringComparison.Ordinal)
                .Replace("/var/run/nats/nats.pid", Path.Combine(dir, "nats.pid"), StringComparison.Ordinal);
            var file = Path.Combine(dir, "nats.conf");
            await File.WriteAllTextAsync(file, conf);
            var env = new Dictionary<string, string> { ["POD_NAME"] = "nats-0", ["NATS_TOKEN"] = "test-token" };
            var nats = Workloads().Single(w => w.Name == "nats").Containers().Single();
            foreach (var name in nats.EnvEntries().Select(e => Str(e["name"])!))
            {
                Assert.True(env.ContainsKey(name), $"the test does not set {name}");
            }

            var (exit, output) = await RunAsync(natsServer, ["-t", "-c", file], env);
            Assert.True(exit == 0, $"nats-server -t: {output}");

            // The same check refuses a configuration with a mistake in it: it is a real check.
            await File.WriteAllTextAsync(file, conf.Replace("lame_duck_duration", "lame_duck_duratoin", StringComparison.Ordinal));
            Assert.NotEqual(0, (await RunAsync(natsServer, ["-t", "-c", file], env)).Exit);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// The writer and gateway containers as real processes: the image's ENV plus each container's env and args from the
    /// manifests, with only what cannot exist here replaced (pod paths by temporary directories, listeners by loopback
    /// port 0, the Secret's values by generated ones, the NATS URL list by one local nats-server running the ConfigMap's
    /// nats.conf without its cluster block, so Nats:Replicas becomes 1). They must start, turn ready and carry a message
    /// from one client to another with an ES256 token verified by the mounted public key and a chat created with the
    /// admin key. Once /metrics exists, the names only distributed roles export must be there too.
    /// </summary>
    [Fact]
    public async Task Writer_and_gateway_start_from_their_manifest_environment_and_carry_a_message()
    {
        var natsServer = FindTool("nats-server", "/usr/sbin/nats-server")
            ?? throw new Xunit.Sdk.XunitException("nats-server not found: install the Debian package nats-server (test.sh does)");
        var dir = TestGateway.NewTempDirectory();
        var processes = new List<Process>();
        try
        {
            // NATS with the ConfigMap's configuration (token auth, JetStream), single node on loopback.
            var natsPort = FreePort();
            var conf = Regex.Replace(NatsConf(), @"(?ms)^cluster \{.*?^\}\s*$", "")
                .Replace("listen: 0.0.0.0:4222", $"listen: 127.0.0.1:{natsPort}", StringComparison.Ordinal)
                .Replace("http: 0.0.0.0:8222", $"http: 127.0.0.1:{FreePort()}", StringComparison.Ordinal)
                .Replace("/data/jetstream", Path.Combine(dir, "js"), StringComparison.Ordinal)
                .Replace("/var/run/nats/nats.pid", Path.Combine(dir, "nats.pid"), StringComparison.Ordinal);
            Assert.DoesNotContain("routes", conf, StringComparison.Ordinal);
            await File.WriteAllTextAsync(Path.Combine(dir, "nats.conf"), conf);
            var natsToken = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24));
            processes.Add(StartProcess(natsServer, ["-c", Path.Combine(dir, "nats.conf")], new() { ["POD_NAME"] = "nats-0", ["NATS_TOKEN"] = natsToken }, dir));
            await WaitForTcpAsync(natsPort);

            // The Secret: an identity provider's EC key pair (the public half mounted), an admin key, the NATS token.
            using var idp = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
            var adminKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
            var secretValues = new Dictionary<string, string> { ["jwt-public.pem"] = idp.ExportSubjectPublicKeyInfoPem(), ["admin-key"] = adminKey, ["nats-token"] = natsToken };

            var endpoints = new Dictionary<string, (Uri? Ws, Uri Http)>();
            foreach (var container in OurContainers().OrderBy(c => c.Role() == "gateway"))
            {
                var role = container.Role();
                var podDir = Path.Combine(dir, role);
                var env = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var (key, value) in Dockerfile.Load().FinalEnv())
                {
                    env[key] = value;
                }

                foreach (var entry in container.EnvEntries())
                {
                    var name = Str(entry["name"])!;
                    env[name] = Str(entry.GetValueOrDefault("value"))
                        ?? (Str(Get(entry, "valueFrom", "secretKeyRef", "key")) is { } secretKey ? secretValues[secretKey]
                        : Str(Get(entry, "valueFrom", "fieldRef", "fieldPath")) == "metadata.name" ? $"{role}-0"
                        : throw new Xunit.Sdk.XunitException($"{container.Where}: {name} has a source this test does not know"));
                }

                // Volumes: each mount becomes a directory; a Secret volume gets the Secret's files. A value on a mount
                // moves to that directory (once: the temporary directories are themselves under /tmp, a mount too).
                var mounts = container.Mounts();
                foreach (var (volume, _) in mounts)
                {
                    var local = Path.Combine(podDir, volume);
                    Directory.CreateDirectory(local);
                    if (Get(container.PodVolume(volume), "secret", "items") is List<object?> items)
                    {
                        foreach (var item in items.Select(Map))
                        {
                            await File.WriteAllTextAsync(Path.Combine(local, Str(item["path"])!), secretValues[Str(item["key"])!]);
                        }
                    }
                }

                foreach (var key in env.Keys.ToList())
                {
                    var value = env[key];
                    if (mounts.Where(m => value == m.MountPath || value.StartsWith(m.MountPath + "/", StringComparison.Ordinal))
                            .OrderByDescending(m => m.MountPath.Length).FirstOrDefault() is { Volume: { } volume, MountPath: var mountPath })
                    {
                        env[key] = Path.Combine(podDir, volume) + value[mountPath.Length..];
                    }
                }

                // What only a cluster has: listeners on loopback (port 0, reported in a ports file), the local NATS.
                Assert.Equal("0.0.0.0:8081", env["Gateway__HttpEndpoint"]);
                env["Gateway__HttpEndpoint"] = "127.0.0.1:0";
                env["Gateway__WebSocketEndpoint"] = "127.0.0.1:0";
                env["Gateway__PortsFile"] = Path.Combine(podDir, "ports.json");
                Assert.StartsWith("nats://nats-0.", env["Nats__Url"], StringComparison.Ordinal);
                env["Nats__Url"] = $"nats://127.0.0.1:{natsPort}";
                if (env.ContainsKey("Nats__Replicas"))
                {
                    env["Nats__Replicas"] = "1";
                }

                Assert.StartsWith(podDir, env["Gateway__DataDirectory"], StringComparison.Ordinal);
                processes.Add(StartProcess("dotnet", [ServerDll(), .. container.Args], env, podDir));
                var ports = await WaitForFileAsync(env["Gateway__PortsFile"], processes[^1]);
                using var doc = JsonDocument.Parse(ports);
                var ws = doc.RootElement.GetProperty("ws").GetString();
                endpoints[role] = (string.IsNullOrEmpty(ws) ? null : new Uri(ws), new Uri(doc.RootElement.GetProperty("http").GetString()!));

                using var http = new HttpClient { BaseAddress = endpoints[role].Http, Timeout = TimeSpan.FromSeconds(10) };
                Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
                await WaitUntilAsync(async () => (await http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, $"{role} /readyz 200");
            }

            // A chat created with the admin key through the gateway, and a message between two clients whose ES256 tokens
            // the gateway verifies with the mounted public key.
            var idpKey = new Microsoft.IdentityModel.Tokens.ECDsaSecurityKey(idp);
            string Token(string user) => new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler().CreateToken(new Microsoft.IdentityModel.Tokens.SecurityTokenDescriptor
            {
                Claims = new Dictionary<string, object> { ["sub"] = user, ["tid"] = "t1" },
                Expires = DateTime.UtcNow.AddHours(1),
                SigningCredentials = new Microsoft.IdentityModel.Tokens.SigningCredentials(idpKey, Microsoft.IdentityModel.Tokens.SecurityAlgorithms.EcdsaSha256),
            });
            using (var admin = new HttpClient { BaseAddress = endpoints["gateway"].Http, Timeout = TimeSpan.FromSeconds(30) })
            using (var create = new HttpRequestMessage(HttpMethod.Post, "/v1/admin/tenants/t1/chats"))
            {
                create.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", adminKey);
                create.Content = new StringContent("{\"chatId\":\"ops\",\"members\":[\"alice\",\"bob\"]}", Encoding.UTF8, "application/json");
                using var created = await admin.SendAsync(create);
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            }

            await using var bob = await WsClient.ConnectAsync(endpoints["gateway"].Ws!, Token("bob"));
            await bob.SubscribeAsync(new ChatCursor("ops", 0));
            await bob.ReceiveAsync<SubscribedFrame>();
            await bob.ReceiveAsync<CaughtUpFrame>();
            await using var alice = await WsClient.ConnectAsync(endpoints["gateway"].Ws!, Token("alice"));
            await alice.SendTextAsync("ops", "through the manifests");
            Assert.Equal(1UL, (await alice.ReceiveAsync<SendAckFrame>()).Seq);
            Assert.Equal("ops", (await bob.ReceiveAsync<MessageFrame>()).ChatId);

            // Names only the distributed roles export (AgreedMetrics: Seen.Distributed), once /metrics exists.
            string[] writerOnly = ["gateway_nats_connected", "gateway_projector_lag", "gateway_jetstream_append_duration_seconds"];
            string[] gatewayOnly = ["gateway_nats_connected", "gateway_rpc_duration_seconds"];
            foreach (var (role, names) in new[] { ("writer", writerOnly), ("gateway", gatewayOnly) })
            {
                using var http = new HttpClient { BaseAddress = endpoints[role].Http, Timeout = TimeSpan.FromSeconds(10) };
                using var metrics = await http.GetAsync("/metrics");
                if (metrics.StatusCode == HttpStatusCode.NotFound)
                {
                    continue;
                }

                var text = await metrics.Content.ReadAsStringAsync();
                foreach (var name in names)
                {
                    Assert.True(Regex.IsMatch(text, $"^{name}(_bucket)?[{{ ]", RegexOptions.Multiline), $"{role} does not export {name}");
                }
            }
        }
        finally
        {
            foreach (var process in Enumerable.Reverse(processes))
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                }

                process.Dispose();
            }

            Directory.Delete(dir, recursive: true);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Dockerfile and .dockerignore
    // ---------------------------------------------------------------------------------------------------------------

    [Fact]
    public void Dockerfile_restores_before_copying_sources_publishes_linux_x64_only_and_runs_as_non_root()
    {
        var image = Dockerfile.Load();
        var build = image.Stages[0];
        var restore = build.FindIndex(i => i.Keyword == "RUN" && i.Args.Contains("dotnet restore", StringComparison.Ordinal));
        var sources = build.FindIndex(i => i.Keyword == "COPY" && i.Args.StartsWith("src/ ", StringComparison.Ordinal));
        Assert.True(restore >= 0 && sources > restore, "the restore layer must come before the sources are copied");

        // The restore layer holds exactly the projects the server needs, and the files restore reads.
        var copiedBeforeRestore = build.Take(restore).Where(i => i.Keyword == "COPY").SelectMany(i => i.Args.Split(' ', StringSplitOptions.RemoveEmptyEntries)[..^1]).ToHashSet(StringComparer.Ordinal);
        var projects = ProjectClosure(Path.Combine(Root, "src", "Gateway.Server", "Gateway.Server.csproj")).Select(Rel).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(projects.Order(StringComparer.Ordinal), copiedBeforeRestore.Where(c => c.EndsWith(".csproj", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        foreach (var file in new[] { "global.json", "Directory.Build.props", "Directory.Packages.props", ".editorconfig" })
        {
            Assert.Contains(file, copiedBeforeRestore);
        }

        // linux-x64 only, framework-dependent.
        var publish = build.Single(i => i.Keyword == "RUN" && i.Args.Contains("dotnet publish", StringComparison.Ordinal)).Args;
        Assert.Contains("-r linux-x64", publish, StringComparison.Ordinal);
        Assert.Contains("--self-contained false", publish, StringComparison.Ordinal);
        Assert.Contains("-r linux-x64", build[restore].Args, StringComparison.Ordinal);

        // Of the RocksDB package's linux-x64 libraries only librocksdb.so ships (the one the loader takes without
        // jemalloc installed; the tests here run it too): every other one is removed after publishing.
        var rocksDbVersion = Regex.Match(File.ReadAllText(Path.Combine(Root, "Directory.Packages.props")), "\"RocksDB\" Version=\"([^\"]+)\"").Groups[1].Value;
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var native = Path.Combine(packages, "rocksdb", rocksDbVersion, "runtimes", "linux-x64", "native");
        Assert.True(Directory.Exists(native), $"{native} not found: the RocksDB package layout changed");
        var libraries = Directory.GetFiles(native).Select(Path.GetFileName).ToList();
        Assert.Contains("librocksdb.so", libraries);
        foreach (var library in libraries.Where(l => l != "librocksdb.so"))
        {
            Assert.Contains($"/app/{library}", publish, StringComparison.Ordinal);
        }

        Assert.Contains("test -f /app/librocksdb.so", publish, StringComparison.Ordinal);

        // Non-root from the USER line on, which comes before the entry point; a health check; the server as entry point.
        var final = image.Final;
        var user = final.FindLastIndex(i => i.Keyword == "USER");
        Assert.True(user >= 0, "no USER in the final stage: the container would run as root");
        Assert.DoesNotMatch(@"^(root|0)(:.*)?$", final[user].Args.Trim());
        Assert.True(user < final.FindIndex(i => i.Keyword == "ENTRYPOINT"));
        Assert.Single(final, i => i.Keyword == "HEALTHCHECK");
        Assert.Equal("[\"dotnet\", \"Gateway.Server.dll\"]", final.Single(i => i.Keyword == "ENTRYPOINT").Args);
        Assert.StartsWith("mcr.microsoft.com/dotnet/aspnet:", image.From[^1], StringComparison.Ordinal);
    }

    [Fact]
    public void Dockerignore_keeps_bench_results_tests_fuzz_build_outputs_and_git_out_but_every_copied_file_in()
    {
        var ignore = DockerIgnore.Load(Path.Combine(Root, ".dockerignore"));
        foreach (var path in new[]
                 {
                     "bench/results/2026-11-26-0339.md", "tests/Gateway.Server.Tests/DeploymentManifestTests.cs", "fuzz/run.sh",
                     "src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll", "src/Gateway.Server/obj/project.assets.json", ".git/HEAD",
                     "data/rocksdb/CURRENT", "tools/Gateway.LoadGen/Program.cs",
                 })
        {
            Assert.True(ignore.IsExcluded(path), $".dockerignore lets {path} into the build context");
        }

        // Everything the Dockerfile copies from the context is in it.
        var image = Dockerfile.Load();
        var sources = image.Stages.SelectMany(s => s).Where(i => i.Keyword == "COPY" && !i.Args.StartsWith("--from", StringComparison.Ordinal))
            .SelectMany(i => i.Args.Split(' ', StringSplitOptions.RemoveEmptyEntries)[..^1]).ToList();
        var files = new List<string>();
        foreach (var source in sources)
        {
            var full = Path.Combine(Root, source);
            if (Directory.Exists(full))
            {
                files.AddRange(Directory.EnumerateFiles(full, "*", SearchOption.AllDirectories).Select(Rel)
                    .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal)));
            }
            else
            {
                Assert.True(File.Exists(full), $"the Dockerfile copies {source}, which does not exist");
                files.Add(source);
            }
        }

        Assert.Contains("src/Gateway.Server/Program.cs", files);
        Assert.All(files, f => Assert.False(ignore.IsExcluded(f), $".dockerignore excludes {f}, which the Dockerfile copies"));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Metrics, alerts, dashboard
    // ---------------------------------------------------------------------------------------------------------------

    /// <summary>Where a metric can be seen: on an embedded server after a little traffic, only in the distributed roles, or
    /// only once its event happened (a counter with no measurement is not exported).</summary>
    private enum Seen
    {
        Embedded,
        Distributed,
        OnEvent,
    }

    /// <summary>
    /// The agreed Prometheus names (the plan's table) plus the Kestrel and runtime instruments the dashboard uses, named
    /// the way OpenTelemetry's Prometheus exporter writes .NET's built-in <c>Microsoft.AspNetCore.Server.Kestrel</c> and
    /// <c>System.Runtime</c> meters. Only in distributed roles: NATS, JetStream, CAS, projector, RPC.
    /// </summary>
    private static readonly Dictionary<string, (bool Histogram, Seen Seen)> AgreedMetrics = new(StringComparer.Ordinal)
    {
        ["gateway_build_info"] = (false, Seen.Embedded),
        ["gateway_connections"] = (false, Seen.Embedded),
        ["gateway_delivery_lag_seconds"] = (true, Seen.Embedded),
        ["gateway_send_duration_seconds"] = (true, Seen.Embedded),
        ["gateway_sends_total"] = (false, Seen.Embedded),
        ["gateway_commit_duration_seconds"] = (true, Seen.Embedded),
        ["gateway_commit_batch_size"] = (true, Seen.Embedded),
        ["gateway_commit_queue_depth"] = (false, Seen.Embedded),
        ["gateway_catchup_duration_seconds"] = (true, Seen.Embedded),
        ["gateway_catchup_size"] = (true, Seen.Embedded),
        ["gateway_outbound_queued"] = (false, Seen.Embedded),
        ["gateway_deliveries_total"] = (false, Seen.Embedded),
        ["gateway_catchup_messages_total"] = (false, Seen.Embedded),
        ["gateway_slow_consumer_closes_total"] = (false, Seen.OnEvent),
        ["gateway_handshake_rejects_total"] = (false, Seen.OnEvent),
        ["gateway_ephemeral_dropped_total"] = (false, Seen.OnEvent),
        ["gateway_rate_limited_total"] = (false, Seen.OnEvent),
        ["gateway_nats_connected"] = (false, Seen.Distributed),
        ["gateway_jetstream_append_duration_seconds"] = (true, Seen.Distributed),
        ["gateway_cas_retries_total"] = (false, Seen.Distributed),
        ["gateway_projector_lag"] = (false, Seen.Distributed),
        ["gateway_projector_applied_total"] = (false, Seen.Distributed),
        ["gateway_projector_resets_total"] = (false, Seen.Distributed),
        ["gateway_rpc_duration_seconds"] = (true, Seen.Distributed),
        ["kestrel_active_connections"] = (false, Seen.Embedded),
        ["kestrel_rejected_connections_total"] = (false, Seen.OnEvent),
        ["dotnet_process_memory_working_set_bytes"] = (false, Seen.Embedded),
        ["dotnet_gc_last_collection_heap_size_bytes"] = (false, Seen.OnEvent),
        ["dotnet_gc_collections_total"] = (false, Seen.Embedded),
        ["dotnet_gc_pause_time_seconds_total"] = (false, Seen.Embedded),
        ["dotnet_process_cpu_time_seconds_total"] = (false, Seen.Embedded),
        ["dotnet_thread_pool_queue_length"] = (false, Seen.Embedded),
    };

    /// <summary>Metrics of other exporters that the alerts use: kube-state-metrics.</summary>
    private static readonly HashSet<string> ExternalMetrics = new(StringComparer.Ordinal) { "kube_pod_status_ready" };

    [Fact]
    public async Task Alerts_dashboard_autoscaler_and_runbook_use_only_agreed_metric_names_that_a_real_server_exports()
    {
        var used = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        void Use(string where, string text)
        {
            foreach (Match m in Regex.Matches(text, @"\b(?:gateway|kestrel|dotnet|kube)_[a-z0-9_]+\b"))
            {
                var name = BaseName(m.Value);
                if (!used.TryGetValue(name, out var places))
                {
                    used[name] = places = [];
                }

                places.Add(where);
            }
        }

        foreach (var expr in AlertExpressions())
        {
            Use("deploy/prometheus/alerts.yml", expr);
        }

        foreach (var expr in DashboardExpressions())
        {
            Use("deploy/grafana", expr);
        }

        Use("HPA", File.ReadAllText(Path.Combine(KubernetesDir, "gateway.yaml")));
        Use("docs/OPERATIONS.md", File.ReadAllText(Path.Combine(Root, "docs", "OPERATIONS.md")));

        var unknown = used.Where(u => !AgreedMetrics.ContainsKey(u.Key) && !ExternalMetrics.Contains(u.Key)).Select(u => $"{u.Key} ({string.Join(", ", u.Value)})").ToList();
        Assert.True(unknown.Count == 0, "not an agreed metric name: " + string.Join("; ", unknown));

        // The dashboard shows every agreed metric.
        var onDashboard = DashboardExpressions().SelectMany(e => Regex.Matches(e, @"\b(?:gateway|kestrel|dotnet)_[a-z0-9_]+\b").Select(m => BaseName(m.Value))).ToHashSet();
        var missing = AgreedMetrics.Keys.Where(k => !onDashboard.Contains(k)).ToList();
        Assert.True(missing.Count == 0, "not on the dashboard: " + string.Join(", ", missing));

        // Against a real embedded server under a little traffic: every name used that an embedded server has after it must
        // be in its /metrics. Before /metrics exists (404), only the agreed list above can be checked.
        await using var gw = await TestGateway.StartAsync();
        await MakeTrafficAsync(gw);
        using var response = await gw.Http.GetAsync("/metrics");
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return;
        }

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var exported = (await response.Content.ReadAsStringAsync()).Split('\n')
            .Where(l => l.Length > 0 && l[0] != '#')
            .Select(l => l[..l.IndexOfAny(['{', ' '])])
            .ToHashSet(StringComparer.Ordinal);
        var absent = used.Keys
            .Where(n => AgreedMetrics.TryGetValue(n, out var m) && m.Seen == Seen.Embedded)
            .Where(n => !exported.Contains(n) && !exported.Contains(n + "_bucket"))
            .ToList();
        Assert.True(absent.Count == 0, "used but not exported by an embedded server after traffic: " + string.Join(", ", absent)
            + "\nexported: " + string.Join(", ", exported.Order(StringComparer.Ordinal)));
    }

    [Fact]
    public async Task Alert_rules_pass_promtool_and_their_unit_tests_and_the_dashboard_queries_parse()
    {
        var promtool = FindTool("promtool", "/usr/bin/promtool")
            ?? throw new Xunit.Sdk.XunitException("promtool not found: install the Debian package prometheus (test.sh does)");
        var dir = Path.Combine(Root, "deploy", "prometheus");
        var check = await RunAsync(promtool, ["check", "rules", Path.Combine(dir, "alerts.yml")]);
        Assert.True(check.Exit == 0, check.Output);
        var unit = await RunAsync(promtool, ["test", "rules", Path.Combine(dir, "alerts.test.yml")]);
        Assert.True(unit.Exit == 0, unit.Output);

        // Every alert has a unit test case, and every runbook link leads to a heading of the runbook.
        var testText = await File.ReadAllTextAsync(Path.Combine(dir, "alerts.test.yml"));
        var anchors = Regex.Matches(await File.ReadAllTextAsync(Path.Combine(Root, "docs", "OPERATIONS.md")), @"^#+\s+(.+)$", RegexOptions.Multiline)
            .Select(m => Slug(m.Groups[1].Value)).ToHashSet(StringComparer.Ordinal);
        var untested = new List<string>();
        foreach (var rule in AlertRules())
        {
            var name = Str(rule["alert"])!;
            if (!testText.Contains("alertname: " + name, StringComparison.Ordinal))
            {
                untested.Add(name);
            }

            var link = Str(Get(rule, "annotations", "runbook_url"))!;
            Assert.StartsWith("docs/OPERATIONS.md#", link, StringComparison.Ordinal);
            Assert.True(anchors.Contains(link[(link.IndexOf('#', StringComparison.Ordinal) + 1)..]), $"{name}: {link} is no heading of docs/OPERATIONS.md");
        }

        Assert.True(untested.Count == 0, "alerts without a promtool unit test case: " + string.Join(", ", untested));

        // The dashboard's PromQL, with its variables filled in, through promtool's parser (as recording rules).
        var rules = new StringBuilder("groups:\n  - name: dashboard\n    rules:\n");
        var n = 0;
        foreach (var expr in DashboardExpressions())
        {
            var concrete = expr.Replace("$__rate_interval", "1m", StringComparison.Ordinal).Replace("$namespace", "chatgw", StringComparison.Ordinal).Replace("$pod", ".*", StringComparison.Ordinal);
            Assert.DoesNotContain("$", concrete, StringComparison.Ordinal);
            rules.Append(CultureInfo.InvariantCulture, $"      - record: dashboard:q{n++}\n        expr: {JsonSerializer.Serialize(concrete)}\n");
        }

        var file = Path.Combine(Path.GetTempPath(), $"dashboard-{Guid.NewGuid():N}.yml");
        try
        {
            await File.WriteAllTextAsync(file, rules.ToString());
            var parsed = await RunAsync(promtool, ["check", "rules", file]);
            Assert.True(parsed.Exit == 0, parsed.Output);
            Assert.Contains($"{n} rules found", parsed.Output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Dashboard_panels_are_well_formed()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(DashboardPath()));
        var panels = doc.RootElement.GetProperty("panels").EnumerateArray().ToList();
        var ids = panels.Select(p => p.GetProperty("id").GetInt32()).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        var cells = new HashSet<(int, int)>();
        foreach (var panel in panels)
        {
            var grid = panel.GetProperty("gridPos");
            int x = grid.GetProperty("x").GetInt32(), y = grid.GetProperty("y").GetInt32(), w = grid.GetProperty("w").GetInt32(), h = grid.GetProperty("h").GetInt32();
            Assert.InRange(x + w, 1, 24);
            for (var i = x; i < x + w; i++)
            {
                for (var j = y; j < y + h; j++)
                {
                    Assert.True(cells.Add((i, j)), $"panel {panel.GetProperty("title").GetString()} overlaps another");
                }
            }

            if (panel.GetProperty("type").GetString() != "row")
            {
                Assert.NotEmpty(panel.GetProperty("targets").EnumerateArray());
                Assert.False(string.IsNullOrWhiteSpace(panel.GetProperty("description").GetString()));
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------------------

    private static int CheckSetting(string where, string key, string? value, Dictionary<string, Type> catalog, List<string> problems)
    {
        if (key.Equals("role", StringComparison.OrdinalIgnoreCase))
        {
            if (value is not null && value is not ("all" or "gateway" or "writer"))
            {
                problems.Add($"{where}: --role {value} is not all, gateway or writer");
            }

            return 1;
        }

        // Framework-owned settings and variables (logging, ASP.NET Core, the runtime, OpenTelemetry) are not ours to list.
        if (Regex.IsMatch(key, "^(Logging:|ASPNETCORE_|DOTNET_|OTEL_)", RegexOptions.IgnoreCase))
        {
            return 0;
        }

        if (!Regex.IsMatch(key, "^(Gateway|Nats):", RegexOptions.IgnoreCase))
        {
            problems.Add($"{where}: {key} is neither one of our settings nor a framework variable");
            return 1;
        }

        var lookup = Regex.Replace(key, @":\d+$", ":*");
        if (!catalog.TryGetValue(lookup, out var type))
        {
            problems.Add($"{where}: {key} is not a setting (no such property in GatewayOptions, AuthOptions, TlsOptions or NatsOptions)");
            return 1;
        }

        if (value is not null)
        {
            try
            {
                _ = TypeDescriptor.GetConverter(type).ConvertFromInvariantString(value);
                if (key.EndsWith("Endpoint", StringComparison.OrdinalIgnoreCase))
                {
                    _ = IPEndPoint.Parse(value);
                }
            }
            catch (Exception e) when (e is FormatException or NotSupportedException or ArgumentException)
            {
                problems.Add($"{where}: {key}={value} is not a valid {type.Name}: {e.Message}");
            }
        }

        return 1;
    }

    /// <summary>Every bindable setting of our options types, as configuration paths (case-insensitive, like configuration
    /// keys); array elements as <c>Path:*</c>.</summary>
    private static Dictionary<string, Type> SettingCatalog()
    {
        var catalog = new Dictionary<string, Type>(StringComparer.OrdinalIgnoreCase);
        Walk(typeof(GatewayOptions), GatewayOptions.Section, catalog);
        Walk(typeof(AuthOptions), AuthOptions.Section, catalog);
        Walk(typeof(NatsOptions), NatsOptions.Section, catalog);
        Assert.Contains("Gateway:Tls:CertificatePath", catalog.Keys);
        return catalog;

        static void Walk(Type type, string prefix, Dictionary<string, Type> catalog)
        {
            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                if (property.SetMethod is not { IsPublic: true })
                {
                    continue;
                }

                var path = prefix + ":" + property.Name;
                var t = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
                if (t.IsArray)
                {
                    // Elements are set one by one (Path:0, Path:1); the bare name is what prose refers to.
                    catalog[path + ":*"] = t.GetElementType()!;
                    catalog[path] = t;
                }
                else if (t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal) || t == typeof(TimeSpan))
                {
                    catalog[path] = t;
                }
                else
                {
                    Walk(t, path, catalog);
                }
            }
        }
    }

    private static async Task MakeTrafficAsync(TestGateway gw)
    {
        // A message in history (so a later subscribe catches up), then a live one (delivery lag), by WebSocket and HTTP.
        await gw.CreateChatAsync("ops", "alice", "bob");
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await alice.SendTextAsync("ops", "before");
        await alice.ReceiveAsync<SendAckFrame>();
        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));
        await bob.SubscribeAsync(new ChatCursor("ops", 0));
        await bob.ReceiveAsync<SubscribedFrame>();
        Assert.IsType<MessageFrame>(await bob.ReceiveAsync());
        await bob.ReceiveAsync<CaughtUpFrame>();
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chats/ops/messages"))
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", gw.Token("alice"));
            request.Headers.Add("Idempotency-Key", "deploy-test");
            request.Content = new StringContent("{\"contentType\":\"text/plain\",\"text\":\"live\"}", Encoding.UTF8, "application/json");
            using var sent = await gw.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Created, sent.StatusCode);
        }

        Assert.IsType<MessageFrame>(await bob.ReceiveAsync());
    }

    private static string BaseName(string name)
    {
        foreach (var suffix in new[] { "_bucket", "_count", "_sum" })
        {
            if (name.EndsWith(suffix, StringComparison.Ordinal) && AgreedMetrics.TryGetValue(name[..^suffix.Length], out var m) && m.Histogram)
            {
                return name[..^suffix.Length];
            }
        }

        return name;
    }

    private static string Slug(string heading) => Regex.Replace(heading.Trim().ToLowerInvariant(), @"[^a-z0-9 _-]", "").Replace(' ', '-');

    private static IEnumerable<Dictionary<string, object?>> AlertRules()
    {
        var doc = LoadYaml(Path.Combine(Root, "deploy", "prometheus", "alerts.yml")).Single();
        return List(doc["groups"]).Select(Map).SelectMany(g => List(g["rules"]).Select(Map));
    }

    private static IEnumerable<string> AlertExpressions() => AlertRules().Select(r => Str(r["expr"])!);

    private static string DashboardPath() => Path.Combine(Root, "deploy", "grafana", "chatgw-dashboard.json");

    private static List<string> DashboardExpressions()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(DashboardPath()));
        return doc.RootElement.GetProperty("panels").EnumerateArray()
            .Where(p => p.TryGetProperty("targets", out _))
            .SelectMany(p => p.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("expr").GetString()!))
            .ToList();
    }

    private static double PreStopSeconds(Dictionary<string, object?> container)
    {
        if (Get(container, "lifecycle", "preStop") is not Dictionary<string, object?> preStop)
        {
            return 0;
        }

        if (Get(preStop, "sleep", "seconds") is { } seconds)
        {
            return double.Parse(Str(seconds)!, CultureInfo.InvariantCulture);
        }

        var command = List(Get(preStop, "exec", "command")).Select(c => Str(c)!).ToList();
        Assert.True(command.Count == 2 && command[0] == "sleep", $"preStop {string.Join(' ', command)}: expected sleep N");
        return double.Parse(command[1], CultureInfo.InvariantCulture);
    }

    private static int? ResolvePort(object? port, Dictionary<string, int> ports) =>
        Str(port) is { } p && int.TryParse(p, out var number) ? (ports.ContainsValue(number) ? number : null)
        : Str(port) is { } name && ports.TryGetValue(name, out var byName) ? byName : null;

    private static bool Matches(Dictionary<string, object?> selector, Dictionary<string, object?> labels) =>
        selector.Count > 0 && selector.All(kv => labels.TryGetValue(kv.Key, out var v) && Str(v) == Str(kv.Value));

    private static string NatsConf()
    {
        var config = Manifests().Single(m => m.Kind == "ConfigMap" && m.Name == "nats-config");
        return Str(Map(config.Doc["data"])["nats.conf"])!;
    }

    private static List<string> ProjectClosure(string project)
    {
        var seen = new List<string>();
        Visit(Path.GetFullPath(project));
        return seen;

        void Visit(string path)
        {
            if (seen.Contains(path))
            {
                return;
            }

            seen.Add(path);
            foreach (Match m in Regex.Matches(File.ReadAllText(path), "<ProjectReference Include=\"([^\"]+)\""))
            {
                Visit(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, m.Groups[1].Value.Replace('\\', '/'))));
            }
        }
    }

    private static Process StartProcess(string file, string[] args, Dictionary<string, string> env, string workingDirectory)
    {
        Directory.CreateDirectory(workingDirectory);
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // Only the variables given: nothing of ours inherited from the test's own environment.
        foreach (var inherited in start.Environment.Keys.Where(k => k.StartsWith("Gateway__", StringComparison.OrdinalIgnoreCase) || k.StartsWith("Nats__", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(inherited);
        }

        foreach (var (k, v) in env)
        {
            start.Environment[k] = v;
        }

        var process = Process.Start(start)!;
        var log = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Logs[process.Id] = log;
        return process;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, StringBuilder> Logs = new();

    private static async Task<string> WaitForFileAsync(string file, Process process)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (!File.Exists(file))
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                await Task.Delay(200);
                throw new Xunit.Sdk.XunitException($"the server did not start (exit {(process.HasExited ? process.ExitCode : "none")}):\n{Logs[process.Id]}");
            }

            await Task.Delay(50);
        }

        return await File.ReadAllTextAsync(file);
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"not reached within 60 s: {what}");
            }

            await Task.Delay(100);
        }
    }

    private static async Task WaitForTcpAsync(int port)
    {
        await WaitUntilAsync(async () =>
        {
            using var client = new System.Net.Sockets.TcpClient();
            try
            {
                await client.ConnectAsync(IPAddress.Loopback, port);
                return true;
            }
            catch (System.Net.Sockets.SocketException)
            {
                return false;
            }
        }, $"something listening on 127.0.0.1:{port}");
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The server built next to this test (same configuration and target framework).</summary>
    private static string ServerDll()
    {
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var dll = Path.Combine(Root, "src", "Gateway.Server", "bin", testBin.Parent!.Name, testBin.Name, "Gateway.Server.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("build the server first", dll);
    }

    private static async Task<int> RunHealthCheckAsync(string script, string endpoint) =>
        (await RunAsync("/bin/bash", [script], new Dictionary<string, string> { ["Gateway__HttpEndpoint"] = endpoint })).Exit;

    private static async Task<(int Exit, string Output)> RunAsync(string file, string[] args, Dictionary<string, string>? env = null)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (k, v) in env ?? [])
        {
            start.Environment[k] = v;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new Xunit.Sdk.XunitException($"{file} {string.Join(' ', args)} did not finish within 60 s");
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    private static string? FindTool(string name, string fallback) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).Append(fallback).FirstOrDefault(File.Exists);

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Gateway.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("repository root (Gateway.sln) not found");
    }

    private static string Rel(string path) => Path.GetRelativePath(Root, path).Replace('\\', '/');

    // YAML as plain dictionaries, lists and strings.
    private static List<Dictionary<string, object?>> LoadYaml(string file)
    {
        var stream = new YamlStream();
        using (var reader = new StringReader(File.ReadAllText(file)))
        {
            stream.Load(reader);
        }

        return stream.Documents.Where(d => d.RootNode is YamlMappingNode).Select(d => Map(ToPlain(d.RootNode))).ToList();
    }

    private static object? ToPlain(YamlNode node) => node switch
    {
        YamlMappingNode m => m.Children.ToDictionary(kv => ((YamlScalarNode)kv.Key).Value!, kv => ToPlain(kv.Value), StringComparer.Ordinal),
        YamlSequenceNode s => s.Children.Select(ToPlain).ToList(),
        YamlScalarNode s => s.Value,
        _ => null,
    };

    private static Dictionary<string, object?> Map(object? o) => o as Dictionary<string, object?> ?? [];

    private static List<object?> List(object? o) => o as List<object?> ?? [];

    private static string? Str(object? o) => o as string;

    private static object? Get(object? o, params string[] path)
    {
        foreach (var key in path)
        {
            if (o is not Dictionary<string, object?> map || !map.TryGetValue(key, out o))
            {
                return null;
            }
        }

        return o;
    }

    private sealed record Manifest(string File, Dictionary<string, object?> Doc)
    {
        public string Kind => Str(Doc.GetValueOrDefault("kind")) ?? "";

        public string Name => Str(Get(Doc, "metadata", "name")) ?? "";

        public Dictionary<string, object?> TemplateLabels => Map(Get(Doc, "spec", "template", "metadata", "labels"));

        public IEnumerable<Container> Containers() =>
            List(Get(Doc, "spec", "template", "spec", "containers")).Select(c => new Container(this, Map(c)));

        public List<string> ClaimTemplates() =>
            List(Get(Doc, "spec", "volumeClaimTemplates")).Select(t => Str(Get(t, "metadata", "name"))!).ToList();
    }

    private sealed record Container(Manifest Workload, Dictionary<string, object?> Spec)
    {
        public string Where => $"{Rel(Workload.File)} {Workload.Kind}/{Workload.Name} container {Str(Spec["name"])}";

        public string Image => Str(Spec["image"]) ?? "";

        public List<string> Args => List(Spec.GetValueOrDefault("args")).Select(a => Str(a)!).ToList();

        public IEnumerable<Dictionary<string, object?>> EnvEntries() => List(Spec.GetValueOrDefault("env")).Select(Map);

        /// <summary>Configuration keys (<c>Section:Name</c>) set by env and args; null values come from valueFrom.</summary>
        public Dictionary<string, string?> Settings()
        {
            var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            foreach (var env in EnvEntries())
            {
                settings[Str(env["name"])!.Replace("__", ":", StringComparison.Ordinal)] = Str(env.GetValueOrDefault("value"));
            }

            var args = Args;
            for (var i = 0; i < args.Count; i++)
            {
                Assert.StartsWith("--", args[i], StringComparison.Ordinal);
                var eq = args[i].IndexOf('=', StringComparison.Ordinal);
                if (eq > 0)
                {
                    settings[args[i][2..eq]] = args[i][(eq + 1)..];
                }
                else
                {
                    settings[args[i][2..]] = args[++i];
                }
            }

            return settings;
        }

        public string Role() => Settings().GetValueOrDefault("role") ?? "all";

        public Dictionary<string, int> Ports() =>
            List(Spec.GetValueOrDefault("ports")).Select(Map).ToDictionary(p => Str(p["name"])!, p => int.Parse(Str(p["containerPort"])!, CultureInfo.InvariantCulture));

        public List<(string Volume, string MountPath)> Mounts() =>
            List(Spec.GetValueOrDefault("volumeMounts")).Select(Map).Select(m => (Str(m["name"])!, Str(m["mountPath"])!)).ToList();

        public Dictionary<string, object?> PodVolume(string name) =>
            List(Get(Workload.Doc, "spec", "template", "spec", "volumes")).Select(Map).SingleOrDefault(v => Str(v["name"]) == name) ?? [];
    }

    private static List<Manifest> Manifests()
    {
        var manifests = new List<Manifest>();
        foreach (var file in Directory.EnumerateFiles(KubernetesDir, "*.yaml", SearchOption.AllDirectories))
        {
            foreach (var doc in LoadYaml(file))
            {
                var manifest = new Manifest(file, doc);
                Assert.False(string.IsNullOrEmpty(manifest.Kind), $"{Rel(file)}: a document without kind");
                Assert.True(doc.ContainsKey("apiVersion"), $"{Rel(file)}: {manifest.Kind} without apiVersion");
                manifests.Add(manifest);
            }
        }

        Assert.NotEmpty(manifests);
        return manifests;
    }

    private static IEnumerable<Manifest> Workloads() => Manifests().Where(m => m.Kind is "Deployment" or "StatefulSet");

    private static List<Container> OurContainers()
    {
        var ours = Workloads().SelectMany(w => w.Containers()).Where(c => c.Image == OurImage).ToList();
        Assert.Equal(2, ours.Count);
        return ours;
    }

    /// <summary>The Dockerfile as instructions per stage (continuation lines joined, comments dropped).</summary>
    private sealed class Dockerfile
    {
        public List<List<(string Keyword, string Args)>> Stages { get; } = [];

        public List<string> From { get; } = [];

        public List<(string Keyword, string Args)> Final => Stages[^1];

        public static Dockerfile Load()
        {
            var result = new Dockerfile();
            var logical = new StringBuilder();
            foreach (var raw in File.ReadAllLines(Path.Combine(Root, "Dockerfile")))
            {
                if (raw.TrimStart().StartsWith('#'))
                {
                    continue;
                }

                var line = raw.TrimEnd();
                if (line.EndsWith('\\'))
                {
                    logical.Append(line[..^1]).Append(' ');
                    continue;
                }

                logical.Append(line);
                var text = Regex.Replace(logical.ToString().Trim(), @"\s+", " ");
                logical.Clear();
                if (text.Length == 0)
                {
                    continue;
                }

                var space = text.IndexOf(' ', StringComparison.Ordinal);
                var keyword = text[..space].ToUpperInvariant();
                var args = text[(space + 1)..];
                if (keyword == "FROM")
                {
                    result.Stages.Add([]);
                    result.From.Add(args.Split(' ')[0]);
                }

                result.Stages[^1].Add((keyword, args));
            }

            return result;
        }

        /// <summary>ENV of the final stage, in the <c>KEY=value</c> form.</summary>
        public IEnumerable<(string Key, string Value)> FinalEnv() =>
            Final.Where(i => i.Keyword == "ENV")
                .SelectMany(i => i.Args.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Select(pair => (pair[..pair.IndexOf('=', StringComparison.Ordinal)], pair[(pair.IndexOf('=', StringComparison.Ordinal) + 1)..].Trim('"')));
    }

    /// <summary>The subset of .dockerignore semantics our file uses: <c>**</c>, <c>*</c>, <c>?</c>, a pattern that names a
    /// directory excludes what is below it, <c>!</c> re-includes, the last matching line wins.</summary>
    private sealed class DockerIgnore(List<(Regex Pattern, bool Include)> rules)
    {
        public static DockerIgnore Load(string file)
        {
            var rules = new List<(Regex, bool)>();
            foreach (var raw in File.ReadAllLines(file))
            {
                var line = raw.Trim();
                if (line.Length == 0 || line.StartsWith('#'))
                {
                    continue;
                }

                var include = line.StartsWith('!');
                var pattern = line.TrimStart('!').Trim('/');
                var regex = "^" + Regex.Escape(pattern).Replace(@"\*\*/", "(.*/)?", StringComparison.Ordinal).Replace(@"\*\*", ".*", StringComparison.Ordinal)
                    .Replace(@"\*", "[^/]*", StringComparison.Ordinal).Replace(@"\?", "[^/]", StringComparison.Ordinal) + "(/.*)?$";
                rules.Add((new Regex(regex), include));
            }

            return new DockerIgnore(rules);
        }

        public bool IsExcluded(string path)
        {
            var excluded = false;
            foreach (var (pattern, include) in rules)
            {
                if (pattern.IsMatch(path))
                {
                    excluded = !include;
                }
            }

            return excluded;
        }
    }
}
