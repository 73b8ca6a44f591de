// The chat page: the conversation is kept here and sent whole to POST /v1/chat/completions with stream: true;
// the server-sent events are read as they arrive and the reply is re-rendered as Markdown. Stop aborts the
// request (the server frees the slot when the connection closes). No external resources.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const els = {
    model: $("model"), messages: $("messages"), prompt: $("prompt"), send: $("send"), stop: $("stop"), status: $("status"),
    system: $("system"), temperature: $("temperature"), topP: $("top-p"), maxTokens: $("max-tokens"), seed: $("seed"),
    apiKey: $("api-key"), newChat: $("new-chat"), toggle: $("toggle-settings"), settings: $("settings"), composer: $("composer"),
  };
  const history = [];
  let controller = null;
  let chatId = 0;  // a reply that ends after "New chat" belongs to the old conversation, not the new one

  // Settings survive a reload (the key only in this browser's storage).
  const saved = JSON.parse(localStorage.getItem("duet-settings") || "{}");
  for (const k of ["system", "temperature", "topP", "maxTokens", "seed", "apiKey"]) if (saved[k] !== undefined) els[k].value = saved[k];
  const save = () => localStorage.setItem("duet-settings", JSON.stringify(Object.fromEntries(
    ["system", "temperature", "topP", "maxTokens", "seed", "apiKey"].map(k => [k, els[k].value]))));
  for (const k of ["system", "temperature", "topP", "maxTokens", "seed", "apiKey"]) els[k].addEventListener("change", save);

  function headers() {
    const h = { "Content-Type": "application/json" };
    if (els.apiKey.value.trim()) h["Authorization"] = "Bearer " + els.apiKey.value.trim();
    return h;
  }

  function setStatus(text) { els.status.textContent = text; }

  function addMessage(role, text) {
    const div = document.createElement("div");
    div.className = "msg " + role;
    div.lang = /[\u3400-\u9fff]/.test(text) ? "zh" : "en";
    if (role === "assistant") div.innerHTML = DuetMarkdown.render(text); else div.textContent = text;
    els.messages.appendChild(div);
    els.messages.scrollTop = els.messages.scrollHeight;
    return div;
  }

  async function errorText(res) {
    try { const j = await res.json(); return j.error && j.error.message ? j.error.message : res.statusText; }
    catch { return res.status + " " + res.statusText; }
  }

  async function loadModels() {
    try {
      const res = await fetch("/v1/models", { headers: headers() });
      if (!res.ok) { setStatus("Models: " + await errorText(res) + (res.status === 401 ? " (set the API key in Settings)" : "")); return; }
      const data = await res.json();
      els.model.innerHTML = "";
      for (const m of data.data) {
        const o = document.createElement("option");
        o.value = m.id;
        o.textContent = m.meta ? `${m.id} (ctx ${m.meta.n_ctx})` : m.id;
        els.model.appendChild(o);
      }
      setStatus("Ready.");
    } catch (e) { setStatus("Cannot reach the server: " + e.message); }
  }

  function busy(on) {
    els.send.disabled = on;
    els.stop.disabled = !on;
    els.prompt.disabled = on;
  }

  async function send(text) {
    const chat = chatId;
    history.push({ role: "user", content: text });
    addMessage("user", text);
    const messages = [];
    if (els.system.value.trim()) messages.push({ role: "system", content: els.system.value.trim() });
    messages.push(...history);
    const body = {
      model: els.model.value || undefined, messages, stream: true, stream_options: { include_usage: true },
      temperature: parseFloat(els.temperature.value), top_p: parseFloat(els.topP.value), max_tokens: parseInt(els.maxTokens.value, 10),
    };
    if (els.seed.value !== "") body.seed = parseInt(els.seed.value, 10);
    const div = addMessage("assistant", "");
    div.classList.add("streaming");
    let reply = "", usage = null, finish = null, first = 0, pieces = 0;
    const started = performance.now();
    controller = new AbortController();
    busy(true);
    setStatus("Generating…");
    try {
      const res = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal });
      if (!res.ok) throw new Error(await errorText(res));
      const reader = res.body.getReader();
      const decoder = new TextDecoder("utf-8");
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const event = JSON.parse(data);
          if (event.error) throw new Error(event.error.message);
          if (event.usage) usage = event.usage;
          const choice = event.choices && event.choices[0];
          if (!choice) continue;
          if (choice.finish_reason) finish = choice.finish_reason;
          const piece = choice.delta && choice.delta.content;
          if (piece) {
            if (!first) first = performance.now();
            pieces++;
            reply += piece;
            div.innerHTML = DuetMarkdown.render(reply);
            div.dataset.updates = String(pieces);
            els.messages.scrollTop = els.messages.scrollHeight;
          }
        }
      }
      finishReply(chat, div, reply, usage, finish, started, first, pieces);
    } catch (e) {
      if (e.name === "AbortError") finishReply(chat, div, reply, usage, "stopped", started, first, pieces);
      else {
        div.remove();
        if (chat === chatId) history.pop();
        addMessage("error", "Error: " + e.message);
        setStatus("Error.");
      }
    } finally {
      controller = null;
      busy(false);
      els.prompt.focus();
    }
  }

  function finishReply(chat, div, reply, usage, finish, started, first, pieces) {
    div.classList.remove("streaming");
    div.lang = /[\u3400-\u9fff]/.test(reply) ? "zh" : "en";
    if (chat !== chatId) return;  // the conversation was cleared meanwhile
    // A reply stopped before its first token is not a turn: the user message then stands alone, as it was sent.
    if (reply) history.push({ role: "assistant", content: reply });
    const tokens = usage ? usage.completion_tokens : pieces;
    const secs = first ? (performance.now() - first) / 1000 : 0;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `${tokens} tokens` + (secs > 0 && tokens > 1 ? `, ${((tokens - 1) / secs).toFixed(1)} tokens/s` : "")
      + (first ? `, first token ${Math.round(first - started)} ms` : "") + (finish ? `, ${finish}` : "");
    div.appendChild(meta);
    setStatus("Ready.");
  }

  els.composer.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = els.prompt.value.trim();
    if (!text || controller) return;
    els.prompt.value = "";
    send(text);
  });
  els.prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); els.composer.requestSubmit(); }
  });
  els.stop.addEventListener("click", () => { if (controller) controller.abort(); });
  els.newChat.addEventListener("click", () => { chatId++; if (controller) controller.abort(); history.length = 0; els.messages.innerHTML = ""; setStatus("New chat."); });
  els.toggle.addEventListener("click", () => {
    els.settings.hidden = !els.settings.hidden;
    els.toggle.setAttribute("aria-expanded", String(!els.settings.hidden));
  });
  els.apiKey.addEventListener("change", loadModels);
  loadModels();
  els.prompt.focus();
})();
