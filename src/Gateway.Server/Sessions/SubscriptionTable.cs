using Gateway.Server.Fanout;

namespace Gateway.Server.Sessions;

/// <summary>
/// A session's subscriptions by chat id: a single field while there is at most one, a dictionary from the second on.
/// Not thread-safe; the owning <see cref="Session"/> calls it under its lock. A mutable struct: keep it in a field
/// and never copy it.
/// </summary>
/// <remarks>
/// Most idle connections hold one subscription or none, and a dictionary for one entry costs three objects (the
/// dictionary, its bucket array and its entry array, sized 3). When the count drops back to one, the dictionary is dropped again,
/// so a session is never charged for a table it no longer needs; a client that swings between one and two pays one
/// small allocation per swing, at most as often as its Subscribe rate limit lets it.
/// </remarks>
internal struct SubscriptionTable
{
    // Exactly one of these is in use: _many when it is not null (then _one is null), otherwise _one (null when empty).
    private ChatSubscription? _one;
    private Dictionary<string, ChatSubscription>? _many;

    /// <summary>How many chats have a subscription.</summary>
    public readonly int Count => _many?.Count ?? (_one is null ? 0 : 1);

    /// <summary>True while the table holds a dictionary (two subscriptions or more); for tests.</summary>
    internal readonly bool UsesDictionary => _many is not null;

    /// <summary>The subscription to <paramref name="chatId"/>, or null.</summary>
    public readonly ChatSubscription? Find(string chatId)
    {
        if (_many is not null)
        {
            return _many.GetValueOrDefault(chatId);
        }

        return _one is not null && string.Equals(_one.ChatId, chatId, StringComparison.Ordinal) ? _one : null;
    }

    /// <summary>Adds <paramref name="subscription"/>, or replaces the one to the same chat.</summary>
    public void Set(ChatSubscription subscription)
    {
        if (_many is not null)
        {
            _many[subscription.ChatId] = subscription;
        }
        else if (_one is null || string.Equals(_one.ChatId, subscription.ChatId, StringComparison.Ordinal))
        {
            _one = subscription;
        }
        else
        {
            _many = new Dictionary<string, ChatSubscription>(StringComparer.Ordinal)
            {
                [_one.ChatId] = _one,
                [subscription.ChatId] = subscription,
            };
            _one = null;
        }
    }

    /// <summary>Removes and returns the subscription to <paramref name="chatId"/>, or returns null.</summary>
    public ChatSubscription? Remove(string chatId)
    {
        var found = Find(chatId);
        if (found is not null)
        {
            RemoveFound(found);
        }

        return found;
    }

    /// <summary>Removes <paramref name="subscription"/> if it is still the one for its chat (not a newer one).</summary>
    /// <returns>True when it was removed.</returns>
    public bool RemoveExact(ChatSubscription subscription)
    {
        if (!ReferenceEquals(Find(subscription.ChatId), subscription))
        {
            return false;
        }

        RemoveFound(subscription);
        return true;
    }

    /// <summary>Empties the table and returns what it held.</summary>
    public ChatSubscription[] TakeAll()
    {
        ChatSubscription[] all = _many is not null ? [.. _many.Values] : _one is not null ? [_one] : [];
        _many = null;
        _one = null;
        return all;
    }

    private void RemoveFound(ChatSubscription found)
    {
        if (_many is null)
        {
            _one = null;
            return;
        }

        _many.Remove(found.ChatId);
        if (_many.Count <= 1)
        {
            // Back to at most one: the field holds it and the dictionary goes.
            foreach (var last in _many.Values)
            {
                _one = last;
            }

            _many = null;
        }
    }
}
