#!/usr/bin/env bash
# The speed tables of README.md and docs/performance.md: each row one
# `gptneo bench --random SHAPE --dtype D --limits --json` run, with the
# limits (read bandwidth, f32 FMA peak, and the bf16 / int8 dot-product peaks
# where the kernels have them: bf16 prefill rows then say "of bf16", q8 / q4
# rows whose prompts run in int8 "of int8") measured in that
# same run, so the fractions hold on whatever machine runs this. Run it on a
# quiet machine.
#
#   scripts/bench-table.sh [path/to/gptneo]    (default: build/gptneo)
set -euo pipefail
cd "$(dirname "$0")/.."
GPTNEO=${1:-build/gptneo}

echo "$(date -u '+%Y-%m-%d %H:%M') UTC, load average $(cut -d' ' -f1-3 /proc/loadavg), $("$GPTNEO" bench --random gpt-neo-tiny --gen 1 --prompt 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["isa"])') kernels"
echo
echo "| shape | weights | KV cache | batch | prefill tok/s | of FMA peak | decode tok/s | of bandwidth limit | weight MB / step | peak RSS MB |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
row() {
  local shape=$1 dtype=$2 batch=$3
  shift 3
  "$GPTNEO" bench --random "$shape" --dtype "$dtype" --batch "$batch" --limits --json "$@" | python3 -c '
import json, sys
d = json.load(sys.stdin)
shape, dtype = sys.argv[1], sys.argv[2]
peak = {"bf16": " of bf16", "int8": " of int8"}.get(d.get("prefill_peak"), "")
print("| %s | %s | %s | %d | %.1f | %.0f %%%s | %.2f | %.0f %% | %.1f | %.0f |" % (
    shape, dtype, d["kv_cache_format"], d["batch"], d["prefill_tok_s"], 100 * d["prefill_fraction_of_fma_peak"], peak, d["decode_tok_s"],
    100 * d["decode_fraction_of_bandwidth_limit"], d["weight_bytes_per_step"] / 1e6, d["peak_rss_bytes"] / 1e6))
' "$shape" "$dtype"
}
for d in f32 bf16 q8 q4; do row gpt-neo-1.3B "$d" 1 --gen 16; done
for d in f32 bf16 q8 q4; do row gpt-neo-125M "$d" 1; done
row gpt-neo-125M q8 8
# Batch 1 and 8 with float32 caches (the default with q8 is f16): attention's
# share of a batch-8 step is largest.
row gpt-neo-125M q8 1 --kv-cache f32
row gpt-neo-125M q8 8 --kv-cache f32
