#!/usr/bin/env bash
# Installs the Debian packages gptneo builds with, when any is missing.
# Used by the README's set-up commands and by CI.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcpp-httplib-dev zlib1g-dev libssl-dev
  libopenmpi-dev openmpi-bin
  libreadline-dev
  libsimde-dev  # emulated AVX-512 kernels, so CPUs without AVX-512 test that code too
)

# Where Node.js is installed, the Node tests of `gptneo serve` (tests/node)
# run too: the chat page test drives Debian's chromium.
have_npm=0
command -v npm >/dev/null 2>&1 && have_npm=1
((have_npm)) && packages+=(chromium)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The npm packages of those tests (the official openai client, playwright-core),
# as pinned by tests/node/package-lock.json; again only when the lock changed.
if ((have_npm)); then
  node_dir="$(cd "$(dirname "$0")/../tests/node" && pwd)"
  if [[ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]]; then
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
