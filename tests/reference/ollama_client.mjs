// The official `ollama` npm client against a Duet server (issue 19, acceptance 4): chat (streamed), generate, list,
// embed. Prints one JSON object with what the client returned, for Duet.Server.Tests.OllamaTests.
//   node tests/reference/ollama_client.mjs http://127.0.0.1:PORT MODEL
import { Ollama } from "ollama";

const [host, model] = process.argv.slice(2);
const ollama = new Ollama({ host });
const pieces = [];
let done = null;
for await (const part of await ollama.chat({ model, messages: [{ role: "user", content: "What is Debian?" }], stream: true,
                                              options: { temperature: 0, num_predict: 8, seed: 1 } })) {
  pieces.push(part.message.content);
  if (part.done) done = part;
}
const whole = await ollama.chat({ model, messages: [{ role: "user", content: "What is Debian?" }], options: { temperature: 0, num_predict: 8, seed: 1 } });
const generated = await ollama.generate({ model, prompt: "Debian is", options: { temperature: 0, num_predict: 4 } });
const list = await ollama.list();
const embedded = await ollama.embed({ model, input: ["自由软件", "free software"] });
console.log(JSON.stringify({
  streamed: pieces.join(""), whole: whole.message.content, done_reason: done?.done_reason, eval_count: done?.eval_count,
  generated: generated.response, models: list.models.map(m => m.name), embeddings: embedded.embeddings.map(e => e.length),
}));
