#!/usr/bin/python3
"""Trains speech-commands: a tiny Whisper-architecture model on digit strings and short English
commands spoken by espeak-ng (speech_data.py). Writes a Hugging Face folder (config.json,
model.safetensors with the mel filterbank as audio.mel_filters, tokenizer.json with Whisper's
special tokens after a small byte-level BPE) that `apr import` turns into APR, metrics.json,
and held-out WAV clips with their reference text.

Targets follow Whisper's format: <|startoftranscript|><|en|><|transcribe|>, then either
<|notimestamps|> text or <|t0|> text <|t1|>, then <|endoftext|>; inputs are log-mel windows as
apr's transcribe builds them (audio frames, then zeros; sometimes the log floor, as in its
language-detection window). The encoder has 400 positions: 8 s windows instead of Whisper's
30 s (every clip is shorter than 6 s), which makes a training step ~4x cheaper and lets every
step see the windows apr feeds.

Training is data parallel over two processes of one thread each (gloo all-reduce of the
gradients): on 2 cores that runs 1.6x faster than one process with two threads, whose small
matmuls and elementwise kernels scale badly.

Usage: /usr/bin/python3 tools/train/train_whisper.py OUT_DIR [--steps N] [--train-clips N]
"""
import os

# One BLAS thread per process, set before numpy and torch load OpenBLAS: each training rank owns a
# core, and OpenBLAS threads under torch's own threads oversubscribe the two cores (1.6x slower).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import wave  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# Debian's torch 1.13 runs conv1d's backward through oneDNN (mkldnn), which on this AMD EPYC
# machine (a VM exposing AVX2) returns gradients with values of 1e17 and NaN now and then; clipping
# then zeroes or poisons the step, and no run learned anything. PyTorch's own conv kernels are
# correct (64 clips: CTC loss 52 -> 0.6 in 125 steps, where oneDNN's stayed at the blank plateau or
# went NaN).
torch.backends.mkldnn.enabled = False

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import safetensors_io  # noqa: E402
import speech_data  # noqa: E402

LANGUAGES = ["en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id", "hi", "fi", "vi",
             "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk",
             "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
             "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo",
             "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su"]
SPECIALS = (["<|endoftext|>", "<|startoftranscript|>"] + [f"<|{c}|>" for c in LANGUAGES] +
            ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"] +
            [f"<|{i * 0.02:.2f}|>" for i in range(1501)])


def make_clip(job):
    """(index, seed, text, keep audio) -> (int16 audio or None, settings, log-mel float16, voiced span).

    The span is the first and last sample above 2% of the peak, in 20 ms timestamp steps."""
    index, seed, text, keep_audio = job
    rng = random.Random(seed * 1_000_003 + index)
    audio, settings = speech_data.clip(rng, text, np.random.default_rng(seed * 1_000_003 + index))
    voiced = np.nonzero(np.abs(audio) > 0.02 * np.abs(audio).max())[0]
    span = (round(voiced[0] / speech_data.SAMPLE_RATE / 0.02), round(voiced[-1] / speech_data.SAMPLE_RATE / 0.02))
    return audio if keep_audio else None, settings, speech_data.log_mel(audio, FILTERS).astype(np.float16), span


FILTERS = speech_data.mel_filterbank(80)
SOURCE_POSITIONS = speech_data.WINDOW_FRAMES // 2
RANKS = 2  # data-parallel training processes, one thread each
PEAK_LR = 2e-3
FULL_WINDOW_SHARE = 0.25  # the share of steps that see whole 8 s windows; the others are cut after their longest clip
CTC_WEIGHT = 0.3


def sinusoids(length, channels):
    """Whisper's fixed encoder positions: sin and cos of geometric timescales 1 … 10000."""
    increment = math.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-increment * torch.arange(channels // 2, dtype=torch.float64))
    t = torch.arange(length, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cat([t.sin(), t.cos()], dim=1).float()


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x, source=None, mask=None):
        source = x if source is None else source
        b, t, d = x.shape
        hd = d // self.heads
        q = self.q_proj(x).view(b, t, self.heads, hd).transpose(1, 2)
        k = self.k_proj(source).view(b, source.shape[1], self.heads, hd).transpose(1, 2)
        v = self.v_proj(source).view(b, source.shape[1], self.heads, hd).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        if mask is not None:
            scores = scores + mask[:t, :t]
        return self.out_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d, heads, ffn, cross):
        super().__init__()
        self.self_attn = Attention(d, heads)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        if cross:
            self.encoder_attn = Attention(d, heads)
            self.encoder_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x, audio=None, mask=None):
        x = x + self.self_attn(self.self_attn_layer_norm(x), mask=mask)
        if audio is not None:
            x = x + self.encoder_attn(self.encoder_attn_layer_norm(x), source=audio)
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class Whisper(nn.Module):
    """Whisper with Hugging Face's tensor names (WhisperForConditionalGeneration, proj_out tied)."""

    def __init__(self, c):
        super().__init__()
        d = c["d_model"]
        self.model = nn.Module()
        enc = self.model.encoder = nn.Module()
        enc.conv1 = nn.Conv1d(c["num_mel_bins"], d, 3, padding=1)
        enc.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        enc.embed_positions = nn.Embedding(c["max_source_positions"], d)
        enc.embed_positions.weight.data.copy_(sinusoids(c["max_source_positions"], d))
        enc.embed_positions.weight.requires_grad_(False)
        enc.layers = nn.ModuleList(Block(d, c["encoder_attention_heads"], c["encoder_ffn_dim"], False) for _ in range(c["encoder_layers"]))
        enc.layer_norm = nn.LayerNorm(d)
        dec = self.model.decoder = nn.Module()
        dec.embed_tokens = nn.Embedding(c["vocab_size"], d)
        dec.embed_positions = nn.Embedding(c["max_target_positions"], d)
        dec.layers = nn.ModuleList(Block(d, c["decoder_attention_heads"], c["decoder_ffn_dim"], True) for _ in range(c["decoder_layers"]))
        dec.layer_norm = nn.LayerNorm(d)
        nn.init.normal_(dec.embed_tokens.weight, std=0.02)
        nn.init.normal_(dec.embed_positions.weight, std=0.01)
        t = c["max_target_positions"]
        self.register_buffer("mask", torch.full((t, t), float("-inf")).triu(1), persistent=False)

    def encode(self, mel):
        enc = self.model.encoder
        x = F.gelu(enc.conv2(F.gelu(enc.conv1(mel)))).transpose(1, 2)
        x = x + enc.embed_positions.weight[: x.shape[1]]
        for layer in enc.layers:
            x = layer(x)
        return enc.layer_norm(x)

    def decode(self, tokens, audio):
        dec = self.model.decoder
        x = dec.embed_tokens(tokens) + dec.embed_positions.weight[: tokens.shape[1]]
        for layer in dec.layers:
            x = layer(x, audio=audio, mask=self.mask)
        return dec.layer_norm(x) @ dec.embed_tokens.weight.T


def words(text):
    return "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.lower()).split()


def word_errors(reference, hypothesis):
    """Levenshtein distance between word lists (substitutions + deletions + insertions)."""
    r, h = words(reference), words(hypothesis)
    row = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        previous, row[0] = row[0], i
        for j in range(1, len(h) + 1):
            current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (r[i - 1] != h[j - 1]))
            previous = current
    return row[len(h)], len(r)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--train-clips", type=int, default=12000)
    parser.add_argument("--test-clips", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    start = time.time()

    # sentences: the held-out set is drawn first and never appears in training
    test_texts = []
    while len(test_texts) < args.test_clips:
        text = speech_data.sentence(rng)
        if text not in test_texts:
            test_texts.append(text)
    held = set(test_texts)
    train_texts = []
    while len(train_texts) < args.train_clips:
        text = speech_data.sentence(rng)
        if text not in held:
            train_texts.append(text)

    corpus = [" " + t for t in train_texts + test_texts] + [" " + w for w in " ".join(speech_data.ONES + speech_data.SHORT).split()]
    merges = bpe.train(corpus, 256 + 400 + len(SPECIALS), len(SPECIALS))
    tok = bpe.Tokenizer(merges, SPECIALS)
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(tok.to_json())
    print(f"tokenizer: {tok.vocab_size} ids ({len(tok.token_bytes)} BPE tokens), {time.time() - start:.0f} s", flush=True)

    # training clips keep only their log-mel (12,000 clips: ~0.5 GB); held-out clips keep their audio to be written out
    jobs = [(i, args.seed, t, False) for i, t in enumerate(train_texts)] + [(i, args.seed + 7919, t, True) for i, t in enumerate(test_texts)]
    with multiprocessing.Pool(RANKS) as pool:
        made = pool.map(make_clip, jobs, chunksize=32)
    train, test = made[: len(train_texts)], made[len(train_texts):]
    audio_seconds = sum(m.shape[1] for _, _, m, _ in train) * speech_data.HOP / speech_data.SAMPLE_RATE
    print(f"synthesised {len(made)} clips ({audio_seconds / 3600:.2f} h of training audio), {time.time() - start:.0f} s", flush=True)

    # the ranks are forked (they share the clips); torch has run no parallel region in this process yet
    with tempfile.TemporaryDirectory() as rendezvous:
        torch.multiprocessing.start_processes(train_rank, args=(RANKS, os.path.join(rendezvous, "gloo"), args, tok, train, train_texts, test,
                                                                test_texts, audio_seconds, start),
                                              nprocs=RANKS, start_method="fork")
    print(f"done in {time.time() - start:.0f} s", flush=True)


def train_rank(rank, ranks, rendezvous, args, tok, train, train_texts, test, test_texts, audio_seconds, start):
    """One data-parallel training process: every rank draws the same batches and trains on its share of each;
    the gradients are averaged over the ranks before every step. Rank 0 reports and writes the results."""
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=ranks)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)  # the same initial weights in every rank
    rng = random.Random(args.seed + 1)  # the same batches in every rank
    report = print if rank == 0 else (lambda *a, **k: None)
    sp = tok.special_ids
    eot, sot, en, transcribe, notimestamps, ts0 = (sp["<|endoftext|>"], sp["<|startoftranscript|>"], sp["<|en|>"], sp["<|transcribe|>"],
                                                   sp["<|notimestamps|>"], sp["<|0.00|>"])
    config = {
        "architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper", "d_model": 160, "encoder_layers": 2,
        "encoder_attention_heads": 4, "decoder_layers": 2, "decoder_attention_heads": 4, "encoder_ffn_dim": 640, "decoder_ffn_dim": 640,
        "num_mel_bins": 80, "max_source_positions": SOURCE_POSITIONS, "max_target_positions": 448, "vocab_size": tok.vocab_size,
        "decoder_start_token_id": sot, "eos_token_id": eot, "pad_token_id": eot, "bos_token_id": eot, "torch_dtype": "float32",
    }
    model = Whisper(config)
    params = sum(p.numel() for p in model.parameters())
    report(f"model: {params} parameters", flush=True)

    def example(item, text, with_timestamps, floor_padding, window_frames=speech_data.WINDOW_FRAMES):
        _, _, mel, (voiced_start, voiced_end) = item
        frames = mel.shape[1]
        window = np.zeros((80, window_frames), dtype=np.float32)
        if floor_padding:  # the padding's value after the clamp: (max - 8 + 4) / 4
            window[:] = float(mel.max()) - 2.0
        window[:, :frames] = mel[:, :window_frames]
        ids = tok.encode(" " + text)
        if with_timestamps:
            t0 = min(SOURCE_POSITIONS, voiced_start)
            t1 = min(SOURCE_POSITIONS, max(t0 + 1, voiced_end))
            seq = [sot, en, transcribe, ts0 + t0] + ids + [ts0 + t1, eot]
        else:
            seq = [sot, en, transcribe, notimestamps] + ids + [eot]
        return window, seq

    def batch_of(items):
        mels = torch.from_numpy(np.stack([m for m, _ in items]))
        length = max(len(s) for _, s in items)
        seqs = torch.full((len(items), length), -100, dtype=torch.long)
        for i, (_, s) in enumerate(items):
            seqs[i, : len(s)] = torch.tensor(s)
        inputs = seqs[:, :-1].clone()
        inputs[inputs < 0] = eot
        return mels, inputs, seqs[:, 1:]

    # An auxiliary CTC head on the encoder output (dropped at export) makes the encoder learn the
    # acoustics from the first steps; without it the decoder became a language model of the
    # command sentences and ignored the audio (greedy WER 130%).
    text_ids = len(tok.token_bytes)
    ctc_head = nn.Linear(config["d_model"], text_ids + 1)  # the last class is CTC's blank
    trained = [p for p in model.parameters() if p.requires_grad] + list(ctc_head.parameters())
    optimizer = torch.optim.AdamW(trained, lr=PEAK_LR, betas=(0.9, 0.98), weight_decay=0.05)
    # Most steps see windows cut just after their batch's longest clip (the encoder's cost is ~linear in frames);
    # a quarter see whole windows as apr feeds them, so the model also learns to ignore long zero padding.
    warmup, batch = 150, 16 * ranks
    longest = max(m.shape[1] for _, _, m, _ in train)
    assert longest <= speech_data.WINDOW_FRAMES, f"a clip has {longest} frames, more than a window"

    @torch.no_grad()
    def greedy(mel):
        audio = model.encode(torch.from_numpy(mel)[None])
        seq = [sot, en, transcribe, notimestamps]
        while len(seq) < 64:
            logits = model.decode(torch.tensor([seq]), audio)[0, -1]
            if int(logits.argmax()) == eot:
                break
            seq.append(int(logits[: len(tok.token_bytes)].argmax()))  # text tokens only
        return tok.decode(seq[4:]).strip()

    def evaluate(indices):
        """Greedy transcriptions of the held-out clips `indices`: [(index, word errors, words, result)]."""
        results = []
        for i in indices:
            window, _ = example(test[i], test_texts[i], False, False)
            hypothesis = greedy(window)
            e, n = word_errors(test_texts[i], hypothesis)
            results.append((i, e, n, {"reference": test_texts[i], "hypothesis": hypothesis, "errors": e, **test[i][1]}))
        return results

    order = []
    log = []
    for step in range(args.steps):
        full = rng.random() < FULL_WINDOW_SHARE
        if len(order) < batch:
            order += rng.sample(range(len(train)), len(train))
        picked = order[:batch]
        del order[:batch]
        frames = speech_data.WINDOW_FRAMES
        if not full:
            frames = min(frames, 64 * math.ceil((max(train[i][2].shape[1] for i in picked) + 48) / 64))
        choices = [(rng.random() < 0.5, rng.random() < 0.2) for _ in picked]  # drawn for the whole batch, so every rank stays in step
        mine = picked[rank::ranks]
        items = [example(train[i], train_texts[i], *choice, frames) for i, choice in zip(mine, choices[rank::ranks])]
        mels, inputs, targets = batch_of(items)
        lr = PEAK_LR * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        audio = model.encode(mels)
        logits = model.decode(inputs, audio)
        attention_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        texts = [tok.encode(" " + train_texts[i]) for i in mine]
        positions = torch.tensor([min(audio.shape[1], (train[i][2].shape[1] + 1) // 2) for i in mine])
        ctc_loss = F.ctc_loss(ctc_head(audio).log_softmax(-1).transpose(0, 1).contiguous(), torch.tensor([t for text in texts for t in text]),
                              positions, torch.tensor([len(text) for text in texts]), blank=text_ids, zero_infinity=True)
        loss = attention_loss + CTC_WEIGHT * ctc_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in trained]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= ranks
        offset = 0
        for g in grads:
            g.copy_(flat[offset: offset + g.numel()].view_as(g))
            offset += g.numel()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0 or step == args.steps - 1:
            log.append({"step": step, "loss": round(attention_loss.item(), 4), "ctc_loss": round(ctc_loss.item(), 4), "window_frames": frames})
            report(f"step {step} loss {attention_loss.item():.3f} ctc {ctc_loss.item():.3f} ({frames} frames) lr {lr:.2e} "
                   f"{time.time() - start:.0f} s", flush=True)
        if step % 300 == 299 and rank == 0:
            model.eval()
            sample = evaluate(range(20))
            model.train()
            report(f"  WER on 20 held-out clips {100 * sum(e for _, e, _, _ in sample) / sum(n for _, _, n, _ in sample):.1f}%; "
                   f"e.g. {sample[0][3]['reference']!r} -> {sample[0][3]['hypothesis']!r}", flush=True)
    train_seconds = time.time() - start

    model.eval()
    shares = [None] * ranks
    dist.all_gather_object(shares, evaluate(range(rank, len(test), ranks)))
    if rank != 0:
        return
    ordered = sorted((r for share in shares for r in share), key=lambda r: r[0])
    errors, total = sum(r[1] for r in ordered), sum(r[2] for r in ordered)
    results = [r[3] for r in ordered]
    wer = errors / total
    report(f"held-out WER (torch, greedy, no timestamps) {100 * wer:.2f}% over {total} words, {len(test)} clips", flush=True)

    tensors = {name: p.detach().numpy() for name, p in model.state_dict().items()}
    tensors["audio.mel_filters"] = FILTERS
    safetensors_io.write(os.path.join(args.out, "model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    clips_dir = os.path.join(args.out, "heldout")
    os.makedirs(clips_dir, exist_ok=True)
    for i, ((audio, _, _, _), text) in enumerate(zip(test, test_texts)):
        with wave.open(os.path.join(clips_dir, f"clip{i:03d}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(speech_data.SAMPLE_RATE)
            w.writeframes(audio.astype("<i2").tobytes())
    with open(os.path.join(clips_dir, "references.jsonl"), "w") as f:
        for i, r in enumerate(results):
            f.write(json.dumps({"audio": f"clip{i:03d}.wav", **r}) + "\n")
    metrics = {
        "data": {"train_clips": len(train), "test_clips": len(test), "train_audio_hours": round(audio_seconds / 3600, 3),
                 "accents": speech_data.ACCENTS, "variants": speech_data.VARIANTS, "espeak-ng": "1.51+dfsg-10+deb12u2"},
        "tokenizer": {"vocab_size": tok.vocab_size, "bpe_tokens": len(tok.token_bytes)},
        "model": config, "parameters": params, "steps": args.steps, "peak_lr": PEAK_LR, "ctc_weight": CTC_WEIGHT,
        "batch": {"clips": batch, "ranks": ranks, "whole_window_share": FULL_WINDOW_SHARE, "window_frames": speech_data.WINDOW_FRAMES},
        "seed": args.seed, "train_seconds": round(train_seconds), "torch": torch.__version__,
        "heldout": {"wer": round(wer, 4), "words": total, "errors": errors}, "log": log,
    }
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)


if __name__ == "__main__":
    main()
