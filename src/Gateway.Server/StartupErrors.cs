using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace Gateway.Server;

/// <summary>
/// Start-up failures an operator fixes with a setting, told in one line (exit code 1) instead of an unhandled
/// exception's stack trace: a listener endpoint another process holds.
/// </summary>
internal static class StartupErrors
{
    /// <summary>The one-line message for the first configured endpoint that cannot be bound because it is in use, or null.</summary>
    /// <remarks>Checked before the host starts, so the host never logs its own failure with a stack trace. Kestrel can still
    /// lose a race for the port after this check; <see cref="FromBindFailure"/> words that case the same way.</remarks>
    public static string? BusyEndpoint(GatewayOptions options, GatewayRole role)
    {
        foreach (var (setting, value) in Endpoints(options, role))
        {
            var endpoint = IPEndPoint.Parse(value);
            if (endpoint.Port == 0)
            {
                continue;
            }

            using var probe = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);

            // As Kestrel binds: connections of a previous run still in TIME_WAIT do not make the port busy, a listener does.
            probe.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            try
            {
                probe.Bind(endpoint);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                return Message(setting, value);
            }
        }

        return null;
    }

    /// <summary>The one-line message for Kestrel's "address already in use" failure at start, or null for any other exception.</summary>
    public static string? FromBindFailure(Exception exception, GatewayOptions options, GatewayRole role)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (exception is not IOException { InnerException: AddressInUseException } && exception is not AddressInUseException)
        {
            return null;
        }

        // Kestrel's message names the address ("Failed to bind to address http://127.0.0.1:8080: address already in use.").
        foreach (var (setting, value) in Endpoints(options, role))
        {
            if (exception.Message.Contains(value, StringComparison.Ordinal))
            {
                return Message(setting, value);
            }
        }

        return $"Gateway.Server: cannot listen: {exception.Message} Set Gateway:WebSocketEndpoint or Gateway:HttpEndpoint to a free host:port.";
    }

    private static string Message(string setting, string value) =>
        $"Gateway.Server: cannot listen on {value}: the address is already in use. Set {setting} to a free host:port (--{setting}=host:port, or {setting.Replace(":", "__", StringComparison.Ordinal)}).";

    private static IEnumerable<(string Setting, string Value)> Endpoints(GatewayOptions options, GatewayRole role)
    {
        if (role != GatewayRole.Writer)
        {
            yield return ($"{GatewayOptions.Section}:{nameof(GatewayOptions.WebSocketEndpoint)}", options.WebSocketEndpoint);
        }

        yield return ($"{GatewayOptions.Section}:{nameof(GatewayOptions.HttpEndpoint)}", options.HttpEndpoint);
    }
}
