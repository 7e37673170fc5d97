using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.IdentityModel.Tokens;
using SignalRPeer;

// A SignalR server as the ASP.NET Core docs build one: MessagePack hub protocol, one hub, JWT bearer auth when a key is
// configured. The listen address comes from --urls (start.sh passes http://127.0.0.1:<port>).
var builder = WebApplication.CreateBuilder(args);

builder.Services.AddSignalR().AddMessagePackProtocol();

// PEER_JWT_KEY: an HS256 key, base64, the same format as the gateway's Gateway:Auth:SigningKey, so one token minted by
// the load generator works for both. Unset: anonymous, as the gateway cannot be, so say which in every report.
var jwtKey = Environment.GetEnvironmentVariable("PEER_JWT_KEY");
var requireAuth = !string.IsNullOrEmpty(jwtKey);
if (requireAuth)
{
    builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer(options =>
    {
        options.TokenValidationParameters = new TokenValidationParameters
        {
            IssuerSigningKey = new SymmetricSecurityKey(Convert.FromBase64String(jwtKey!)),
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = true,
            ClockSkew = TimeSpan.FromSeconds(30),
        };
        // Browsers cannot set headers on a WebSocket upgrade, so SignalR sends the token as ?access_token= (docs:
        // "Authentication and authorization in ASP.NET Core SignalR").
        options.Events = new JwtBearerEvents
        {
            OnMessageReceived = context =>
            {
                var accessToken = context.Request.Query["access_token"];
                if (!string.IsNullOrEmpty(accessToken) && context.HttpContext.Request.Path.StartsWithSegments("/hub"))
                {
                    context.Token = accessToken;
                }
                return Task.CompletedTask;
            },
        };
    });
    builder.Services.AddAuthorization();
}

var app = builder.Build();

var hub = app.MapHub<ChatHub>("/hub");
if (requireAuth)
{
    hub.RequireAuthorization();
}

// Readiness for start.sh's caller: Kestrel is bound once ApplicationStarted fires.
app.Lifetime.ApplicationStarted.Register(() =>
{
    Console.Out.WriteLine("READY");
    Console.Out.Flush();
});

app.Run();
