using Xunit;
using C = Gateway.TestUtilities.RawWebSocketClient;

namespace Gateway.WebSockets.Tests;

/// <summary>
/// Regression for a fuzz finding (receive-path target, see fuzz/regressions/receive-path/): a continuation frame whose
/// 64-bit length is close to 2^63 made "bytes already reassembled + announced length" wrap negative, so the size check
/// passed, the frame-length sum wrapped too, and slicing the payload threw inside the receive loop. The connection was
/// then aborted without a close frame instead of failing with 1009 as the header alone requires.
/// </summary>
public class FragmentLengthOverflowTests(SharedServerFixture fixture) : IClassFixture<SharedServerFixture>
{
    [Theory]
    [InlineData(1, long.MaxValue)]           // 1 + (2^63 - 1) = 2^63: the smallest wrap
    [InlineData(1000, long.MaxValue - 998)]  // 1000 + (2^63 - 999) = 2^63 + 1
    [InlineData(1, SharedServerFixture.MaxMessageBytes)] // no wrap, one byte over: the ordinary 1009
    public async Task Continuation_that_would_pass_the_limit_closes_with_1009(int firstFragment, long declaredLength)
    {
        await using var client = await C.ConnectAndUpgradeAsync(fixture.Server.EndPoint);
        await client.SendRawAsync(C.BuildFrame(C.OpBinary, new byte[firstFragment], fin: false));
        await client.SendRawAsync(C.BuildFrame(C.OpContinuation, [], fin: true, lengthBytes: 8, declaredLength: (ulong)declaredLength));

        var close = await client.ReadCloseFrameAsync();
        Assert.Equal((ushort)1009, close.CloseCode);
        Assert.True(await client.ReadUntilEofAsync(), "the server should close the TCP connection after failing it");
    }
}
