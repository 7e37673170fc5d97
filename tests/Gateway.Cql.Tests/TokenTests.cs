using System.Text;
using Gateway.Cql.Protocol;
using static Gateway.Cql.Tests.RequestFrameTests;

namespace Gateway.Cql.Tests;

/// <summary>Murmur3 tokens and Scylla shards.</summary>
public sealed class TokenTests
{
    [Theory]
    // Cassandra's token of the UTF-8 key "test" (documented widely, e.g. in the DataStax driver tests).
    [InlineData("74657374", -6017608668500074083L)]
    // The rest from the Python driver's cassandra.murmur3 (pure Python, which keeps Cassandra's signed tail bytes).
    [InlineData("", 0L)]
    [InlineData("61", -8839064797231613815L)]
    [InlineData("68656c6c6f20776f726c64", 5998619086395760910L)]
    [InlineData("0000000000000001", 6292367497774912474L)]
    [InlineData("808182838485868788898a8b8c8d8e", 63099782945186636L)]
    [InlineData("ffffffffffffffffffffffffffffffffff", -4128212798341382003L)]
    [InlineData("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20", 9025539228862924306L)]
    [InlineData("e282ac", 8619152265340498936L)]
    public void Murmur3_token_matches_cassandra(string keyHex, long expected)
    {
        Assert.Equal(expected, Murmur3.Token(Convert.FromHexString(keyHex)));
    }

    [Fact]
    public void Murmur3_of_a_composite_key_hashes_the_composite_serialization()
    {
        // (bigint 42, text "text"): [short 8][8 bytes][0][short 4]["text"][0], token from the Python driver.
        Assert.Equal(-6058916577685894892L, Murmur3.Token(Hex("0008 000000000000002A 00 0004 74657874 00")));
        Assert.Equal(-6017608668500074083L, Murmur3.Token(Encoding.UTF8.GetBytes("test")));
    }

    [Theory]
    [InlineData(long.MinValue, 8, 12, 0)]
    [InlineData(long.MaxValue, 8, 0, 7)]
    [InlineData(0L, 8, 0, 4)]
    [InlineData(-1L, 8, 0, 3)]
    [InlineData(0L, 8, 12, 0)]
    [InlineData(-6017608668500074083L, 4, 0, 0)]
    [InlineData(-6017608668500074083L, 16, 12, 13)]
    public void Scylla_shard_of_a_token_is_biased_token_round_robin(long token, int shards, int ignoreMsb, int expected)
    {
        Assert.Equal(expected, ScyllaSharding.ShardOf(token, shards, ignoreMsb));
    }

    [Fact]
    public void Shards_spread_evenly_over_random_tokens()
    {
        var counts = new int[7];
        var random = new Random(1);
        for (var i = 0; i < 70_000; i++)
        {
            counts[ScyllaSharding.ShardOf(random.NextInt64(long.MinValue, long.MaxValue), 7, 12)]++;
        }

        Assert.All(counts, c => Assert.InRange(c, 9_000, 11_000));
    }
}
