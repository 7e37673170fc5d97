using SharpFuzz;

namespace Gateway.Fuzz;

/// <summary>Command-line dispatch: afl-fuzz mode, replay mode, seed generation.</summary>
internal static class Cli
{
    /// <summary>AFL++ never writes a test case above 1 MB (its MAX_FILE), so one buffer of that size serves every run.</summary>
    private const int MaxInput = 1024 * 1024;

    private static readonly Dictionary<string, Action<ReadOnlySpan<byte>>> Targets = new(StringComparer.Ordinal)
    {
        [FrameHeaderTarget.Name] = FrameHeaderTarget.Run,
        [HandshakeTarget.Name] = HandshakeTarget.Run,
        [ClientFrameTarget.Name] = ClientFrameTarget.Run,
        [ServerFrameTarget.Name] = ServerFrameTarget.Run,
        [ReceivePathTarget.Name] = ReceivePathTarget.Run,
    };

    public static int Run(string[] args)
    {
        if (args.Length == 1 && args[0] == "list")
        {
            foreach (var name in Targets.Keys)
            {
                Console.WriteLine(name);
            }

            return 0;
        }

        if (args.Length == 3 && args[0] == "seed")
        {
            return Seeds.Write(args[1], args[2]);
        }

        if (args.Length >= 1 && Targets.TryGetValue(args[0], out var target))
        {
            if (args.Length == 1)
            {
                RunUnderAfl(target);
                return 0;
            }

            if (args.Length >= 3 && args[1] == "--replay")
            {
                return Replay(args[0], target, args[2..]);
            }
        }

        Console.Error.WriteLine("usage: Gateway.Fuzz <target> [--replay <file|dir>...] | seed <vectors-dir> <seeds-dir> | list");
        Console.Error.WriteLine("targets: " + string.Join(", ", Targets.Keys));
        return 2;
    }

    private static void RunUnderAfl(Action<ReadOnlySpan<byte>> target)
    {
        // One buffer for the whole run: SharpFuzz calls the action in a loop (persistent mode), one input per call.
        var buffer = new byte[MaxInput];
        Fuzzer.Run(stream =>
        {
            int length = 0;
            int read;
            while (length < buffer.Length && (read = stream.Read(buffer, length, buffer.Length - length)) > 0)
            {
                length += read;
            }

            target(buffer.AsSpan(0, length));
        });
    }

    /// <summary>AFL's coverage map: 64 KiB, the size SharpFuzz's instrumentation indexes into.</summary>
    private const int MapSize = 64 * 1024;

    private static unsafe int Replay(string name, Action<ReadOnlySpan<byte>> target, string[] paths)
    {
        // Instrumented assemblies (fuzz/out/bin after run.sh) write every branch into the shared map that afl-fuzz
        // normally provides; without AFL it is null. A private map makes the same binaries replayable, and its filled
        // cells tell how many edges the inputs reached. Uninstrumented builds never touch it.
        if (SharpFuzz.Common.Trace.SharedMem == null)
        {
            SharpFuzz.Common.Trace.SharedMem = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed(MapSize);
        }

        int passed = 0;
        int failed = 0;
        foreach (var file in FuzzInputs.Expand(paths))
        {
            var data = File.ReadAllBytes(file);
            try
            {
                target(data);
                passed++;
            }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine($"FAIL {name} {file} ({data.Length} bytes): {e}");
            }
        }

        int edges = 0;
        for (int i = 0; i < MapSize; i++)
        {
            edges += SharpFuzz.Common.Trace.SharedMem[i] != 0 ? 1 : 0;
        }

        string coverage = edges > 0 ? $" ({edges} coverage-map cells hit: instrumented build)" : string.Empty;
        Console.WriteLine($"{name}: {passed} passed, {failed} failed{coverage}");
        return failed == 0 && passed > 0 ? 0 : 1;
    }
}
