namespace Gateway.WebSockets.Internal;

/// <summary>Which close codes may travel on the wire (RFC 6455 §7.4.1, §7.4.2 and the IANA registry).</summary>
internal static class CloseStatusRules
{
    /// <summary>
    /// 1000-1003 and 1007-1014 are defined for the wire; 1004 is reserved, 1005/1006/1015 are local-only markers,
    /// 1016-2999 are unassigned protocol codes, 3000-4999 belong to libraries and applications; the rest are invalid.
    /// </summary>
    public static bool IsValidOnWire(int code) =>
        code is (>= 1000 and <= 1003) or (>= 1007 and <= 1014) or (>= 3000 and <= 4999);
}
