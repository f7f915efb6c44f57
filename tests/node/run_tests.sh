#!/bin/sh
# CTest's entry to the Node tests of `gptneo serve` (tests/CMakeLists.txt):
# exits 77, which CTest reports as skipped, when node or the packages of
# `npm ci` are missing. GPTNEO_BIN names the gptneo binary.
cd "$(dirname "$0")" || exit 1
if ! command -v node >/dev/null 2>&1; then
  echo "SKIPPED: node is not installed (Node 20 runs these tests)"
  exit 77
fi
if [ ! -d node_modules/openai ] || [ ! -d node_modules/playwright-core ]; then
  echo "SKIPPED: run \`npm ci\` in tests/node first"
  exit 77
fi
exec node --test --test-concurrency=1 --test-reporter=spec "$@" \
  openai_client.test.mjs chat_page.test.mjs fuzz.test.mjs load.test.mjs
