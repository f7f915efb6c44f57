// Starts `gptneo serve` for a test on a free loopback port and stops it.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, "..", "..");
export const modelDir = process.env.GPTNEO_MODEL_DIR || join(repoRoot, "models", "neo-mini");
export const artifactsDir = process.env.GPTNEO_ARTIFACTS || join(repoRoot, "build", "test-artifacts");

// What every test needs; run_tests.sh has already skipped the suite when
// node or node_modules is missing, so anything else absent is a failure.
export function checkPrerequisites() {
  const need = (ok, why) => {
    if (!ok) throw new Error(why);
  };
  need(existsSync(join(here, "node_modules", "openai")), "run `npm ci` in tests/node first");
  need(process.env.GPTNEO_BIN && existsSync(process.env.GPTNEO_BIN), "set GPTNEO_BIN to the gptneo binary");
  need(existsSync(join(modelDir, "config.json")), `no model at ${modelDir}`);
}

export function ensureArtifactsDir() {
  mkdirSync(artifactsDir, { recursive: true });
  return artifactsDir;
}

// Runs `gptneo serve --port 0 ARGS...`, waits for /health to answer 200 and
// returns { url, stop(signal) -> exit code, log() -> stderr so far }.
export async function startServer(args = [], { timeoutMs = 60000 } = {}) {
  const child = spawn(process.env.GPTNEO_BIN, ["serve", "--port", "0", "-m", modelDir, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal)));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), timeoutMs);
    child.stderr.on("data", (d) => {
      // Keep the start and the last part of the log (load tests log thousands of lines).
      log = (log + d.toString()).slice(-200000);
      const m = log.match(/listening on (http:\/\/[^\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exited.then((code) => reject(new Error(`server exited (${code}) before listening:\n${log}`)));
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(`${url}/health`);
      if (r.status === 200) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`server never became ready:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    log: () => log,
    exited,
    async stop(signal = "SIGTERM") {
      child.kill(signal);
      return exited;
    },
  };
}

// Reads a Server-Sent Events response: the parsed "data:" payloads, and
// whether it ended with [DONE].
export async function readSse(response) {
  const text = await response.text();
  const events = [];
  let done = false;
  for (const block of text.split("\n\n")) {
    if (!block) continue;
    if (!block.startsWith("data: ")) throw new Error(`not an SSE event: ${JSON.stringify(block)}`);
    const data = block.slice(6);
    if (data === "[DONE]") done = true;
    else events.push(JSON.parse(data));
  }
  return { events, done };
}

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
