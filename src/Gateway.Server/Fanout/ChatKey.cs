namespace Gateway.Server.Fanout;

/// <summary>Identifies a chat across tenants. A value type, so looking one up allocates nothing.</summary>
internal readonly record struct ChatKey(string TenantId, string ChatId);
