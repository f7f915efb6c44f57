// The chat page at "/" driven in headless Chromium (Debian's chromium with
// playwright-core): type a message, see the answer stream in, stop a long
// answer, clear the conversation. Screenshots are saved as test artifacts.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { checkPrerequisites, ensureArtifactsDir, startServer } from "./server.mjs";

checkPrerequisites();
const CHROMIUM = process.env.GPTNEO_CHROMIUM || "/usr/bin/chromium";
// Without a browser this test is reported as skipped (CI installs Debian's chromium).
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;

let server, context, profile;

before(async () => {
  if (skip) return;
  server = await startServer(["--parallel", "2", "--no-log"]);
  profile = mkdtempSync(join(tmpdir(), "gptneo-chromium-"));
  // A fresh profile, no network beyond loopback, nothing phoning home.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 900, height: 700 },
  });
});
after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (server) assert.equal(await server.stop(), 0);
});

test("type a message, watch the streamed answer, stop and clear", { timeout: 120000, skip }, async () => {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Every chunk the page reads is an SSE event from the server.
  await page.goto(server.url + "/");
  await page.locator("#model").filter({ hasText: "neo-mini" }).waitFor({ timeout: 10000 });

  await page.fill("#max-tokens", "24");
  await page.fill("#temperature", "0");
  await page.fill("#input", "Tell me about the sea.");
  const streamed = page.waitForResponse((r) => r.url().endsWith("/v1/chat/completions"));
  await page.keyboard.press("Enter");
  const response = await streamed;
  assert.equal(response.headers()["content-type"], "text/event-stream");
  await page.locator(".msg.assistant[data-done='true']").first().waitFor({ timeout: 60000 });

  const user = await page.locator(".msg.user").first().innerText();
  assert.equal(user, "Tell me about the sea.");
  const bubble = page.locator(".msg.assistant").first();
  const reply = (await bubble.innerText()).replace(/\((stop|length)\)\s*$/, "").trim();
  assert.ok(reply.length > 0, "the answer is empty");
  // The same request through the API gives the same (greedy) reply.
  const api = await (await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "Tell me about the sea." }], max_tokens: 24,
      temperature: 0 }),
  })).json();
  assert.equal(reply, api.choices[0].message.content.trim());
  const stats = await page.locator("#stats").innerText();
  assert.match(stats, /\d+ tokens · [\d.]+ tokens\/s/);
  const dir = ensureArtifactsDir();
  const shot = join(dir, "chat_page.png");
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(statSync(shot).size > 1000);

  // A long answer stopped half-way keeps what it had and marks it stopped.
  // Stop is clicked inside the page the moment the answer has some text and
  // is still running; a sampled answer may also end (end of text, a stop
  // sequence of the chat template) before that, and then it is asked again.
  await page.fill("#max-tokens", "900");
  await page.fill("#temperature", "0.8");
  for (let attempt = 0; ; ++attempt) {
    await page.fill("#input", "Tell me a very long story.");
    await page.click("#send");
    const outcome = await page.waitForFunction(() => {
      const answers = document.querySelectorAll(".msg.assistant");
      const last = answers[answers.length - 1];
      if (!last || answers.length < 2) return false;
      if (last.dataset.done === "true") return "finished";
      const stop = document.querySelector("#stop");
      if (last.textContent.length > 5 && !stop.disabled) {
        stop.click();
        return "clicked";
      }
      return false;
    }, null, { timeout: 60000, polling: "raf" });
    if ((await outcome.jsonValue()) === "clicked") break;
    assert.ok(attempt < 5, "every long answer ended before it could be stopped");
  }
  const second = page.locator(".msg.assistant").last();
  await page.locator(".msg.assistant").last().locator("xpath=self::*[@data-done='true']").waitFor({ timeout: 10000 });
  assert.match(await second.innerText(), /\(stopped\)\s*$/);
  await page.screenshot({ path: join(dir, "chat_page_stopped.png"), fullPage: true });
  // The stopped request leaves the server's batch.
  for (let i = 0; ; ++i) {
    const m = await (await fetch(`${server.url}/metrics`)).text();
    if (/\ngptneo_active_sequences 0\n/.test(m)) break;
    assert.ok(i < 500, "the stopped request is still running");
    await new Promise((r) => setTimeout(r, 20));
  }

  await page.click("#clear");
  assert.equal(await page.locator(".msg").count(), 0);
  assert.deepEqual(errors, []);
});
