#!/usr/bin/python3
"""Writes tekken-micro.json, a small Tekken tokenizer in the layout of Mistral's tekken.json
(base64 token bytes by rank, special tokens first, ids = rank + default_num_special_tokens),
sized for the voxtral-micro fixture (1024 ids), and tekken-micro.jsonl, texts with the ids a
plain rank-BPE (tools/train/bpe.py, GPT-2's split pattern, which the file also names) gives them.
The ranks are BPE merges learnt from a few English sentences, then pairs of letters and digits.
Run from anywhere: /usr/bin/python3 tests/text/data/make_tekken.py
"""
import base64
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "tools", "train"))
import bpe  # noqa: E402

SPECIALS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"] + [f"<SPECIAL_{i}>" for i in range(5, 24)] + ["[AUDIO]", "[BEGIN_AUDIO]"] + \
           [f"<SPECIAL_{i}>" for i in range(26, 32)] + ["[STREAMING_PAD]", "[STREAMING_WORD]"]
NUM_SPECIAL = 100
VOCAB_SIZE = 1024
CORPUS = """The quick brown fox jumps over the lazy dog. Hello world, this is a test of the streaming speech recogniser.
She sells sea shells by the sea shore; the shells she sells are surely seashells. Numbers like 2024 and 3.14 appear too.
A journey of a thousand miles begins with a single step. To be or not to be, that is the question.
Peter Piper picked a peck of pickled peppers. How much wood would a woodchuck chuck if a woodchuck could chuck wood?
It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.
All happy families are alike; each unhappy family is unhappy in its own way. Call me Ishmael.
""" * 3


def main():
    words = [" " + w for w in CORPUS.split()] + CORPUS.splitlines()
    merges = bpe.train(words, VOCAB_SIZE - NUM_SPECIAL, 0)
    # the corpus yields fewer merges than the ids to fill: pairs of letters and digits come next
    have = {a + b for a, b in merges}
    alphabet = [bytes([c]) for c in b"abcdefghijklmnopqrstuvwxyz0123456789"]
    for a in alphabet:
        for b in alphabet:
            if len(merges) < VOCAB_SIZE - NUM_SPECIAL - 256 and a + b not in have:
                merges.append((a, b))
                have.add(a + b)
    tok = bpe.Tokenizer(merges, [])
    ranks = len(tok.token_bytes)
    vocab = [{"rank": r, "token_bytes": base64.b64encode(t).decode(), "token_str": t.decode("utf-8", errors="replace")}
             for r, t in enumerate(tok.token_bytes)]
    document = {
        "config": {"pattern": bpe.SPLIT_PATTERN, "num_vocab_tokens": ranks, "default_vocab_size": NUM_SPECIAL + ranks,
                   "default_num_special_tokens": NUM_SPECIAL, "version": "v13"},
        "vocab": vocab,
        "special_tokens": [{"rank": i, "token_str": s, "is_control": True} for i, s in enumerate(SPECIALS)],
    }
    with open(os.path.join(here, "tekken-micro.json"), "w", encoding="utf-8") as f:
        json.dump(document, f, ensure_ascii=False)
    with open(os.path.join(here, "tekken-micro.jsonl"), "w", encoding="utf-8") as f:
        for text in ["Hello world", " the quick brown fox", "Numbers like 2024 and 3.14", "unseen: zebra quartz ☃ café",
                     "It was the best of times.\nCall me Ishmael."]:
            f.write(json.dumps({"text": text, "ids": [i + NUM_SPECIAL for i in tok.encode(text)]}, ensure_ascii=False) + "\n")
    print(f"{ranks} ranks + {NUM_SPECIAL} special tokens = {NUM_SPECIAL + ranks} ids")


if __name__ == "__main__":
    main()
