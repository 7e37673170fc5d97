using System.Security.Cryptography;
using System.Text;

namespace Gateway.Server.Auth;

/// <summary>Development secrets kept in the data directory so the server and the <c>token</c> command agree.</summary>
public static class DevKeys
{
    /// <summary>Reads the base64 secret in <paramref name="name"/>, creating a random 32-byte one first if missing.</summary>
    public static string GetOrCreate(string dataDirectory, string name)
    {
        Directory.CreateDirectory(dataDirectory);
        var path = Path.Combine(dataDirectory, name);
        if (File.Exists(path))
        {
            return File.ReadAllText(path, Encoding.ASCII).Trim();
        }

        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, secret, Encoding.ASCII);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.Move(tmp, path, overwrite: false);
        return secret;
    }
}
