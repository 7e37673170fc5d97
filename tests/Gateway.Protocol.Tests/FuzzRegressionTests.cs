using Gateway.Fuzz;

namespace Gateway.Protocol.Tests;

/// <summary>
/// Replays every committed fuzz input of the MessagePack targets (<c>fuzz/seeds/&lt;target&gt;</c> and
/// <c>fuzz/regressions/&lt;target&gt;</c>) through the same contract checks the afl-fuzz harness runs, so an input that
/// once broke a reader keeps being checked by the normal suite. A violation throws <see cref="ContractViolationException"/>
/// (or whatever the reader threw) and fails the test named after the file.
/// </summary>
public class FuzzRegressionTests
{
    private static readonly string FuzzRoot = FuzzInputs.FindFuzzRoot(AppContext.BaseDirectory);

    public static TheoryData<string> ClientFrameInputs => Inputs(ClientFrameTarget.Name);

    public static TheoryData<string> ServerFrameInputs => Inputs(ServerFrameTarget.Name);

    [Theory]
    [MemberData(nameof(ClientFrameInputs))]
    public void Client_frame_input_keeps_the_contract(string input) => ClientFrameTarget.Run(Read(input));

    [Theory]
    [MemberData(nameof(ServerFrameInputs))]
    public void Server_frame_input_keeps_the_contract(string input) => ServerFrameTarget.Run(Read(input));

    [Theory]
    [InlineData("client-frame")]
    [InlineData("server-frame")]
    public void Every_target_has_committed_inputs(string target) =>
        Assert.True(FuzzInputs.Committed(FuzzRoot, target).Count >= 10, $"fuzz/seeds/{target} lost its seeds");

    /// <summary>One case per committed input, named after its file relative to fuzz/.</summary>
    private static TheoryData<string> Inputs(string target) => new(FuzzInputs.CommittedRelative(FuzzRoot, target));

    private static byte[] Read(string input) => File.ReadAllBytes(Path.Combine(FuzzRoot, input));
}
