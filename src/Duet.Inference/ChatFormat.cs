// Chat prompts for the families Duet runs, picked from the model's tokenizer.chat_template by its markers
// (a full Jinja renderer comes with the server): ChatML (Yi, Qwen; the fallback), Llama 3, Llama 2 / Mistral.
using System.Text;

namespace Duet.Inference;

public sealed record ChatTurn(string Role, string Content);

public enum ChatStyle { ChatMl, Llama3, Llama2 }

public static class ChatFormat
{
    public static ChatStyle Detect(string? template) => template switch
    {
        null => ChatStyle.ChatMl,
        _ when template.Contains("<|start_header_id|>", StringComparison.Ordinal) => ChatStyle.Llama3,
        _ when template.Contains("[INST]", StringComparison.Ordinal) => ChatStyle.Llama2,
        _ => ChatStyle.ChatMl,
    };

    /// <summary>The prompt text for the conversation so far, ending where the assistant's reply begins.</summary>
    public static string Render(ChatStyle style, IReadOnlyList<ChatTurn> messages, string bos)
    {
        var sb = new StringBuilder();
        switch (style)
        {
            case ChatStyle.Llama3:
                sb.Append(bos);
                foreach (var m in messages) sb.Append($"<|start_header_id|>{m.Role}<|end_header_id|>\n\n{m.Content.Trim()}<|eot_id|>");
                sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
                break;
            case ChatStyle.Llama2:
                string? system = messages.FirstOrDefault(m => m.Role == "system")?.Content;
                bool first = true;
                foreach (var m in messages.Where(m => m.Role != "system"))
                {
                    if (m.Role == "user")
                    {
                        var content = first && system is not null ? $"<<SYS>>\n{system}\n<</SYS>>\n\n{m.Content}" : m.Content;
                        sb.Append($"{bos}[INST] {content.Trim()} [/INST]");
                        first = false;
                    }
                    else sb.Append($" {m.Content.Trim()} </s>");
                }
                break;
            default:
                foreach (var m in messages) sb.Append($"<|im_start|>{m.Role}\n{m.Content}<|im_end|>\n");
                sb.Append("<|im_start|>assistant\n");
                break;
        }
        return sb.ToString();
    }
}
