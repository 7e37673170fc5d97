global using Gateway.Domain.Ports;
global using Xunit;
global using Microsoft.Extensions.Time.Testing;
