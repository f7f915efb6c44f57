// The official `openai` npm package against `gptneo serve`, used exactly as
// an application would: completions, chat, streaming, n > 1, logprobs
// (echo + max_tokens 0 included), and errors surfacing as the client's
// exception classes.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { checkPrerequisites, startServer } from "./server.mjs";

checkPrerequisites();

const MODEL = "neo-mini";
let server, client;

before(async () => {
  server = await startServer(["--parallel", "4", "--no-log"]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

describe("completions", () => {
  test("a completion has OpenAI's shape, text, finish_reason and usage", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: "The capital of France is", max_tokens: 8,
      temperature: 0 });
    assert.equal(r.object, "text_completion");
    assert.equal(r.model, MODEL);
    assert.equal(r.choices.length, 1);
    assert.equal(typeof r.choices[0].text, "string");
    assert.ok(["stop", "length"].includes(r.choices[0].finish_reason));
    assert.equal(r.usage.prompt_tokens, 5);
    assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 8);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  });

  test("streaming gives the same text as the whole response", async () => {
    const params = { model: MODEL, prompt: "Once upon a time", max_tokens: 12, temperature: 0, ignore_eos: true };
    const whole = await client.completions.create(params);
    const stream = await client.completions.create({ ...params, stream: true });
    let text = "", finish = null, chunks = 0;
    for await (const chunk of stream) {
      ++chunks;
      for (const c of chunk.choices) {
        text += c.text;
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.ok(chunks >= 2, `${chunks} chunks`);
    assert.equal(text, whole.choices[0].text);
    assert.equal(finish, "length");
  });

  test("n > 1 and several prompts: one choice each, in order, reproducible with a seed", async () => {
    const params = { model: MODEL, prompt: ["Hello", "Goodbye"], n: 3, max_tokens: 6, temperature: 1, seed: 7 };
    const a = await client.completions.create(params);
    const b = await client.completions.create(params);
    assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(a.choices.map((c) => c.text), b.choices.map((c) => c.text));
    assert.ok(new Set(a.choices.slice(0, 3).map((c) => c.text)).size > 1, "the three samples are all alike");
  });

  test("logprobs of generated tokens with alternatives", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: "One, two, three,", max_tokens: 5,
      temperature: 0, logprobs: 3, ignore_eos: true });
    const lp = r.choices[0].logprobs;
    assert.equal(lp.tokens.length, 5);
    assert.equal(lp.tokens.join(""), r.choices[0].text);
    lp.token_logprobs.forEach((v, i) => {
      assert.ok(v <= 0, `token ${i}: ${v}`);
      const top = lp.top_logprobs[i];
      assert.equal(Object.keys(top).length, 3);
      // Greedy: the chosen token is the most likely one.
      assert.ok(Math.abs(Math.max(...Object.values(top)) - v) < 1e-4);
    });
    assert.equal(lp.text_offset[0], "One, two, three,".length);
  });

  test("echo + logprobs + max_tokens 0 scores the prompt (as evaluation tools do)", async () => {
    const prompt = "The quick brown fox jumps over the lazy dog";
    const r = await client.completions.create({ model: MODEL, prompt, max_tokens: 0, echo: true, logprobs: 0 });
    const c = r.choices[0];
    assert.equal(c.text, prompt);
    assert.equal(c.logprobs.tokens.join(""), prompt);
    assert.equal(c.logprobs.tokens.length, r.usage.prompt_tokens);
    assert.equal(c.logprobs.token_logprobs[0], null);
    for (const v of c.logprobs.token_logprobs.slice(1)) assert.ok(typeof v === "number" && v <= 0);
    assert.equal(r.usage.completion_tokens, 0);
    // A likelier text scores higher than a shuffled one.
    const shuffled = await client.completions.create({ model: MODEL, prompt: "dog lazy the over jumps fox brown quick The",
      max_tokens: 0, echo: true, logprobs: 0 });
    const sum = (x) => x.choices[0].logprobs.token_logprobs.slice(1).reduce((a, b) => a + b, 0);
    assert.ok(sum(r) > sum(shuffled), `${sum(r)} <= ${sum(shuffled)}`);
  });
});

describe("chat", () => {
  const messages = [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "What is the capital of France?" },
  ];

  test("a chat completion", async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 16, temperature: 0 });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0].message.role, "assistant");
    assert.equal(typeof r.choices[0].message.content, "string");
    assert.ok(r.usage.prompt_tokens > 10);
  });

  test("streamed chat chunks add up to the whole reply", async () => {
    const params = { model: MODEL, messages, max_tokens: 16, temperature: 0 };
    const whole = await client.chat.completions.create(params);
    const stream = await client.chat.completions.create({ ...params, stream: true,
      stream_options: { include_usage: true } });
    let text = "", role = null, usage = null, finish = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, "chat.completion.chunk");
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        if (c.delta.role) role = c.delta.role;
        if (c.delta.content) text += c.delta.content;
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.equal(role, "assistant");
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(finish, whole.choices[0].finish_reason);
    assert.deepEqual(usage, whole.usage);
  });

  test("n > 1 and logprobs with top_logprobs", async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 6, n: 2, seed: 3,
      temperature: 0.9, logprobs: true, top_logprobs: 2 });
    assert.equal(r.choices.length, 2);
    for (const c of r.choices) {
      assert.ok(c.logprobs.content.length >= 1);
      for (const t of c.logprobs.content) {
        assert.ok(t.logprob <= 0);
        assert.equal(t.top_logprobs.length, 2);
        if (!t.token.startsWith("bytes:")) assert.deepEqual(t.bytes, [...Buffer.from(t.token, "utf8")]);
      }
    }
  });

  test("the models list", async () => {
    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    assert.deepEqual(models, [MODEL]);
  });
});

describe("errors surface as the client's exceptions", () => {
  test("an unknown model is a NotFoundError", async () => {
    await assert.rejects(client.completions.create({ model: "gpt-4", prompt: "x" }), (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, e.constructor.name);
      assert.equal(e.status, 404);
      assert.equal(e.code, "model_not_found");
      assert.equal(e.param, "model");
      return true;
    });
  });

  test("bad parameters are BadRequestErrors naming the parameter", async () => {
    const cases = [
      [{ model: MODEL, prompt: "x", max_tokens: -1 }, "max_tokens"],
      [{ model: MODEL, prompt: "x", temperature: "hot" }, "temperature"],
      [{ model: MODEL, prompt: "x", max_tokens: 5000 }, "max_tokens"],
      [{ model: MODEL, prompt: "x", n: 100 }, "n"],
      [{ model: MODEL, prompt: "x", top_p: 2 }, "top_p"],
      [{ model: MODEL, prompt: "x", bogus: 1 }, "bogus"],
    ];
    for (const [params, param] of cases) {
      await assert.rejects(client.completions.create(params), (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError, `${JSON.stringify(params)}: ${e.constructor.name}`);
        assert.equal(e.param, param, JSON.stringify(params));
        return true;
      });
    }
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [] }), OpenAI.BadRequestError);
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: "wizard", content: "x" }] }),
      OpenAI.BadRequestError);
  });

  test("a wrong API key is an AuthenticationError", async () => {
    const secured = await startServer(["--api-key", "sk-right", "--no-log"]);
    try {
      const wrong = new OpenAI({ baseURL: `${secured.url}/v1`, apiKey: "sk-wrong", maxRetries: 0 });
      await assert.rejects(wrong.completions.create({ model: MODEL, prompt: "x", max_tokens: 1 }),
        OpenAI.AuthenticationError);
      const right = new OpenAI({ baseURL: `${secured.url}/v1`, apiKey: "sk-right", maxRetries: 0 });
      const r = await right.completions.create({ model: MODEL, prompt: "x", max_tokens: 1 });
      assert.equal(r.choices.length, 1);
    } finally {
      assert.equal(await secured.stop(), 0);
    }
  });

  test("a full queue is a RateLimitError", async () => {
    const busy = await startServer(["--parallel", "1", "--queue", "1", "--no-log", "--shutdown-timeout", "0"]);
    const c = new OpenAI({ baseURL: `${busy.url}/v1`, apiKey: "x", maxRetries: 0 });
    const long = { model: MODEL, prompt: "Tell me a long story.", max_tokens: 1000, ignore_eos: true };
    const running = new AbortController(), waiting = new AbortController();
    try {
      // One request runs and one waits: the next one is turned away.
      const first = c.completions.create({ ...long, stream: true }, { signal: running.signal });
      const stream = await first;
      const it = stream[Symbol.asyncIterator]();
      await it.next();  // it is running
      const second = c.completions.create(long, { signal: waiting.signal }).catch(() => {});
      for (;;) {
        const m = await (await fetch(`${busy.url}/metrics`)).text();
        if (/\ngptneo_queue_length 1\n/.test(m)) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      await assert.rejects(c.completions.create({ model: MODEL, prompt: "x", max_tokens: 1 }), (e) => {
        assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name);
        assert.equal(e.status, 429);
        assert.ok(Number(e.headers.get("retry-after")) >= 1);
        return true;
      });
      running.abort();
      waiting.abort();
      await second;
    } finally {
      assert.equal(await busy.stop(), 0);
    }
  });
});
