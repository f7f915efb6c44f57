#!/usr/bin/env python3
"""Builds the small evaluation task files in this folder from corpus-val.txt.

corpus-val.txt holds the 300 documents that models/neo-mini did not train on,
so the tasks measure held-out text. The output is deterministic (fixed seed);
rerun with `python3 tests/data/eval/make_tasks.py` from the repository root.

  lambada-val.jsonl    lambada: passages ending with a word to predict
  docs-val.jsonl       perplexity: whole documents (some longer than 1024 tokens)
  choice-val.jsonl     multiple_choice: which of 4 spans continues a passage
  cloze-val.jsonl      multiple_choice, Winogrande's shape: which of 2 words
                       fills a blank, scored on the rest of the sentence
"""
import json
import random
import re

HERE = "tests/data/eval"
rng = random.Random(2024)
docs = open("tests/data/corpus-val.txt", encoding="utf-8").read().split("\n<|endoftext|>\n")
# Prose documents: mostly words, at least a few sentences.
words_of = [d.split() for d in docs]
prose = [w for w in words_of if len(w) >= 60 and sum(x.isalpha() for x in w) > 0.7 * len(w)]
WORD = re.compile(r"^[A-Za-z]{3,}$")


def write(name, rows):
    with open(f"{HERE}/{name}", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def lambada(n):
    rows = []
    while len(rows) < n:
        w = rng.choice(prose)
        start = rng.randrange(0, len(w) - 50)
        length = rng.randrange(25, 50)
        span = w[start:start + length]
        # End on a plain word, as LAMBADA passages do.
        while span and not WORD.match(span[-1]):
            span.pop()
        if len(span) >= 20:
            rows.append({"text": " ".join(span)})
    return rows


def documents():
    picked = sorted(rng.sample(range(len(docs)), 24)) + [44, 183]  # two long ones
    return [{"text": docs[i]} for i in sorted(set(picked))]


def choices(n):
    rows = []
    while len(rows) < n:
        w = rng.choice(prose)
        start = rng.randrange(0, len(w) - 45)
        context = " ".join(w[start:start + 25])
        spans = [" ".join(w[start + 25:start + 25 + rng.randrange(5, 12)])]
        while len(spans) < 4:
            o = rng.choice(prose)
            s = rng.randrange(0, len(o) - 12)
            spans.append(" ".join(o[s:s + rng.randrange(5, 12)]))
        gold = rng.randrange(4)
        spans[0], spans[gold] = spans[gold], spans[0]
        rows.append({"context": context, "choices": spans, "gold": gold})
    return rows


def cloze(n):
    rows = []
    while len(rows) < n:
        w = rng.choice(prose)
        start = rng.randrange(0, len(w) - 30)
        sent = w[start:start + 30]
        slots = [i for i in range(8, 22) if WORD.match(sent[i])]
        if not slots:
            continue
        i = rng.choice(slots)
        other = rng.choice([x for x in rng.choice(prose) if WORD.match(x)] or ["thing"])
        if other == sent[i]:
            continue
        options = [sent[i], other]
        gold = rng.randrange(2)
        options[0], options[1] = options[gold], options[1 - gold]
        before = " ".join(sent[:i]) + " "
        rows.append({"contexts": [before + o for o in options], "continuation": " ".join(sent[i + 1:]), "gold": gold})
    return rows


write("lambada-val.jsonl", lambada(200))
write("docs-val.jsonl", documents())
write("choice-val.jsonl", choices(100))
write("cloze-val.jsonl", cloze(100))
