"""Byte-level BPE: training on a word-frequency table, encoding, and the Hugging Face
tokenizer.json that apr's loader (include/apr/text/tokenizer.hpp) reads.

Ids 0-255 are the single bytes (id = byte value), merges follow in rank order, added tokens
come last. Text is NFC-normalised and split with GPT-2's pattern before BPE, as apr does.
"""
import collections
import heapq
import json
import unicodedata

import regex

# GPT-2's split pattern; the same string goes into tokenizer.json, where apr compiles it with PCRE2.
SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_SPLIT = regex.compile(SPLIT_PATTERN)


def byte_alphabet():
    """GPT-2's reversible byte -> printable character map (tokens are stored in this form)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = {}
    shift = 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + shift)
            shift += 1
    return chars


BYTE_CHARS = byte_alphabet()


def pieces(text):
    """The pre-tokenized pieces of `text` (NFC first), as bytes."""
    return [m.encode("utf-8") for m in _SPLIT.findall(unicodedata.normalize("NFC", text))]


def merge_pair(word, pair, new_id):
    """`word` (a list of ids) with every non-overlapping occurrence of `pair`, left to right, replaced by `new_id`."""
    merged = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            merged.append(new_id)
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return merged


def train(texts, vocab_size, n_special):
    """Merges (pairs of token byte strings, in rank order) so that 256 + merges + n_special = vocab_size.

    Counts pieces once, then merges the most frequent adjacent pair (ties: smallest pair of
    ids) with incremental pair counts, so only words containing the pair are revisited."""
    n_tokens = vocab_size - n_special
    word_counts = collections.Counter()
    for text in texts:
        word_counts.update(pieces(text))
    words = [list(w) for w in word_counts]
    counts = [word_counts[w] for w in word_counts]
    token_bytes = [bytes([b]) for b in range(256)]
    token_ids = {t: i for i, t in enumerate(token_bytes)}
    pair_counts = collections.defaultdict(int)
    where = collections.defaultdict(set)
    for index, word in enumerate(words):
        for a, b in zip(word, word[1:]):
            pair_counts[(a, b)] += counts[index]
            where[(a, b)].add(index)
    heap = [(-c, pair) for pair, c in pair_counts.items()]
    heapq.heapify(heap)
    merges = []
    while len(token_bytes) < n_tokens and heap:
        negative, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative or -negative <= 0:
            continue  # stale entry
        joined = token_bytes[pair[0]] + token_bytes[pair[1]]
        if joined not in token_ids:  # two merges may spell the same token ("ab"+"c", "a"+"bc")
            token_ids[joined] = len(token_bytes)
            token_bytes.append(joined)
        new_id = token_ids[joined]
        merges.append(pair)
        touched = collections.defaultdict(int)
        for index in where.pop(pair):
            word, count = words[index], counts[index]
            for a, b in zip(word, word[1:]):
                touched[(a, b)] -= count
            merged = merge_pair(word, pair, new_id)
            words[index] = merged
            for a, b in zip(merged, merged[1:]):
                touched[(a, b)] += count
                where[(a, b)].add(index)
        for p, delta in touched.items():
            if delta == 0:
                continue
            pair_counts[p] += delta
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
        pair_counts.pop(pair, None)
    return [(token_bytes[a], token_bytes[b]) for a, b in merges]


class Tokenizer:
    """Encoder/decoder over `merges` with `specials` (strings) after them."""

    def __init__(self, merges, specials):
        self.merges = merges
        self.specials = list(specials)
        self.token_bytes = [bytes([b]) for b in range(256)]
        self.ids = {t: i for i, t in enumerate(self.token_bytes)}
        for a, b in merges:
            if a + b not in self.ids:
                self.ids[a + b] = len(self.token_bytes)
                self.token_bytes.append(a + b)
        self.special_ids = {s: len(self.token_bytes) + i for i, s in enumerate(self.specials)}
        self.rank = {(self.ids[a], self.ids[b]): r for r, (a, b) in enumerate(merges)}
        self._special_split = regex.compile("(" + "|".join(regex.escape(s) for s in self.specials) + ")") if specials else None
        self._cache = {}

    @property
    def vocab_size(self):
        return len(self.token_bytes) + len(self.specials)

    def _encode_piece(self, piece):
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        word = list(piece)
        while len(word) > 1:
            best = min(range(len(word) - 1), key=lambda i: self.rank.get((word[i], word[i + 1]), 1 << 30))
            pair = (word[best], word[best + 1])
            if pair not in self.rank:
                break
            new_id = self.ids[self.token_bytes[pair[0]] + self.token_bytes[pair[1]]]
            word = merge_pair(word, pair, new_id)
        self._cache[piece] = word
        return word

    def encode(self, text):
        """Ids of `text`; special tokens written in it become their ids."""
        out = []
        parts = self._special_split.split(text) if self._special_split else [text]
        for part in parts:
            if part in self.special_ids:
                out.append(self.special_ids[part])
            elif part:
                for piece in pieces(part):
                    out.extend(self._encode_piece(piece))
        return out

    def decode(self, ids):
        data = b"".join(self.token_bytes[i] if i < len(self.token_bytes) else self.specials[i - len(self.token_bytes)].encode() for i in ids)
        return data.decode("utf-8", errors="replace")

    def to_json(self):
        """Hugging Face tokenizer.json text (BPE model, NFC, Split + ByteLevel, ByteLevel decoder)."""
        as_text = lambda b: "".join(BYTE_CHARS[x] for x in b)
        vocab = {as_text(t): i for i, t in enumerate(self.token_bytes)}
        added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
                 for s, i in self.special_ids.items()]
        document = {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": SPLIT_PATTERN}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
            "post_processor": None,
            "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                      "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                      "merges": [as_text(a) + " " + as_text(b) for a, b in self.merges]},
        }
        return json.dumps(document, ensure_ascii=False, indent=1)
