global using Gateway.Domain.Ports;
global using Xunit;
