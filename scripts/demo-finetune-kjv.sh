#!/usr/bin/env bash
# The README's fine-tuning demonstration: models/neo-mini (trained on web text)
# adapted to the King James Bible, a kind of English it has hardly seen, by
# full fine-tuning and by LoRA side by side. The validation split is the end
# of the Bible (held out by `gptneo train`), so "before" is the step-0
# validation loss of each run and "after" its last one.
#
#   scripts/demo-finetune-kjv.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=${2:-/tmp/gptneo-kjv-demo}
gptneo="$build/gptneo"

if ! command -v bible > /dev/null; then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get install -y -qq --no-install-recommends bible-kjv > /dev/null
fi
mkdir -p "$work"
# One verse per line, without the "Ge1:1" references.
[[ -s "$work/kjv.txt" ]] || bible -f "Genesis 1:1-Revelation 22:21" | sed 's/^[^ ]* //' > "$work/kjv.txt"

common=(--init models/neo-mini --data "$work/kjv.txt" --steps 60 --batch 8 --seq 128 --warmup 6
        --eval-every 20 --eval-rows 32 --threads "${THREADS:-2}")
rm -rf "$work/full" "$work/lora"
echo "== full fine-tuning =="
time "$gptneo" train "${common[@]}" --out "$work/full" --lr 3e-4
echo "== LoRA (rank 16 on every projection) =="
time "$gptneo" train "${common[@]}" --out "$work/lora" --lr 2e-3 --lora-rank 16 --lora-targets q,k,v,out,fc,proj
"$gptneo" plot "$work/full/metrics.jsonl" "$work/lora/metrics.jsonl" --label full --label lora -o "$work/kjv-loss.svg"
echo "loss curves: $work/kjv-loss.svg"
echo "== samples (greedy) =="
"$gptneo" generate -q -p "And the LORD said unto Moses," -n 30 --greedy
echo
"$gptneo" generate -q -m "$work/full/step-60" -p "And the LORD said unto Moses," -n 30 --greedy
echo
"$gptneo" generate -q --lora "$work/lora/step-60" -p "And the LORD said unto Moses," -n 30 --greedy
echo
