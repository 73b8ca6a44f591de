// Chat fine-tuning data: conversations from JSON lines, in the two layouts people have, checked before training.
//   OpenAI:   {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
//   ShareGPT: {"conversations": [{"from": "system"|"human"|"gpt", "value": "..."}, ...]}  (also user/assistant)
// A conversation is an optional system message, then user and assistant turns alternating from a user turn, with at
// least one assistant turn (the loss is taken on those). Every defect is an InvalidDataException naming file and line.
using System.Text;
using System.Text.Json;
using Duet.Tokenizers.ChatTemplates;

namespace Duet.Training.Sft;

/// <summary>A conversation to train on, and where it came from ("file:line").</summary>
public sealed record ChatConversation(IReadOnlyList<ChatTemplateMessage> Messages, string Where);

public static class ChatConversations
{
    /// <summary>The conversations of a JSON-lines file, in order; blank lines are skipped.</summary>
    public static IEnumerable<ChatConversation> Read(string path)
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        int line = 0;
        while (reader.ReadLine() is { } text)
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            yield return Parse(text, $"{path}:{line}");
        }
    }

    /// <summary>One JSON line as a checked conversation.</summary>
    public static ChatConversation Parse(string json, string where)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new InvalidDataException($"{where}: malformed JSON: {e.Message}"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where}: a conversation must be a JSON object");
            var messages = new List<ChatTemplateMessage>();
            if (root.TryGetProperty("messages", out var list)) Collect(list, "role", "content", where, messages);
            else if (root.TryGetProperty("conversations", out list)) Collect(list, "from", "value", where, messages);
            else throw new InvalidDataException($"{where}: neither \"messages\" (OpenAI) nor \"conversations\" (ShareGPT)");
            var conversation = new ChatConversation(messages, where);
            Check(conversation);
            return conversation;
        }
    }

    private static void Collect(JsonElement list, string roleKey, string contentKey, string where, List<ChatTemplateMessage> messages)
    {
        if (list.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{where}: the messages must be a list");
        int i = 0;
        foreach (var m in list.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty(roleKey, out var r) || r.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"{where}: message {i} has no \"{roleKey}\" string");
            if (!m.TryGetProperty(contentKey, out var c) || c.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"{where}: message {i} ({r.GetString()}) has no \"{contentKey}\" string");
            messages.Add(new ChatTemplateMessage(Role(r.GetString()!, where, i), c.GetString()!));
            i++;
        }
    }

    /// <summary>OpenAI roles as they are; ShareGPT's human and gpt as user and assistant.</summary>
    private static string Role(string role, string where, int i) => role switch
    {
        "system" or "user" or "assistant" => role,
        "human" => "user",
        "gpt" => "assistant",
        _ => throw new InvalidDataException($"{where}: message {i} has the role \"{role}\" (system, user, assistant; ShareGPT's human, gpt)"),
    };

    /// <summary>System first if at all, then user and assistant alternating from a user turn, at least one assistant turn.</summary>
    public static void Check(ChatConversation c)
    {
        var m = c.Messages;
        int start = m.Count > 0 && m[0].Role == "system" ? 1 : 0;
        if (m.Count == start) throw new InvalidDataException($"{c.Where}: a conversation without turns");
        for (int i = start; i < m.Count; i++)
        {
            string want = (i - start) % 2 == 0 ? "user" : "assistant";
            if (m[i].Role != want)
                throw new InvalidDataException($"{c.Where}: message {i} is {(m[i].Role == "system" ? "a system message after the first" : m[i].Role)} where {want} comes (a system message first, then user and assistant turns alternating)");
        }
        if (!m.Any(x => x.Role == "assistant")) throw new InvalidDataException($"{c.Where}: no assistant turn to learn from");
    }
}
