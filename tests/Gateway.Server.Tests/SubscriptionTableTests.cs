using Gateway.Server.Fanout;
using Gateway.Server.Sessions;

namespace Gateway.Server.Tests;

/// <summary>A session's subscription table: one field for the first subscription, a dictionary only from the second.</summary>
public sealed class SubscriptionTableTests
{
    // The table only reads ChatId; the subscriptions are never run here, so they need no session.
    private static ChatSubscription Sub(string chatId) => new(null!, "t1", chatId, 0);

    [Fact]
    public void One_subscription_needs_no_dictionary_two_do_and_going_back_to_one_drops_it()
    {
        var table = new SubscriptionTable();
        Assert.Equal(0, table.Count);
        Assert.Null(table.Find("a"));

        var a = Sub("a");
        table.Set(a);
        Assert.Equal(1, table.Count);
        Assert.False(table.UsesDictionary);
        Assert.Same(a, table.Find("a"));
        Assert.Null(table.Find("b"));

        var b = Sub("b");
        table.Set(b);
        Assert.Equal(2, table.Count);
        Assert.True(table.UsesDictionary);
        Assert.Same(a, table.Find("a"));
        Assert.Same(b, table.Find("b"));

        Assert.Same(a, table.Remove("a"));
        Assert.Equal(1, table.Count);
        Assert.False(table.UsesDictionary);
        Assert.Null(table.Find("a"));
        Assert.Same(b, table.Find("b"));

        // And up again, with the one left kept.
        var c = Sub("c");
        table.Set(c);
        Assert.True(table.UsesDictionary);
        Assert.Same(b, table.Find("b"));
        Assert.Same(c, table.Find("c"));

        Assert.Same(c, table.Remove("c"));
        Assert.Same(b, table.Remove("b"));
        Assert.Equal(0, table.Count);
        Assert.False(table.UsesDictionary);
        Assert.Null(table.Remove("b"));
    }

    [Fact]
    public void Resubscribing_a_chat_replaces_its_subscription_without_growing()
    {
        var table = new SubscriptionTable();
        var first = Sub("a");
        var second = Sub("a");
        table.Set(first);
        table.Set(second);
        Assert.Equal(1, table.Count);
        Assert.False(table.UsesDictionary);
        Assert.Same(second, table.Find("a"));

        // Same with a dictionary in use.
        var other = Sub("b");
        var third = Sub("a");
        table.Set(other);
        table.Set(third);
        Assert.Equal(2, table.Count);
        Assert.Same(third, table.Find("a"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void RemoveExact_leaves_a_newer_subscription_of_the_same_chat(int others)
    {
        var table = new SubscriptionTable();
        for (var i = 0; i < others - 1; i++)
        {
            table.Set(Sub($"other{i}"));
        }

        var old = Sub("a");
        var current = Sub("a");
        table.Set(old);
        table.Set(current);
        Assert.False(table.RemoveExact(old));
        Assert.Same(current, table.Find("a"));
        Assert.True(table.RemoveExact(current));
        Assert.Null(table.Find("a"));
        Assert.Equal(others - 1, table.Count);
        Assert.False(table.RemoveExact(current));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    public void TakeAll_returns_every_subscription_and_empties_the_table(int count)
    {
        var table = new SubscriptionTable();
        var subs = Enumerable.Range(0, count).Select(i => Sub($"c{i}")).ToList();
        foreach (var s in subs)
        {
            table.Set(s);
        }

        var taken = table.TakeAll();
        Assert.Equal(subs.OrderBy(s => s.ChatId), taken.OrderBy(s => s.ChatId));
        Assert.Equal(0, table.Count);
        Assert.False(table.UsesDictionary);
        Assert.Empty(table.TakeAll());
    }
}
