#!/usr/bin/env python3
"""Writes a random text that stresses the GPT-2 pre-tokenizer: letters,
numbers, combining marks, whitespace and symbols from every script that
Python's Unicode database (14.0) knows, mixed with contractions, runs of
spaces and special-token look-alikes.

    python3 make_mixed_text.py OUT.txt [N_PIECES] [SEED]

U+0085 and U+FEFF are left out: JavaScript's \\s (used by js-tiktoken, the
cross-check) disagrees with Unicode's White_Space (used by the tokenizers
library and by gptneo) on exactly those two. Code points assigned after
Unicode 14 are left out because the engines' Unicode versions differ there.
"""
import random
import sys
import unicodedata

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
random.seed(int(sys.argv[3]) if len(sys.argv) > 3 else 5)

assigned = [c for c in range(0x110000)
            if unicodedata.category(chr(c)) not in ("Cn", "Cs") and c not in (0x85, 0xFEFF)]
def of_category(prefixes):
    return [c for c in assigned if unicodedata.category(chr(c))[0] in prefixes]
letters, numbers, marks = of_category("L"), of_category("N"), of_category("M")
spaces = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0xA0, 0x1680, 0x2000, 0x2005, 0x200A, 0x2028,
          0x2029, 0x202F, 0x205F, 0x3000]
others = [c for c in of_category("PSZC") if c not in spaces]
fragments = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'x", " '", "''s", "  ", "   ",
             "\n\n", " \n", " 123", "<|endoftext|>", "<|endof"]

pieces = []
for _ in range(count):
    r = random.random()
    if r < 0.25: pieces.append(chr(random.choice(letters)))
    elif r < 0.35: pieces.append(chr(random.choice(numbers)))
    elif r < 0.45: pieces.append(chr(random.choice(marks)))
    elif r < 0.60: pieces.append(chr(random.choice(spaces)))
    elif r < 0.72: pieces.append(chr(random.choice(others)))
    elif r < 0.85: pieces.append(random.choice(fragments))
    elif r < 0.95: pieces.append(random.choice("abcdefghij XYZ 0123 .,;!?'\"-"))
    else: pieces.append(chr(random.choice(assigned)))
with open(out, "w", encoding="utf-8") as f:
    f.write("".join(pieces))
