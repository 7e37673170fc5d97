using System.Text;

namespace Gateway.Domain.Tests;

public sealed class ValidationTests
{
    private const long Now = 1_700_000_000_000;

    [Theory]
    [InlineData("a", true)]
    [InlineData("chat_01-X", true)]
    [InlineData("", false)]
    [InlineData("has.dot", false)]
    [InlineData("has space", false)]
    [InlineData("star*", false)]
    [InlineData("gt>", false)]
    [InlineData("caf\u00e9", false)]
    public void Ids_allow_only_letters_digits_underscore_and_dash(string id, bool valid)
    {
        Assert.Equal(valid, Validation.IsValidId(id));
        Assert.Equal(valid, Validation.IsValidId(Encoding.UTF8.GetBytes(id)));
    }

    [Fact]
    public void Ids_are_at_most_64_bytes()
    {
        Assert.True(Validation.IsValidId(new string('a', 64)));
        Assert.False(Validation.IsValidId(new string('a', 65)));
        Assert.True(Validation.IsValidId(Encoding.ASCII.GetBytes(new string('a', 64))));
        Assert.False(Validation.IsValidId(Encoding.ASCII.GetBytes(new string('a', 65))));
        Assert.False(Validation.IsValidId((string?)null));
    }

    [Theory]
    [InlineData("alice@example.com", true)]
    [InlineData("!~", true)]
    [InlineData("auth0|123", true)]
    [InlineData("a%2Fb", true)]
    [InlineData("...", true)]
    [InlineData(".a", true)]
    [InlineData("-_.~", true)]
    [InlineData("a b", false)]
    [InlineData(" ", false)]
    [InlineData("tab\t", false)]
    [InlineData("del\u007f", false)]
    [InlineData("\u00fcser", false)]
    [InlineData("", false)]
    [InlineData("a/b", false)]
    [InlineData("/", false)]
    [InlineData(".", false)]
    [InlineData("..", false)]
    public void User_ids_are_printable_ascii_without_space_or_slash_and_not_a_dot_segment(string id, bool valid)
    {
        Assert.Equal(valid, Validation.IsValidUserId(id));
        Assert.Equal(valid, Validation.IsValidUserId(Encoding.UTF8.GetBytes(id)));
    }

    [Theory]
    [InlineData("alice@example.com", true)]
    [InlineData("a/b", true)]
    [InlineData("..", true)]
    [InlineData("!~", true)]
    [InlineData("a b", false)]
    [InlineData("tab\t", false)]
    [InlineData("del\u007f", false)]
    [InlineData("\u00fcser", false)]
    [InlineData("", false)]
    public void Client_message_ids_are_printable_ascii_without_space(string id, bool valid)
    {
        Assert.Equal(valid, Validation.IsValidClientMessageId(id));
        Assert.Equal(valid, Validation.IsValidClientMessageId(Encoding.UTF8.GetBytes(id)));
    }

    [Theory]
    [InlineData("text/plain; charset=utf-8", true)]
    [InlineData(" ", true)]
    [InlineData("application/vnd.x+json", true)]
    [InlineData("tab\t", false)]
    [InlineData("del\u007f", false)]
    [InlineData("\u00fcser", false)]
    [InlineData("", false)]
    public void Content_types_are_printable_ascii_with_space(string value, bool valid)
    {
        Assert.Equal(valid, Validation.IsValidContentType(value));
        Assert.Equal(valid, Validation.IsValidContentType(Encoding.UTF8.GetBytes(value)));
    }

    [Fact]
    public void Length_limits_differ_per_field()
    {
        Assert.True(Validation.IsValidUserId(new string('u', 128)));
        Assert.False(Validation.IsValidUserId(new string('u', 129)));
        Assert.True(Validation.IsValidClientMessageId(new string('c', 64)));
        Assert.False(Validation.IsValidClientMessageId(new string('c', 65)));
        Assert.False(Validation.IsValidClientMessageId(Encoding.ASCII.GetBytes(new string('c', 65))));
        Assert.True(Validation.IsValidContentType(new string('t', 64)));
        Assert.False(Validation.IsValidContentType(new string('t', 65)));
    }

    [Fact]
    public void ExpiresAt_must_be_in_the_future_and_within_the_window()
    {
        const long Window = Validation.DefaultMaxExpiresInMs;
        Assert.True(Validation.IsValidExpiresAt(null, Now, Window));
        Assert.True(Validation.IsValidExpiresAt(Now + 1, Now, Window));
        Assert.True(Validation.IsValidExpiresAt(Now + Window, Now, Window));
        Assert.False(Validation.IsValidExpiresAt(Now, Now, Window));
        Assert.False(Validation.IsValidExpiresAt(Now - 1, Now, Window));
        Assert.False(Validation.IsValidExpiresAt(Now + Window + 1, Now, Window));
        Assert.Equal(2_592_000_000, Window); // 30 days
    }

    public static TheoryData<SendMessage, string> BadSends()
    {
        var ok = Good();
        return new TheoryData<SendMessage, string>
        {
            { ok with { TenantId = "t.1" }, "tenantId" },
            { ok with { ChatId = "" }, "chatId" },
            { ok with { SenderId = "a b" }, "senderId" },
            { ok with { ClientMessageId = new string('x', 65) }, "clientMessageId" },
            { ok with { ContentType = "" }, "contentType" },
            { ok with { Content = new byte[101] }, "content" },
            { ok with { ExpiresAt = Now }, "expiresAt" },
        };
    }

    [Theory]
    [MemberData(nameof(BadSends))]
    public void TryValidateSend_names_the_failing_field(SendMessage command, string field)
    {
        Assert.False(Validation.TryValidateSend(command, Now, maxContentBytes: 100, Validation.DefaultMaxExpiresInMs, out var error));
        Assert.StartsWith(field + " ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TryValidateSend_accepts_a_good_send_and_content_at_the_limit()
    {
        Assert.True(Validation.TryValidateSend(Good() with { Content = new byte[100] }, Now, 100, Validation.DefaultMaxExpiresInMs, out var error));
        Assert.Null(error);
        Assert.True(Validation.TryValidateSend(Good() with { Content = ReadOnlyMemory<byte>.Empty }, Now, 100, Validation.DefaultMaxExpiresInMs, out _));
    }

    private static SendMessage Good() => new("t1", "c1", "alice", "cm-1", "text/plain", new byte[] { 1 }, Now + 1000);
}
