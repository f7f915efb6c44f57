#include "server/chat_page.h"

namespace gptneo::server {

namespace {

// Element ids (#input, #send, #stop, #clear, #stats, #messages) are what the
// browser test drives; keep them stable.
constexpr std::string_view kPage = R"PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gptneo chat</title>
<style>
  :root { --bg: #f6f7f9; --fg: #1d2330; --muted: #6b7385; --user: #dbe8ff; --bot: #ffffff; --accent: #2f6fed; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg);
         display: flex; flex-direction: column; height: 100vh; }
  header { padding: 10px 16px; background: #fff; border-bottom: 1px solid #e2e5ea; display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 17px; margin: 0; }
  header .model { color: var(--muted); font-size: 13px; }
  header label { font-size: 12px; color: var(--muted); }
  header input { width: 70px; font-size: 12px; }
  header input#api-key { width: 140px; }
  #messages { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 10px; }
  .msg { max-width: 80%; padding: 8px 12px; border-radius: 10px; white-space: pre-wrap; word-wrap: break-word; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
  .msg.user { align-self: flex-end; background: var(--user); }
  .msg.assistant { align-self: flex-start; background: var(--bot); }
  .msg.error { align-self: center; background: #ffe3e3; color: #8a1f1f; }
  .msg .note { color: var(--muted); font-size: 12px; }
  footer { padding: 10px 16px; background: #fff; border-top: 1px solid #e2e5ea; }
  #stats { color: var(--muted); font-size: 12px; min-height: 16px; margin-bottom: 6px; }
  .row { display: flex; gap: 8px; }
  textarea { flex: 1; resize: none; height: 56px; font: inherit; padding: 8px; border-radius: 8px; border: 1px solid #c9ced6; }
  button { font: inherit; padding: 0 14px; border-radius: 8px; border: 1px solid #c9ced6; background: #fff; cursor: pointer; }
  button#send { background: var(--accent); color: #fff; border-color: var(--accent); }
  button:disabled { opacity: .45; cursor: default; }
</style>
</head>
<body>
<header>
  <h1>gptneo chat</h1><span class="model" id="model">…</span>
  <label>max tokens <input id="max-tokens" type="number" min="1" value="128"></label>
  <label>temperature <input id="temperature" type="number" min="0" step="0.1" value="0.8"></label>
  <label>API key <input id="api-key" type="password" placeholder="(none)"></label>
</header>
<div id="messages"></div>
<footer>
  <div id="stats"></div>
  <div class="row">
    <textarea id="input" placeholder="Type a message (Enter sends, Shift+Enter for a new line)"></textarea>
    <button id="send">Send</button>
    <button id="stop" disabled>Stop</button>
    <button id="clear">Clear</button>
  </div>
</footer>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const history = [];
let modelName = "";
let controller = null;

const keyInput = $("api-key");
keyInput.value = localStorage.getItem("gptneo-api-key") || "";
keyInput.addEventListener("change", () => localStorage.setItem("gptneo-api-key", keyInput.value));

function headers() {
  const h = { "Content-Type": "application/json" };
  if (keyInput.value) h["Authorization"] = "Bearer " + keyInput.value;
  return h;
}

async function loadModel() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const j = await r.json();
    if (j.data && j.data.length) { modelName = j.data[0].id; $("model").textContent = modelName; }
    else $("model").textContent = (j.error && j.error.message) || "no model";
  } catch (e) { $("model").textContent = "server unreachable"; }
}

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("messages").appendChild(div);
  $("messages").scrollTop = $("messages").scrollHeight;
  return div;
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
}

// Reads "data: ..." events from a streamed response; calls onEvent(json).
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
  }
}

async function send() {
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const bubble = addMessage("assistant", "");
  bubble.dataset.done = "false";
  controller = new AbortController();
  setBusy(true);
  const started = performance.now();
  let first = 0, tokens = 0, usage = null, finish = null, reply = "";
  const showStats = () => {
    const now = performance.now();
    const seconds = first ? (now - first) / 1000 : 0;
    const n = usage ? usage.completion_tokens : tokens;
    const rate = seconds > 0 && n > 1 ? ((n - 1) / seconds).toFixed(1) : "–";
    $("stats").textContent = n + " tokens · " + rate + " tokens/s" +
      (first ? " · first token after " + Math.round(first - started) + " ms" : "");
  };
  try {
    const body = {
      messages: history, stream: true, stream_options: { include_usage: true },
      max_tokens: Number($("max-tokens").value) || 128,
      temperature: Number($("temperature").value),
    };
    if (modelName) body.model = modelName;
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal });
    if (!response.ok) {
      const j = await response.json().catch(() => ({}));
      throw new Error((j.error && j.error.message) || ("HTTP " + response.status));
    }
    await readEvents(response, (chunk) => {
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices || []) {
        if (c.delta && c.delta.content) {
          if (!first) first = performance.now();
          tokens += 1;
          reply += c.delta.content;
          bubble.textContent = reply;
          $("messages").scrollTop = $("messages").scrollHeight;
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
      showStats();
    });
    history.push({ role: "assistant", content: reply });
  } catch (e) {
    if (e.name === "AbortError") {
      finish = "stopped";
      if (bubble.isConnected) history.push({ role: "assistant", content: reply });
    } else {
      addMessage("error", String(e.message || e));
      history.pop();
    }
  } finally {
    if (finish) {
      const note = document.createElement("div");
      note.className = "note";
      note.textContent = "(" + finish + ")";
      bubble.appendChild(note);
    }
    bubble.dataset.done = "true";
    showStats();
    controller = null;
    setBusy(false);
  }
}

$("send").addEventListener("click", send);
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("clear").addEventListener("click", () => {
  if (controller) controller.abort();
  history.length = 0;
  $("messages").textContent = "";
  $("stats").textContent = "";
});
$("input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); }
});
loadModel();
</script>
</body>
</html>
)PAGE";

}  // namespace

std::string_view chat_page_html() { return kPage; }

}  // namespace gptneo::server
