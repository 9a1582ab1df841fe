#!/usr/bin/python3
"""Trains fortune-lm: a small Qwen2-architecture causal LM on the fortune cookies Debian ships
(packages fortunes + fortunes-min, /usr/share/games/fortunes), with a byte-level BPE trained
here. Writes a Hugging Face folder (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json) that `apr import` turns into APR, plus metrics.json,
tokenizer_check.jsonl (texts and the ids this tokenizer gives them, for apr's tests) and
heldout.txt (the held-out fortunes, for `apr eval`).

Half of the training documents are ChatML conversations (a user asks for a fortune, maybe on a
topic; the assistant answers with one), half are plain fortunes ending in <|endoftext|>, so the
model both chats (`apr chat`) and continues text (`apr run`).

Usage: /usr/bin/python3 tools/train/train_lm.py OUT_DIR [--steps N]
"""
import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
import unicodedata

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import safetensors_io  # noqa: E402

FORTUNE_DIR = "/usr/share/games/fortunes"
# ASCII drawings are not text; two files are mostly jokes about groups of people.
EXCLUDED = {"art", "ascii-art", "ethnic", "men-women"}
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
SYSTEM = "You are a fortune cookie. Answer with a fortune."
TOPICS = {
    "computers": "computers", "debian": "Debian", "definitions": "words", "drugs": "drugs", "education": "school",
    "food": "food", "goedel": "logic", "humorists": "humor", "kids": "kids", "law": "the law", "linux": "Linux",
    "linuxcookie": "Linux", "literature": "books", "love": "love", "magic": "magic", "medicine": "medicine",
    "news": "the news", "paradoxum": "paradoxes", "people": "people", "perl": "Perl", "pets": "pets",
    "politics": "politics", "riddles": "riddles", "science": "science", "songs-poems": "poems", "sports": "sports",
    "startrek": "Star Trek", "tao": "the Tao", "wisdom": "wisdom", "work": "work", "zippy": "Zippy",
}
TOPIC_PROMPTS = ["Tell me something about {}.", "Say something about {}.", "Give me a quote about {}.",
                 "What do you know about {}?", "Tell me a fortune about {}.", "I want to hear about {}."]
GENERIC_PROMPTS = ["Tell me a fortune.", "What is my fortune?", "Say something wise.", "Give me a quote.", "Cheer me up.",
                   "Hello!", "Tell me something.", "Make me think.", "What do you have for me today?", "Any advice?"]
CHAT_TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                 "{{ '<|im_start|>system\\n" + SYSTEM + "<|im_end|>\\n' }}{% endif %}"
                 "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def read_fortunes():
    """(category, text) of every fortune kept, deduplicated, in a fixed order."""
    seen = set()
    out = []
    for name in sorted(os.listdir(FORTUNE_DIR)):
        path = os.path.join(FORTUNE_DIR, name)
        if "." in name or name in EXCLUDED or os.path.islink(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            entries = f.read().split("\n%\n")
        for entry in entries:
            # indentation (tabs, spaces) is layout, not text: each line is stripped and its runs of blanks collapsed
            lines = (" ".join(line.split()) for line in unicodedata.normalize("NFC", entry).split("\n"))
            text = "\n".join(line for line in lines if line)
            if not (16 <= len(text) <= 600) or text in seen:
                continue
            seen.add(text)
            out.append((name, text))
    return out


def held_out(text):
    """5% of the fortunes, chosen by a hash of their text (stable across runs and machines)."""
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % 20 == 0


def render(category, text, rng):
    if rng.random() < 0.5:
        return text + "<|endoftext|>"
    topic = TOPICS.get(category)
    prompt = rng.choice(TOPIC_PROMPTS).format(topic) if topic and rng.random() < 0.7 else rng.choice(GENERIC_PROMPTS)
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n"
            f"<|im_start|>assistant\n{text}<|im_end|>\n<|endoftext|>")


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Layer(nn.Module):
    """One Qwen2 decoder layer (names as Hugging Face's Qwen2 so the state dict exports as is)."""

    def __init__(self, c):
        super().__init__()
        d, h, kv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        hd = d // h
        self.h, self.kv, self.hd = h, kv, hd
        self.self_attn = nn.Module()
        self.self_attn.q_proj = nn.Linear(d, h * hd)
        self.self_attn.k_proj = nn.Linear(d, kv * hd)
        self.self_attn.v_proj = nn.Linear(d, kv * hd)
        self.self_attn.o_proj = nn.Linear(h * hd, d, bias=False)
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(d, c["intermediate_size"], bias=False)
        self.mlp.up_proj = nn.Linear(d, c["intermediate_size"], bias=False)
        self.mlp.down_proj = nn.Linear(c["intermediate_size"], d, bias=False)
        self.input_layernorm = RMSNorm(d, c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(d, c["rms_norm_eps"])
        self.dropout = nn.Dropout(0.1)  # on each residual branch, in training only

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        a = self.self_attn
        y = self.input_layernorm(x)
        q = a.q_proj(y).view(b, t, self.h, self.hd).transpose(1, 2)
        k = a.k_proj(y).view(b, t, self.kv, self.hd).transpose(1, 2)
        v = a.v_proj(y).view(b, t, self.kv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.h // self.kv, dim=1)
        v = v.repeat_interleave(self.h // self.kv, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask[:t, :t]
        x = x + self.dropout(a.o_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1)))
        m = self.mlp
        y = self.post_attention_layernorm(x)
        return x + self.dropout(m.down_proj(F.silu(m.gate_proj(y)) * m.up_proj(y)))


class Qwen2(nn.Module):
    def __init__(self, c, context):
        super().__init__()
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.model.layers = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.model.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        hd = c["hidden_size"] // c["num_attention_heads"]
        inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        angles = torch.outer(torch.arange(context, dtype=torch.float64), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)
        self.register_buffer("mask", torch.full((context, context), float("-inf")).triu(1), persistent=False)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, self.cos[:t], self.sin[:t], self.mask)
        return self.model.norm(x) @ self.model.embed_tokens.weight.T  # tied lm_head


def windows(stream, length):
    n = len(stream) // length
    return torch.tensor(stream[: n * length], dtype=torch.long).view(n, length)


@torch.no_grad()
def heldout_nll(model, eval_windows, batch=16):
    """Mean NLL over every target of non-overlapping windows (the first token of each is context only)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(eval_windows), batch):
        w = eval_windows[i:i + batch]
        logits = model(w[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum").item()
        count += w[:, 1:].numel()
    model.train()
    return total / count, count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    start = time.time()

    fortunes = read_fortunes()
    train_set = [(c, t) for c, t in fortunes if not held_out(t)]
    test_set = [(c, t) for c, t in fortunes if held_out(t)]
    corpus_hash = hashlib.sha256("\n%\n".join(t for _, t in fortunes).encode()).hexdigest()
    print(f"{len(fortunes)} fortunes ({len(train_set)} train, {len(test_set)} held out), corpus sha256 {corpus_hash[:16]}", flush=True)

    chat_words = [SYSTEM] + GENERIC_PROMPTS + [p.format(t) for p in TOPIC_PROMPTS for t in sorted(set(TOPICS.values()))]
    merges = bpe.train([t for _, t in train_set] + ["user", "assistant", "system"] * 200 + chat_words * 20, 4096, len(SPECIALS))
    tok = bpe.Tokenizer(merges, SPECIALS)
    print(f"tokenizer: {tok.vocab_size} ids ({len(merges)} merges), {time.time() - start:.0f} s", flush=True)
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(tok.to_json())
    eot = tok.special_ids["<|endoftext|>"]
    im_end = tok.special_ids["<|im_end|>"]

    context = 256  # training window: the model knows no later positions, so it is also max_position_embeddings
    config = {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": tok.vocab_size, "hidden_size": 192,
        "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 6, "num_key_value_heads": 2,
        "max_position_embeddings": context, "rope_theta": 10000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
        "hidden_act": "silu", "use_sliding_window": False, "bos_token_id": eot, "eos_token_id": [im_end, eot],
        "torch_dtype": "float32",
    }
    model = Qwen2(config, context)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params} parameters", flush=True)

    test_stream = []
    for _, text in test_set:
        test_stream += [eot] + tok.encode(text)
    test_stream.append(eot)
    eval_windows = windows(test_stream, context)

    # unigram baseline: add-one smoothed frequencies of the training fortunes' tokens (same format as the test stream)
    counts = np.ones(tok.vocab_size)
    train_plain = 0
    for _, text in train_set:
        ids = tok.encode(text) + [eot]
        np.add.at(counts, ids, 1)
        train_plain += len(ids)
    log_p = np.log(counts / counts.sum())
    scored = eval_windows[:, 1:].reshape(-1).numpy()
    unigram_nll = float(-log_p[scored].mean())

    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)
    warmup, batch = 30, 16
    epoch, queue = 0, []
    log = []
    for step in range(args.steps):
        if len(queue) < batch:
            order = train_set[:]
            rng.shuffle(order)
            stream = []
            for category, text in order:
                stream += tok.encode(render(category, text, rng))
            epoch_windows = windows(stream, context + 1)
            queue += [epoch_windows[i] for i in torch.randperm(len(epoch_windows)).tolist()]
            epoch += 1
        x = torch.stack(queue[:batch])
        del queue[:batch]
        lr = 2e-3 * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0 or step == args.steps - 1:
            nll, _ = heldout_nll(model, eval_windows[:24])
            log.append({"step": step, "epoch": epoch, "train_loss": round(loss.item(), 4), "heldout_ppl_subset": round(math.exp(nll), 2)})
            print(f"step {step} epoch {epoch} loss {loss.item():.3f} held-out ppl (subset) {math.exp(nll):.1f} "
                  f"lr {lr:.2e} {time.time() - start:.0f} s", flush=True)
    train_seconds = time.time() - start
    nll, scored_count = heldout_nll(model, eval_windows)
    print(f"held-out perplexity {math.exp(nll):.2f} vs unigram {math.exp(unigram_nll):.2f} over {scored_count} tokens", flush=True)

    tensors = {name: p.detach().numpy() for name, p in model.state_dict().items()}
    safetensors_io.write(os.path.join(args.out, "model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump({"chat_template": CHAT_TEMPLATE, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "bos_token": None,
                   "unk_token": None, "model_max_length": context}, f, indent=1)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": eot, "eos_token_id": [im_end, eot], "temperature": 0.7, "top_p": 0.9}, f, indent=1)

    # texts with this tokenizer's ids, so apr's tests can check they tokenize identically
    checks = [t for _, t in test_set[:150]] + [
        "Hello, world!  Multiple   spaces\tand tabs\n\nnewlines.", "Caf\u00e9 na\u0308ive \u00fcber \u4e2d\u6587 \U0001F600 emoji",
        "It's 3.14159 o'clock; we'll see -- they're done.", "<|im_start|>user\nHi<|im_end|>\n", "   leading and trailing   "]
    with open(os.path.join(args.out, "tokenizer_check.jsonl"), "w", encoding="utf-8") as f:
        for text in checks:
            f.write(json.dumps({"text": text, "ids": tok.encode(text)}, ensure_ascii=False) + "\n")
    # the held-out fortunes as plain text (each ends in <|endoftext|>, as in training), for `apr eval`
    with open(os.path.join(args.out, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write("".join(text + "<|endoftext|>" for _, text in test_set))
    with open(os.path.join(args.out, "heldout_ids.json"), "w") as f:
        json.dump(eval_windows[:8].reshape(-1).tolist(), f)
    nll8, _ = heldout_nll(model, eval_windows[:8])
    metrics = {
        "corpus": {"source": FORTUNE_DIR + " (Debian packages fortunes, fortunes-min 1:1.99.1-7.3)", "excluded": sorted(EXCLUDED),
                   "fortunes": len(fortunes), "train": len(train_set), "heldout": len(test_set), "sha256": corpus_hash,
                   "train_tokens_per_epoch_plain": train_plain},
        "tokenizer": {"vocab_size": tok.vocab_size, "merges": len(merges), "specials": SPECIALS},
        "model": config, "parameters": params, "context": context, "steps": args.steps, "batch": batch, "epochs_started": epoch,
        "seed": args.seed, "train_seconds": round(train_seconds), "torch": torch.__version__,
        "heldout": {"tokens": scored_count, "perplexity": round(math.exp(nll), 3), "unigram_perplexity": round(math.exp(unigram_nll), 3),
                    "first8_windows_perplexity": round(math.exp(nll8), 4)},
        "log": log,
    }
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    print(f"done in {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
