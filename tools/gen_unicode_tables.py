#!/usr/bin/env python3
"""Generates src/tokenizer/unicode_tables.cpp: the character classes the GPT-2
pre-tokenizer regex needs (\\p{L}, \\p{N}, \\s), as a two-stage lookup table.

    python3 tools/gen_unicode_tables.py [--ucd DIR] [-o FILE]

Data source, in order of preference:
  1. The Unicode Character Database text files (UnicodeData.txt, PropList.txt)
     in --ucd DIR, default /usr/share/unicode (Debian package `unicode-data`,
     Unicode 15.0 on bookworm).
  2. Python's own `unicodedata` module (Unicode 14.0 on Python 3.11), used only
     when the UCD files are missing.

Why prefer the UCD files: the reference tokenizers run their regex on Unicode
15 tables (Oniguruma 6.9.8+ in Hugging Face tokenizers, regex-syntax 0.8 in
tiktoken), so 15.0 classifies the letters added in Unicode 15 (Kawi, Nag
Mundari, CJK extension H, ...) the way they do; 14.0 would call them "other".

Classes (one per code point; the regex alternatives never overlap):
  Letter = general category L* (Lu Ll Lt Lm Lo)       -> \\p{L}
  Number = general category N* (Nd Nl No)             -> \\p{N}
  Space  = property White_Space (PropList.txt)        -> \\s
  Other  = everything else, unassigned code points included
No White_Space code point is a letter or a number, which the script checks.
"""

import argparse
import os
import sys
import unicodedata

OTHER, LETTER, NUMBER, SPACE = 0, 1, 2, 3
CLASS_NAMES = ["Other", "Letter", "Number", "Space"]
MAX_CP = 0x110000
BLOCK = 256  # code points per stage-2 block: cp >> 8 picks the block


def classes_from_ucd(ucd_dir):
    """Reads UnicodeData.txt (with its First/Last range pairs) and PropList.txt."""
    cls = bytearray(MAX_CP)
    range_start = None
    with open(os.path.join(ucd_dir, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fields = line.split(";")
            cp, name, cat = int(fields[0], 16), fields[1], fields[2]
            value = LETTER if cat[0] == "L" else NUMBER if cat[0] == "N" else OTHER
            if name.endswith(", First>"):
                range_start = cp
                continue
            first = range_start if name.endswith(", Last>") else cp
            range_start = None
            for c in range(first, cp + 1):
                cls[c] = value
    with open(os.path.join(ucd_dir, "PropList.txt"), encoding="utf-8") as f:
        for line in f:
            data = line.split("#", 1)[0].strip()
            if not data:
                continue
            cps, prop = (part.strip() for part in data.split(";"))
            if prop != "White_Space":
                continue
            lo, _, hi = cps.partition("..")
            for c in range(int(lo, 16), int(hi or lo, 16) + 1):
                if cls[c] != OTHER:
                    sys.exit(f"U+{c:04X} is White_Space and {CLASS_NAMES[cls[c]]}")
                cls[c] = SPACE
    return cls


def ucd_version(ucd_dir):
    """The version named on DerivedAge.txt's first line ("# DerivedAge-15.0.0.txt")."""
    try:
        with open(os.path.join(ucd_dir, "DerivedAge.txt"), encoding="utf-8") as f:
            return f.readline().split("-", 1)[1].rsplit(".txt", 1)[0]
    except (OSError, IndexError):
        return "(unknown version)"


def classes_from_python():
    # White_Space is not exposed by unicodedata; this is its fixed list (it has
    # not changed since Unicode 6.3), checked against str.isspace() below.
    white_space = [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                   0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
    cls = bytearray(MAX_CP)
    for c in range(MAX_CP):
        cat = unicodedata.category(chr(c))
        cls[c] = LETTER if cat[0] == "L" else NUMBER if cat[0] == "N" else OTHER
    for c in white_space:
        cls[c] = SPACE
    return cls


def check(cls):
    """Sanity checks against Python's unicodedata for code points both know."""
    for c in range(MAX_CP):
        cat = unicodedata.category(chr(c))
        if cat == "Cn" or cls[c] == SPACE:
            continue
        want = LETTER if cat[0] == "L" else NUMBER if cat[0] == "N" else OTHER
        if cls[c] != want:
            print(f"note: U+{c:04X} is {CLASS_NAMES[cls[c]]} here, {cat} in Python's "
                  f"Unicode {unicodedata.unidata_version}", file=sys.stderr)
    for c in (0x20, 0x09, 0x0A, 0x0D, 0x85, 0xA0, 0x3000):
        assert cls[c] == SPACE, hex(c)
    for c in (0x200B, 0xFEFF, 0x180E):  # zero-width space, BOM, Mongolian vowel separator
        assert cls[c] == OTHER, hex(c)


def two_stage(cls):
    blocks, index, stage1 = [], {}, []
    for start in range(0, MAX_CP, BLOCK):
        block = bytes(cls[start:start + BLOCK])
        if block not in index:
            index[block] = len(blocks)
            blocks.append(block)
        stage1.append(index[block])
    return stage1, blocks


def render(stage1, blocks, source):
    if len(blocks) > 256:  # unicode_tables.h declares stage 1 as uint8_t
        sys.exit(f"{len(blocks)} distinct blocks do not fit a uint8_t stage-1 index")
    out = [
        "// GENERATED by tools/gen_unicode_tables.py -- do not edit by hand.",
        f"// Source: {source}.",
        "// Character classes of the GPT-2 pre-tokenizer regex (see unicode_tables.h):",
        "// 0 = Other, 1 = Letter (\\p{L}), 2 = Number (\\p{N}), 3 = Space (\\s).",
        '#include "tokenizer/unicode_tables.h"',
        "",
        "namespace gptneo::tok {",
        "",
        f"const uint8_t kClassStage1[{len(stage1)}] = {{",
    ]
    for i in range(0, len(stage1), 24):
        out.append("  " + ", ".join(str(v) for v in stage1[i:i + 24]) + ",")
    out.append("};")
    out.append("")
    out.append(f"const uint8_t kClassStage2[{len(blocks)}][{BLOCK}] = {{")
    for block in blocks:
        out.append("  {")
        for i in range(0, BLOCK, 64):
            out.append("    " + ",".join(str(v) for v in block[i:i + 64]) + ",")
        out.append("  },")
    out.append("};")
    out.append("")
    out.append("}  // namespace gptneo::tok")
    return "\n".join(out) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ucd", default="/usr/share/unicode")
    parser.add_argument("-o", "--output",
                        default=os.path.join(here, "..", "src", "tokenizer", "unicode_tables.cpp"))
    args = parser.parse_args()

    if os.path.exists(os.path.join(args.ucd, "UnicodeData.txt")):
        cls = classes_from_ucd(args.ucd)
        source = f"Unicode {ucd_version(args.ucd)} Character Database (UnicodeData.txt, PropList.txt)"
    else:
        print(f"warning: no UCD files in {args.ucd}; using Python's unicodedata "
              f"(Unicode {unicodedata.unidata_version})", file=sys.stderr)
        cls = classes_from_python()
        source = f"Python unicodedata, Unicode {unicodedata.unidata_version}"
    check(cls)
    stage1, blocks = two_stage(cls)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(render(stage1, blocks, source))
    print(f"wrote {args.output}: {len(blocks)} blocks, {source}", file=sys.stderr)


if __name__ == "__main__":
    main()
