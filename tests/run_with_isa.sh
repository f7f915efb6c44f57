#!/bin/sh
# Runs the golden tests again with one kernel set forced (GPTNEO_ISA), so that
# every set, not only the best one the CPU has, is checked against the
# reference data. Skipped (exit 77) where the CPU cannot run that set, or where
# it is the set the ordinary run already used.
#   run_with_isa.sh ISA GPTNEO_CLI TEST_BINARY [gtest args...]
isa=$1 cli=$2
shift 2
info=$(GPTNEO_ISA=$isa "$cli" bench --random gpt-neo-tiny --gen 1 --prompt 1 --json 2>&1) || {
  echo "skipped: this CPU cannot run the $isa kernels ($info)"
  exit 77
}
default=$(env -u GPTNEO_ISA "$cli" bench --random gpt-neo-tiny --gen 1 --prompt 1 --json | sed -n 's/.*"isa":"\([a-z0-9-]*\)".*/\1/p')
if [ "$isa" = "$default" ]; then
  echo "skipped: $isa is the kernel set the ordinary run of these tests used"
  exit 77
fi
GPTNEO_ISA=$isa exec "$@"
