// A small, safe Markdown renderer for chat replies: the text is HTML-escaped first, then a subset is turned
// into markup (fenced and inline code, headings, bold, italic, lists, quotes, links to http(s) only,
// paragraphs). It is re-run on the whole reply as tokens stream in, so an unclosed fence renders as code.
"use strict";
(function (global) {
  function escapeHtml(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  function inline(s) {
    // s is already escaped. Code spans first, kept out of the other rules.
    const codes = [];
    s = s.replace(/`([^`\n]+)`/g, (_, c) => { codes.push(c); return "\u0000" + (codes.length - 1) + "\u0000"; });
    s = s.replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g, (_, text, url) => `<a href="${url}" target="_blank" rel="noopener noreferrer">${text}</a>`);
    s = s.replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>").replace(/__([^_\n]+)__/g, "<strong>$1</strong>");
    s = s.replace(/(^|[^*])\*([^*\n]+)\*/g, "$1<em>$2</em>").replace(/(^|[^\w_])_([^_\n]+)_(?!\w)/g, "$1<em>$2</em>");
    s = s.replace(/~~([^~\n]+)~~/g, "<del>$1</del>");
    return s.replace(/\u0000(\d+)\u0000/g, (_, i) => `<code>${codes[+i]}</code>`);
  }

  function render(text) {
    const lines = escapeHtml(text).split("\n");
    const out = [];
    let para = [], list = null, inCode = false, code = [], lang = "";
    const flushPara = () => { if (para.length) { out.push("<p>" + para.map(inline).join("<br>") + "</p>"); para = []; } };
    const flushList = () => { if (list) { out.push(`<${list.tag}>` + list.items.map(i => "<li>" + inline(i) + "</li>").join("") + `</${list.tag}>`); list = null; } };
    for (const line of lines) {
      const fence = line.match(/^\s*```\s*([\w+-]*)\s*$/);
      if (inCode) {
        if (fence) { out.push(`<pre><code${lang ? ` data-lang="${lang}"` : ""}>${code.join("\n")}</code></pre>`); inCode = false; code = []; }
        else code.push(line);
        continue;
      }
      if (fence) { flushPara(); flushList(); inCode = true; lang = fence[1]; continue; }
      const h = line.match(/^(#{1,6})\s+(.*)$/);
      if (h) { flushPara(); flushList(); out.push(`<h${h[1].length + 2 > 6 ? 6 : h[1].length + 2}>${inline(h[2])}</h${h[1].length + 2 > 6 ? 6 : h[1].length + 2}>`); continue; }
      const ul = line.match(/^\s*[-*+]\s+(.*)$/), ol = line.match(/^\s*\d+[.)]\s+(.*)$/);
      if (ul || ol) {
        flushPara();
        const tag = ul ? "ul" : "ol";
        if (list && list.tag !== tag) flushList();
        if (!list) list = { tag, items: [] };
        list.items.push((ul || ol)[1]);
        continue;
      }
      const q = line.match(/^&gt;\s?(.*)$/);
      if (q) { flushPara(); flushList(); out.push("<blockquote>" + inline(q[1]) + "</blockquote>"); continue; }
      if (line.trim() === "") { flushPara(); flushList(); continue; }
      flushList();
      para.push(line);
    }
    if (inCode) out.push(`<pre><code${lang ? ` data-lang="${lang}"` : ""}>${code.join("\n")}</code></pre>`);
    flushPara(); flushList();
    return out.join("");
  }

  global.DuetMarkdown = { render, escapeHtml };
})(window);
