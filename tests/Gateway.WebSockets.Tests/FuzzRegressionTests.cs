using Gateway.Fuzz;
using Xunit;

namespace Gateway.WebSockets.Tests;

/// <summary>
/// Replays every committed fuzz input of the WebSocket targets (<c>fuzz/seeds/&lt;target&gt;</c> and
/// <c>fuzz/regressions/&lt;target&gt;</c>) through the same contract checks the afl-fuzz harness runs, so an input that
/// once broke a parser keeps being checked by the normal suite. A violation throws <see cref="ContractViolationException"/>
/// (or whatever the parser threw) and fails the test named after the file.
/// </summary>
public class FuzzRegressionTests
{
    private static readonly string FuzzRoot = FuzzInputs.FindFuzzRoot(AppContext.BaseDirectory);

    public static TheoryData<string> FrameHeaderInputs => Inputs(FrameHeaderTarget.Name);

    public static TheoryData<string> HandshakeInputs => Inputs(HandshakeTarget.Name);

    public static TheoryData<string> ReceivePathInputs => Inputs(ReceivePathTarget.Name);

    [Theory]
    [MemberData(nameof(FrameHeaderInputs))]
    public void Frame_header_input_keeps_the_contract(string input) => FrameHeaderTarget.Run(Read(input));

    [Theory]
    [MemberData(nameof(HandshakeInputs))]
    public void Handshake_input_keeps_the_contract(string input) => HandshakeTarget.Run(Read(input));

    [Theory]
    [MemberData(nameof(ReceivePathInputs))]
    public void Receive_path_input_keeps_the_contract(string input) => ReceivePathTarget.Run(Read(input));

    [Theory]
    [InlineData("frame-header")]
    [InlineData("handshake")]
    [InlineData("receive-path")]
    public void Every_target_has_committed_inputs(string target) =>
        Assert.True(FuzzInputs.Committed(FuzzRoot, target).Count >= 10, $"fuzz/seeds/{target} lost its seeds");

    /// <summary>One case per committed input, named after its file relative to fuzz/.</summary>
    private static TheoryData<string> Inputs(string target) => new(FuzzInputs.CommittedRelative(FuzzRoot, target));

    private static byte[] Read(string input) => File.ReadAllBytes(Path.Combine(FuzzRoot, input));
}
