global using Gateway.Domain.Ports;
global using Microsoft.Extensions.Time.Testing;
global using Xunit;
