using System.Security.Cryptography;
using Gateway.Server.Config;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Tests;

/// <summary>Configuration that fails clearly: each bad setting stops start-up with one line that names it, its value and
/// the rule (exit code 1, no stack trace); unknown keys name the closest setting; --help and --version answer and exit.</summary>
public sealed class ConfigTests
{
    private static readonly string[] Loopback = ["--Gateway:WebSocketEndpoint=127.0.0.1:0", "--Gateway:HttpEndpoint=127.0.0.1:0"];

    /// <summary>The issue's examples, through the real server process: the exit code and the one line.</summary>
    [Theory]
    [InlineData("--Gateway:SendsPerSecond=-1", "Gateway:SendsPerSecond=-1", "greater than 0")]
    [InlineData("--Gateway:Auth:PublicKeyFiles:0=/nonexistent/key.pem", "Gateway:Auth:PublicKeyFiles:0=/nonexistent/key.pem", "does not exist")]
    [InlineData("--Gateway:Auth:SigningKey=abc", "Gateway:Auth:SigningKey=(secret, 3 characters)", "at least 32")]
    [InlineData("--Gateway:HeartbeatSeconds=-3", "Gateway:HeartbeatSeconds=-3", ">= 0")]
    [InlineData("--Gateway:MaxOutbondFrames=5", "Gateway:MaxOutbondFrames", "did you mean Gateway:MaxOutboundFrames?")]
    [InlineData("--gateway:maxoutbondframes=5", "gateway:maxoutbondframes", "did you mean Gateway:MaxOutboundFrames?")]
    [InlineData("--Gateway:MaxOutboundFrames=abc", "Gateway:MaxOutboundFrames=abc", "whole number")]
    [InlineData("--Auth:SigningKey=abc", "Auth:SigningKey", "did you mean Gateway:Auth:SigningKey?")]
    [InlineData("--Gateway:Tls:CertPath=x.pem", "Gateway:Tls:CertPath", "did you mean Gateway:Tls:CertificatePath?")]
    [InlineData("--Nats:Urll=nats://x:4222", "Nats:Urll", "did you mean Nats:Url?")]
    [InlineData("--Gateway:PreferInlineScheduling=maybe", "Gateway:PreferInlineScheduling=maybe", "true or false")]
    [InlineData("--Gateway:WebSocketEndpoint=0.0.0.0:0", "Gateway:Auth:SigningKey", "Gateway:Auth:JwksUrl")]
    public async Task A_bad_setting_is_one_line_naming_it_and_exit_code_1(string arg, string named, string rule)
    {
        var dir = TestGateway.NewTempDirectory();
        try
        {
            var (exitCode, stdout, stderr) = await GatewayProcess.RunToExitAsync(TimeSpan.FromSeconds(60),
                [.. Loopback, $"--Gateway:DataDirectory={dir}", "--Gateway:Auth:AdminKey=test-admin-key-0123456789", arg]);
            Assert.Equal(1, exitCode);
            Assert.Equal("", stdout);
            var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            Assert.StartsWith("Gateway.Server: ", line, StringComparison.Ordinal);
            Assert.Contains(named, line, StringComparison.OrdinalIgnoreCase);
            Assert.Contains(rule, line, StringComparison.Ordinal);
            Assert.DoesNotContain("=abc", line.Replace("MaxOutboundFrames=abc", "", StringComparison.Ordinal), StringComparison.Ordinal);
            Assert.False(Directory.Exists(Path.Combine(dir, "rocksdb")), "the server must not have started");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task An_unreachable_NATS_server_is_one_line_naming_the_setting_and_exit_code_1()
    {
        var (exitCode, stdout, stderr) = await GatewayProcess.RunToExitAsync(TimeSpan.FromSeconds(60), [.. Loopback, "--role", "gateway",
            "--Nats:Url=nats://127.0.0.1:1", "--Gateway:Auth:SigningKey=" + Convert.ToBase64String(new byte[32]), "--Gateway:Auth:AdminKey=admin-key-for-tests",
            "--Logging:LogLevel:Default=None"]);
        Assert.Equal(1, exitCode);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains("nats://127.0.0.1:1 (Nats:Url)", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_prints_usage_and_every_setting_with_its_default_and_exits_0_without_starting()
    {
        var dir = Path.Combine(Path.GetTempPath(), "gw-help-" + Guid.NewGuid().ToString("N"));
        var (exitCode, stdout, stderr) = await GatewayProcess.RunToExitAsync(TimeSpan.FromSeconds(60), "--help", $"--Gateway:DataDirectory={dir}");
        Assert.Equal(0, exitCode);
        Assert.Equal("", stderr);
        Assert.Contains("Usage:", stdout, StringComparison.Ordinal);
        foreach (var setting in SettingsSchema.All())
        {
            Assert.Contains(setting.Path, stdout, StringComparison.Ordinal);
        }

        var row = Assert.Single(stdout.Split('\n'), l => l.StartsWith("Gateway:MaxOutboundFrames ", StringComparison.Ordinal));
        Assert.Contains(" 1024 ", row, StringComparison.Ordinal);
        Assert.Contains("4002", row, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir), "--help must not start the server");
    }

    [Fact]
    public async Task Version_prints_the_version_and_exits_0_without_starting()
    {
        var dir = Path.Combine(Path.GetTempPath(), "gw-version-" + Guid.NewGuid().ToString("N"));
        var (exitCode, stdout, _) = await GatewayProcess.RunToExitAsync(TimeSpan.FromSeconds(60), "--version", $"--Gateway:DataDirectory={dir}");
        Assert.Equal(0, exitCode);
        // The server binary's own informational version (the test's copy of the assembly may come from another build).
        var version = System.Diagnostics.FileVersionInfo.GetVersionInfo(GatewayProcess.ServerDll()).ProductVersion;
        Assert.Equal($"chatgw {version}", stdout.Trim());
        Assert.Matches(@"^\d+\.\d+\.\d+", version);
        Assert.False(Directory.Exists(dir));
    }

    /// <summary>One case per rule, through the Build path (the same checks, without a process per case).</summary>
    [Theory]
    [InlineData("Gateway:WebSocketEndpoint=localhost:80", "ip:port")]
    [InlineData("Gateway:HttpEndpoint=api.local:8081", "ip:port")]
    [InlineData("Gateway:Path=v1/ws", "start with '/'")]
    [InlineData("Gateway:DataDirectory= ", "directory")]
    [InlineData("Gateway:MaxContentBytes=0", "greater than 0")]
    [InlineData("Gateway:MaxMessageBytes=33000", "1024 bytes")]
    [InlineData("Gateway:MaxSubscriptionsPerConnection=0", "greater than 0")]
    [InlineData("Gateway:MaxChatsPerSubscribe=-1", "greater than 0")]
    [InlineData("Gateway:MaxInFlightSends=0", "greater than 0")]
    [InlineData("Gateway:MaxOutboundFrames=0", "greater than 0")]
    [InlineData("Gateway:MaxOutboundBytes=0", "greater than 0")]
    [InlineData("Gateway:CatchUpPageSize=0", "greater than 0")]
    [InlineData("Gateway:HeartbeatSeconds=-1", ">= 0")]
    [InlineData("Gateway:IdleTimeoutSeconds=-1", ">= 0")]
    [InlineData("Gateway:IdleTimeoutSeconds=20", "longer than Gateway:HeartbeatSeconds")]
    [InlineData("Gateway:HandshakeTimeoutSeconds=0", "greater than 0")]
    [InlineData("Gateway:AllowedOrigins:0=app.example", "origin")]
    [InlineData("Gateway:AllowedOrigins=https://app.example", "is a list")]
    [InlineData("Gateway:SendsPerSecond=0", "greater than 0")]
    [InlineData("Gateway:SendBurst=0", "at least 1")]
    [InlineData("Gateway:SubscribesPerSecond=-2", "greater than 0")]
    [InlineData("Gateway:SubscribeBurst=0", "at least 1")]
    [InlineData("Gateway:HistoryPerSecond=NaN", "greater than 0")]
    [InlineData("Gateway:HistoryBurst=0", "at least 1")]
    [InlineData("Gateway:TypingPerSecond=0", "greater than 0")]
    [InlineData("Gateway:TypingBurst=0", "at least 1")]
    [InlineData("Gateway:TokenRefreshLeadSeconds=-1", ">= 0")]
    [InlineData("Gateway:TokenGraceSeconds=-1", ">= 0")]
    [InlineData("Gateway:MaxExpirySeconds=0", "greater than 0")]
    [InlineData("Gateway:SlowConsumerLogSeconds=-1", ">= 0")]
    [InlineData("Gateway:MaxConnectionsPerIp=-1", ">= 0")]
    [InlineData("Gateway:MaxConnectionsPerUser=-1", ">= 0")]
    [InlineData("Gateway:HandshakesPerSecondPerIp=-1", ">= 0")]
    [InlineData("Gateway:HandshakeBurstPerIp=0", "at least 1")]
    [InlineData("Gateway:DrainGraceSeconds=-1", ">= 0")]
    [InlineData("Gateway:DrainJitterSeconds=-1", ">= 0")]
    [InlineData("Gateway:Tls:CertificatePath=/nonexistent/cert.pem", "does not exist")]
    [InlineData("Gateway:Tls:KeyPath=/nonexistent/key.pem", "needs Gateway:Tls:CertificatePath")]
    [InlineData("Gateway:Tls:ReloadCheckSeconds=0", "at least 1")]
    [InlineData("Gateway:Tls=on", "is a section")]
    [InlineData("Gateway:Auth:SigningKeyFile=/nonexistent/key", "does not exist")]
    [InlineData("Gateway:Auth:AdminKeyFile=/nonexistent/admin", "holds the admin key")]
    [InlineData("Gateway:Auth:JwksFile=/nonexistent/jwks.json", "does not exist")]
    [InlineData("Gateway:Auth:JwksUrl=ftp://idp.example/jwks", "https://")]
    [InlineData("Gateway:Auth:JwksUrl=http://idp.example/jwks", "RequireHttpsMetadata=false")]
    [InlineData("Gateway:Auth:Authority=not a url", "https://")]
    [InlineData("Gateway:Auth:KeysRefreshSeconds=0", "at least 1")]
    [InlineData("Gateway:Auth:KeysMinRefreshSeconds=0", "at least 1")]
    [InlineData("Gateway:Auth:ClockSkewSeconds=-1", ">= 0")]
    [InlineData("Gateway:Auth:TenantClaim= ", "claim")]
    [InlineData("Gateway:Role=pod", "all, gateway, writer")]
    public void Every_rule_names_the_setting(string setting, string rule)
    {
        var e = Assert.Throws<OptionsValidationException>(() => GatewayHost.Build([.. Loopback, "--Gateway:DataDirectory=unused", $"--{setting}"]));
        var name = setting.Split('=')[0];
        var failure = Assert.Single(e.Failures);
        Assert.Contains(name, failure, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(rule, failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Nats_rules_apply_in_the_distributed_roles()
    {
        string[] common = ["--role", "writer", "--Nats:Url=nats://127.0.0.1:1", "--Gateway:Auth:SigningKey=" + Convert.ToBase64String(new byte[32]), "--Gateway:Auth:AdminKey=admin-key-for-tests"];
        foreach (var (setting, rule) in new[]
        {
            ("Nats:Url=http://x", "nats://"),
            ("Nats:Partitions=0", "at least 1"),
            ("Nats:PartitionsPerStream=5", "divide"),
            ("Nats:Replicas=7", "1..5"),
            ("Nats:StreamMaxAgeHours=-1", ">= 0"),
            ("Nats:DuplicateWindowSeconds=0", "at least 1"),
            ("Nats:RequestTimeoutMs=5", "at least 10"),
            ("Nats:CommandDeadlineMs=100", "at least Nats:RequestTimeoutMs"),
            ("Nats:ProjectionMaxLag=0", "at least 1"),
            ("Nats:ProjectionStallMs=10", "at least 100"),
            ("Nats:ProjectionCheckMs=5", "10..60000"),
            ("Nats:TlsCaFile=/nonexistent/ca.pem", "does not exist"),
        })
        {
            var e = Assert.Throws<OptionsValidationException>(() => GatewayHost.Build([.. common, $"--{setting}"]));
            var failure = Assert.Single(e.Failures);
            Assert.Contains(setting.Split('=')[0], failure, StringComparison.Ordinal);
            Assert.Contains(rule, failure, StringComparison.Ordinal);
        }

        // The embedded role does not use them.
        Assert.Null(Record.Exception(() => GatewayHost.Build([.. Loopback, $"--Gateway:DataDirectory={TestGateway.NewTempDirectory()}", "--Nats:Replicas=7"]).DisposeAsync().AsTask().GetAwaiter().GetResult()));
    }

    [Fact]
    public void Store_rules_name_their_setting_and_the_shared_store_serves_writers_only()
    {
        string[] writer = ["--role", "writer", "--Nats:Url=nats://127.0.0.1:1", "--Gateway:Auth:SigningKey=" + Convert.ToBase64String(new byte[32]), "--Gateway:Auth:AdminKey=admin-key-for-tests"];
        string[] scylla = [.. writer, "--Store:Kind=scylla", "--Store:ContactPoints=10.0.0.5,10.0.0.6:19042"];
        foreach (var (args, setting, rule) in new[]
        {
            ((string[])[.. writer, "--Store:Kind=cassandra"], "Store:Kind", "rocksdb or scylla"),
            ([.. writer, "--Store:Kind=scylla"], "Store:ContactPoints", "at least one node"),
            ([.. writer, "--Store:Kind=scylla", "--Store:ContactPoints=a b"], "Store:ContactPoints", "host or host:port"),
            ([.. scylla, "--Store:Keyspace=1chat"], "Store:Keyspace", "letter"),
            ([.. scylla, "--Store:Replication=SimpleStrategy"], "Store:Replication", "CQL map"),
            ([.. scylla, "--Store:BucketSize=0"], "Store:BucketSize", "1..1000000"),
            ([.. scylla, "--Store:IdempotencyRetentionHours=1"], "Store:IdempotencyRetentionHours", "at least 24 h"),
            ([.. scylla, "--Store:ProjectionLeaseMs=10"], "Store:ProjectionLeaseMs", "1000..600000"),
            ([.. scylla, "--Store:Username=app"], "Store:Password", "needs a password"),
            ([.. scylla, "--Store:TlsCaFile=/nonexistent/ca.pem"], "Store:TlsCaFile", "does not exist"),
            ([.. Loopback, "--Gateway:DataDirectory=unused", "--Store:Kind=scylla", "--Store:ContactPoints=10.0.0.5"], "Store:Kind", "writer role"),
        })
        {
            var e = Assert.Throws<OptionsValidationException>(() => GatewayHost.Build(args));
            var failure = Assert.Single(e.Failures);
            Assert.Contains(setting, failure, StringComparison.Ordinal);
            Assert.Contains(rule, failure, StringComparison.Ordinal);
        }

        // Without Kind=scylla the Scylla settings are not checked (and RocksDB stays the default).
        Assert.Null(Record.Exception(() => GatewayHost.Build([.. Loopback, $"--Gateway:DataDirectory={TestGateway.NewTempDirectory()}", "--Store:BucketSize=0"]).DisposeAsync().AsTask().GetAwaiter().GetResult()));
    }

    [Fact]
    public async Task Schema_print_shows_a_versioned_script_and_apply_without_a_cluster_fails_in_one_line()
    {
        var (exitCode, stdout, stderr) = await GatewayProcess.RunToExitAsync(TimeSpan.FromSeconds(60), "schema", "print", "--Store:Keyspace=chat_prod",
            "--Store:Replication={'class': 'NetworkTopologyStrategy', 'dc1': 3}");
        Assert.Equal(0, exitCode);
        Assert.Equal("", stderr);
        Assert.StartsWith("CREATE KEYSPACE IF NOT EXISTS chat_prod WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}", stdout, StringComparison.Ordinal);
        Assert.Contains("CREATE TABLE IF NOT EXISTS chat_prod.messages (", stdout, StringComparison.Ordinal);
        Assert.Contains("PRIMARY KEY ((tenant_id, chat_id, bucket), seq)", stdout, StringComparison.Ordinal);
        Assert.Contains("INSERT INTO chat_prod.schema_info (name, version, bucket_size, applied_at) VALUES ('chatgw', 1, 1000,", stdout, StringComparison.Ordinal);

        (exitCode, stdout, stderr) = await GatewayProcess.RunToExitAsync(TimeSpan.FromSeconds(60), "schema", "apply", "--Store:ContactPoints=127.0.0.1:1");
        Assert.Equal(1, exitCode);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains("schema apply failed", line, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1:1", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--Gateway:AllowedOrigins:0=capacitor://localhost")]
    [InlineData("--Gateway:AllowedOrigins:0=null")]
    [InlineData("--Gateway:AllowedOrigins:0=https://app.example.com:8443")]
    public void Origins_of_any_scheme_and_the_null_origin_are_valid(string setting)
    {
        // App shells (Capacitor, Ionic, Electron) send their own schemes; sandboxed pages send "null".
        Assert.Null(Record.Exception(() => GatewayHost.Build([.. Loopback, $"--Gateway:DataDirectory={TestGateway.NewTempDirectory()}", setting]).DisposeAsync().AsTask().GetAwaiter().GetResult()));
    }

    [Fact]
    public void A_NATS_url_without_a_scheme_is_valid_as_NATS_reads_it()
    {
        string[] writer = ["--role", "writer", $"--Gateway:DataDirectory={TestGateway.NewTempDirectory()}", "--Gateway:Auth:SigningKey=" + Convert.ToBase64String(new byte[32]), "--Gateway:Auth:AdminKey=admin-key-for-tests"];
        Assert.Null(Record.Exception(() => GatewayHost.Build([.. writer, "--Nats:Url=127.0.0.1:4222"]).DisposeAsync().AsTask().GetAwaiter().GetResult()));
    }

    [Fact]
    public void Several_bad_settings_are_all_named_one_per_failure()
    {
        var e = Assert.Throws<OptionsValidationException>(() => GatewayHost.Build([.. Loopback, "--Gateway:SendBurst=0", "--Gateway:TypingBurst=0"]));
        Assert.Equal(2, e.Failures.Count());
    }

    [Fact]
    public void Shipped_appsettings_json_holds_the_same_logging_defaults_as_the_code()
    {
        var file = Path.Combine(Path.GetDirectoryName(GatewayProcess.ServerDll())!, "appsettings.json");
        var shipped = new ConfigurationBuilder().AddJsonFile(file).Build();
        foreach (var (key, value) in GatewayHost.LoggingDefaults)
        {
            Assert.Equal(value, shipped[key], ignoreCase: true);
        }

        Assert.Equal(GatewayHost.LoggingDefaults.Count, shipped.AsEnumerable().Count(kv => kv.Value is not null));
    }

    [Fact]
    public void Secrets_are_never_printed()
    {
        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(8));
        var e = Assert.Throws<OptionsValidationException>(() => GatewayHost.Build([.. Loopback, $"--Gateway:Auth:SigningKey={secret}", "--Gateway:Tls:Password=hunter2", "--Gateway:Tls:KeyPath=/x"]));
        Assert.DoesNotContain(secret, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", e.Message, StringComparison.Ordinal);
    }
}
