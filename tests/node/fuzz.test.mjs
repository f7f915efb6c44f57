// Fuzz-style test: a few thousand malformed and random requests (broken
// JSON, wrong types, random bytes, invalid UTF-8, deep nesting, huge
// numbers, odd methods and paths, oversized bodies, raw garbage on the
// socket, clients that stall) while the server keeps serving. Every request
// must get an HTTP answer, errors in OpenAI's shape, never a 5xx; at the end
// the server still answers a normal request and exits cleanly.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, test } from "node:test";
import { checkPrerequisites, startServer } from "./server.mjs";

checkPrerequisites();

const COUNT = Number(process.env.GPTNEO_FUZZ_REQUESTS || 3000);
const CONCURRENCY = 16;
let server;

before(async () => {
  // A short context keeps whatever random request does generate quick.
  server = await startServer(["--parallel", "4", "--ctx", "48", "--max-body-kb", "64", "--timeout", "3",
    "--no-log", "--api-key", "sk-fuzz"]);
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

// A small deterministic generator (xorshift32), so a failure can be replayed.
function rng(seed) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (a) => a[Math.floor(next() * a.length)],
  };
}

const WEIRD_VALUES = [null, true, false, 0, -1, 1, 2, 3.5, -1e308, 1e308, 2 ** 63, -(2 ** 63), 18446744073709551615,
  "", "x", "\u0000", "\ud83d\ude00", "é", "a".repeat(5000), [], [1, 2], [[]], [-1], [50257], [""], ["a", 1], {},
  { a: 1 }, { "": null }, [{ role: "user" }], NaN];
const FIELDS = ["model", "prompt", "messages", "max_tokens", "temperature", "top_p", "top_k", "min_p", "n", "stop",
  "stream", "logprobs", "top_logprobs", "echo", "presence_penalty", "frequency_penalty", "repetition_penalty",
  "logit_bias", "seed", "user", "stream_options", "best_of", "suffix", "ignore_eos", "truncate", "tokens", "text",
  "response_format", "tools", "min_tokens", "no_repeat_ngram_size", "ban", "typical_p", "junk"];
const PATHS = ["/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize", "/v1/models", "/v1/models/x",
  "/health", "/metrics", "/", "/v1", "/v1/completions/", "/v2/completions", "/%00", "/..%2f..%2fetc/passwd",
  "/v1/completions?x=1", "/" + "a".repeat(3000)];
const METHODS = ["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];

function validBase(r, path) {
  if (path.includes("chat")) {
    return { model: "neo-mini", messages: [{ role: "user", content: "Hi" }], max_tokens: 1 + r.int(3) };
  }
  if (path.includes("detokenize")) return { tokens: [15496, 995] };
  if (path.includes("tokenize")) return { prompt: "Hello world" };
  return { model: "neo-mini", prompt: "Hello", max_tokens: 1 + r.int(3) };
}

// A random body: a valid request with fields broken, or plain garbage.
function randomBody(r, path) {
  switch (r.int(10)) {
    case 0: {  // random bytes
      const n = r.int(300);
      return Buffer.from(Array.from({ length: n }, () => r.int(256)));
    }
    case 1: {  // truncated or corrupted JSON
      const s = JSON.stringify(validBase(r, path));
      const cut = s.slice(0, r.int(s.length));
      return r.next() < 0.5 ? cut : cut + "\u0000}" + s.slice(cut.length + 1);
    }
    case 2: {  // invalid UTF-8 inside a string
      const s = JSON.stringify(validBase(r, path)).replace("Hello", "He\u0001llo");
      const b = Buffer.from(s);
      const at = b.indexOf(1);
      if (at >= 0) b[at] = r.pick([0xff, 0xc3, 0xe2, 0x80, 0xed]);
      return b;
    }
    case 3:  // deep nesting
      return `{"prompt": ${"[".repeat(1 + r.int(5000))}`;
    case 4:  // not an object
      return JSON.stringify(r.pick([[], [1], "text", 42, null, true]));
    case 5: {  // oversized (the limit is 64 KiB)
      return JSON.stringify({ ...validBase(r, path), prompt: "word ".repeat(14000 + r.int(20000)) });
    }
    default: {  // a valid request with a few fields set to odd values
      const body = validBase(r, path);
      for (let k = 1 + r.int(3); k > 0; --k) body[r.pick(FIELDS)] = r.pick(WEIRD_VALUES);
      let s = JSON.stringify(body);
      if (r.next() < 0.1) s = s.replace(/"max_tokens":\d+/, `"max_tokens":${r.pick(["1e400", "-0", "99999999999999999999", "1.5"])}`);
      return s;
    }
  }
}

function randomHeaders(r) {
  const h = {};
  const auth = r.int(10);
  if (auth < 8) h.Authorization = "Bearer sk-fuzz";
  else if (auth === 8) h.Authorization = r.pick(["Bearer sk-fuz", "Bearer ", "Basic c2s6ZnV6eg==", "bearer sk-fuzz",
    "Bearer sk-fuzzz", "Bearer sk-fuzz\t"]);
  if (r.next() < 0.9) h["Content-Type"] = r.pick(["application/json", "text/plain", "application/x-www-form-urlencoded"]);
  return h;
}

const ALLOWED = new Set([200, 400, 401, 404, 405, 411, 413, 414, 429]);

async function one(r, i, counts) {
  // Mostly the endpoints that parse bodies, with the method they take.
  const path = r.next() < 0.75 ? r.pick(PATHS.slice(0, 4)) : r.pick(PATHS);
  const method = r.next() < 0.85 ? "POST" : r.pick(METHODS);
  const init = { method, headers: randomHeaders(r) };
  if (method !== "GET" && method !== "HEAD") init.body = randomBody(r, path);
  let res;
  try {
    res = await fetch(server.url + path, init);
  } catch (e) {
    assert.fail(`request ${i} (${method} ${path}) got no answer: ${e.cause?.code || e}`);
  }
  const text = await res.text();
  counts.set(res.status, (counts.get(res.status) || 0) + 1);
  assert.ok(ALLOWED.has(res.status), `request ${i} (${method} ${path}): HTTP ${res.status} ${text.slice(0, 300)}`);
  if (res.status >= 400 && method !== "HEAD" && text) {
    const j = JSON.parse(text);
    assert.equal(typeof j.error?.message, "string", `request ${i}: ${text.slice(0, 300)}`);
    assert.ok("type" in j.error && "param" in j.error && "code" in j.error, text.slice(0, 300));
  }
}

// Raw sockets: garbage request lines, a header that never ends, and clients
// that connect and say nothing (they hold a connection until --timeout).
async function raw(r, i) {
  const payloads = [
    "GARBAGE\r\n\r\n",
    "GET / HTTP/9.9\r\n\r\n",
    "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
    "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n",
    "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n" + "a".repeat(5000),
    "GET /" + "x".repeat(20000) + " HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /health HTTP/1.1\r\n" + "X-A: b\r\n".repeat(200) + "\r\n",
    "\x00\x01\x02\xff\r\n\r\n",
    "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\":",  // stalls mid-body
    "",  // says nothing
  ];
  const payload = payloads[i % payloads.length];
  const url = new URL(server.url);
  await new Promise((resolve, reject) => {
    const sock = connect(Number(url.port), url.hostname);
    let got = "";
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`raw ${i}: no answer and no close in 20 s`)); }, 20000);
    sock.on("connect", () => sock.write(payload, "latin1"));
    sock.on("data", (d) => { got += d.toString("latin1"); });
    sock.on("error", () => {});  // a reset is an answer too
    sock.on("close", () => {
      clearTimeout(timer);
      // Whatever was answered is HTTP (or nothing: the connection was dropped).
      if (got) assert.match(got, /^HTTP\/1\.1 \d{3} /, `raw ${i}: ${JSON.stringify(got.slice(0, 100))}`);
      resolve();
    });
    // Those that were answered are closed by us once the answer is in.
    sock.on("data", () => { if (/\r\n\r\n/.test(got) && i % payloads.length < 9) setTimeout(() => sock.end(), 50); });
  });
}

test(`${COUNT} malformed and random requests: each answered, the server stays up`, { timeout: 600000 }, async () => {
  const r = rng(12345);
  const counts = new Map();
  // Stalled clients first, alongside everything else.
  const rawDone = Promise.all(Array.from({ length: 40 }, (_, i) => raw(r, i)));
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (let i = next++; i < COUNT; i = next++) await one(rng(1000 + i), i, counts);
  }));
  await rawDone;
  console.log(`status codes: ${[...counts.entries()].sort().map(([s, n]) => `${s}×${n}`).join(", ")}`);
  assert.ok((counts.get(400) || 0) > COUNT / 4, "too few requests reached the request parser");
  assert.ok((counts.get(200) || 0) > 0, "no request succeeded");
  // Still serving, and nothing left running.
  const ok = await fetch(`${server.url}/v1/completions`, {
    method: "POST", headers: { "Content-Type": "application/json", Authorization: "Bearer sk-fuzz" },
    body: JSON.stringify({ model: "neo-mini", prompt: "Hello", max_tokens: 3 }),
  });
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).choices.length, 1);
  // A sequence whose client went away is freed at the scheduler's next step,
  // so allow it a few seconds to drain; a leaked one never would.
  let metrics = "";
  for (let tries = 0; tries < 50; ++tries) {
    metrics = await (await fetch(`${server.url}/metrics`)).text();
    if (/\ngptneo_active_sequences 0\n/.test(metrics) && /\ngptneo_queue_length 0\n/.test(metrics)) break;
    await new Promise((done) => setTimeout(done, 100));
  }
  assert.match(metrics, /\ngptneo_active_sequences 0\n/);
  assert.match(metrics, /\ngptneo_queue_length 0\n/);
});
