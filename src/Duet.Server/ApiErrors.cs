// Errors as the OpenAI API shapes them: {"error": {"message", "type", "param", "code"}} with a 4xx/5xx status.
// Request fields are read through JsonRequest, which checks each field's type and range and names the
// field in the message, so a client sees what to fix instead of a 500.
using System.Text.Json;

namespace Duet.Server;

public sealed class ApiException(int status, string message, string? param = null, string? code = null, string? type = null) : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public string Type { get; } = type ?? status switch
    {
        401 => "authentication_error",
        404 => "not_found_error",
        413 => "invalid_request_error",
        429 or 503 => "server_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };

    public static ApiException Invalid(string message, string? param = null, string? code = null) => new(400, message, param, code);

    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteString("message", Message);
        w.WriteString("type", Type);
        if (Param is null) w.WriteNull("param"); else w.WriteString("param", Param);
        if (Code is null) w.WriteNull("code"); else w.WriteString("code", Code);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}

/// <summary>Typed, checked access to the fields of a JSON request body.</summary>
internal readonly struct JsonRequest(JsonElement root)
{
    public JsonElement Root { get; } = root.ValueKind == JsonValueKind.Object
        ? root
        : throw ApiException.Invalid($"the request body must be a JSON object, not {Kind(root.ValueKind)}");

    public static string Kind(JsonValueKind k) => k switch
    {
        JsonValueKind.Object => "an object", JsonValueKind.Array => "an array", JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number", JsonValueKind.True or JsonValueKind.False => "a boolean", JsonValueKind.Null => "null",
        _ => "nothing",
    };

    public bool Has(string name) => Root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public JsonElement? Get(string name) => Root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public string? String(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw ApiException.Invalid($"'{name}' must be a string, not {Kind(v.ValueKind)}", name);
    }

    public bool? Bool(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true, JsonValueKind.False => false,
            _ => throw ApiException.Invalid($"'{name}' must be a boolean, not {Kind(v.ValueKind)}", name),
        };
    }

    public double? Number(string name, double min, double max)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double d) || !double.IsFinite(d))
            throw ApiException.Invalid($"'{name}' must be a number, not {Kind(v.ValueKind)}", name);
        if (d < min || d > max) throw ApiException.Invalid($"'{name}' is {d}; it must be between {min} and {max}", name);
        return d;
    }

    public long? Integer(string name, long min, long max)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number) throw ApiException.Invalid($"'{name}' must be an integer, not {Kind(v.ValueKind)}", name);
        if (!v.TryGetInt64(out long n))
        {
            if (v.TryGetDouble(out double d) && double.IsFinite(d) && Math.Abs(d) > long.MaxValue / 2.0)
                throw ApiException.Invalid($"'{name}' is {v.GetRawText()}; it must be between {min} and {max}", name);
            throw ApiException.Invalid($"'{name}' must be an integer, not {v.GetRawText()}", name);
        }
        if (n < min || n > max) throw ApiException.Invalid($"'{name}' is {n}; it must be between {min} and {max}", name);
        return n;
    }
}
