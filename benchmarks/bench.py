#!/usr/bin/env python
"""Speed and memory benchmark for the `intent_ner` pipeline (issue "Speed and memory").

Three systems on the same queries (the corpus docs' texts, 5-15 words), in ONE
process so that ratios are comparable:

* intent_ner: the plugin's pipeline (trained --model, or built from
  configs/multitask.cfg and initialized on the data);
* stock:      spaCy's transformer + ner + textcat_multilabel (configs/stock.cfg)
  on the same encoder (--stock-model, or built and initialized);
* floor:      the raw HF encoder (AutoModel + AutoTokenizer from the same path),
  forward only, on the same texts pre-tokenised into the same batches
  (tokenisation outside the timed region), under torch.inference_mode.

Speed does not depend on training, so untrained (initialized) pipelines are
fine for timing.  See benchmarks/README.md.

    python benchmarks/bench.py --data corpus/store_lookup/test.spacy --out bench_out/
    python benchmarks/bench.py --data corpus/store_lookup/test.spacy --out /tmp/b --quick --encoder tiny
"""
import argparse
import datetime
import functools
import gc
import importlib.metadata as md
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy  # noqa: E402
import spacy  # noqa: E402
import torch  # noqa: E402
from spacy.tokens import DocBin  # noqa: E402

import spacy_multitask_intent  # noqa: E402,F401
from spacy_multitask_intent.configs import merge_config  # noqa: E402
from spacy_multitask_intent.corpus import read_examples  # noqa: E402
from spacy_multitask_intent.inference import quantize_int8  # noqa: E402
from spacy_multitask_intent.model import resolve_encoder_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
MIN_WORDS, MAX_WORDS = 5, 15
BATCH_SIZES = (1, 32, 256)
TRAIN_BATCH = 32
TRAIN_MODES = ("ner_only", "joint", "alternating")
FLOOR_BUCKET = 32  # = intent_ner's default bucket_size
DEVICE = torch.device("cpu")  # --gpu-id N: cuda:N for the floor and raw-encoder runs


def sync():
    """Wait for queued GPU work, so a timer read after it counts it. The
    spaCy pipelines copy their outputs to the host, which already waits."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)

TARGETS = {
    "thr256_vs_floor": 0.85,  # intent_ner batch-256 q/s >= 0.85 x floor
    "thr256_vs_stock": 1.3,  # intent_ner batch-256 q/s >= 1.3 x stock
    "p50_vs_floor": 1.3,  # intent_ner p50 <= 1.3 x raw encoder
    "alt_vs_ner_step": 2.2,  # alternating s/step <= 2.2 x ner_only s/step
    "rss_flat": 0.05,  # |RSS(100k) / RSS(10k) - 1| <= 5%
}


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- memory
def _status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, val = line.split(":", 1)
                out[key] = int(val.split()[0]) / 1024.0  # kB -> MiB
    return out


def reset_peak() -> bool:
    """Reset VmHWM (per-stage peak RSS); ru_maxrss cannot be reset."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def mem() -> dict:
    gc.collect()
    st = _status()
    return {
        "VmRSS_MiB": round(st.get("VmRSS", 0.0), 1),
        "VmHWM_MiB": round(st.get("VmHWM", 0.0), 1),  # peak since the stage's reset_peak()
        "ru_maxrss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }


def child_json(args, what: str) -> dict:
    """Run ``python ARGS`` in a child process and return the JSON object on the
    last line of its stdout that starts with "{".  A child that exits non-zero
    or prints no such line stops the run with an error naming ``what``."""
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{what} failed (rc {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def dir_size(path) -> dict:
    path = Path(path)
    apparent = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    try:
        du_k = int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True).stdout.split()[0])
    except Exception:
        du_k = None
    return {"bytes": apparent, "MB": round(apparent / 1e6, 2), "du_k": du_k}


def model_size(nlp) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        nlp.to_disk(tmp)
        return dir_size(tmp)


# ------------------------------------------------------------------- data
def intent_ner_name(nlp) -> str:
    """The name of the pipeline's ``intent_ner`` component (whatever it was added as)."""
    from spacy_multitask_intent.component import IntentNER

    return next(name for name, proc in nlp.pipeline if isinstance(proc, IntentNER))


def read_texts(path):
    nlp = spacy.blank("en")
    texts = []
    for doc in DocBin().from_disk(path).get_docs(nlp.vocab):
        text = doc.text.strip()
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
            texts.append(text)
    if not texts:
        raise SystemExit(f"{path}: no docs with {MIN_WORDS}-{MAX_WORDS} words")
    return texts


def timed(totals, key, fn, clock=time.perf_counter):
    """fn, wrapped to add each call's `clock` time to totals[key] (e.g. a
    pipeline method, to see where nlp.pipe's time goes)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] += clock() - t0

    return wrapper


def cycle(texts, n):
    return [texts[i % len(texts)] for i in range(n)]


def n_words(texts):
    return sum(len(t.split()) for t in texts)


def has_gold(path) -> bool:
    nlp = spacy.blank("en")
    return any(d.ents or d.cats for d in DocBin().from_disk(path).get_docs(nlp.vocab))


# ---------------------------------------------------------- tiny encoder
def build_tiny_bert(texts, dirpath) -> str:
    """A random 2-layer BERT (hidden 32) with a WordPiece vocab (as tests/conftest.py)."""
    from transformers import BertConfig, BertModel

    path = Path(dirpath) / "tiny_bert"
    path.mkdir(parents=True, exist_ok=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({w.lower() for t in texts for w in t.split() if w.isalpha()})[:2000]
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,'?!-:;/&$%")
    vocab = list(dict.fromkeys(special + words + chars + ["##" + c for c in chars]))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    (path / "tokenizer_config.json").write_text(
        '{"do_lower_case": true, "model_max_length": 512, "tokenizer_class": "BertTokenizer"}'
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(str(path))
    return str(path)


# -------------------------------------------------------------- pipelines
def build_from_config(base, variant, encoder, init_paths):
    from thinc.api import fix_random_seed

    config = merge_config(base, variant)
    config["paths"]["encoder"] = encoder
    config = config.interpolate()
    fix_random_seed(0)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = []
    for p in init_paths:
        examples.extend(read_examples(nlp, p, gold_tokens=True))
    nlp.initialize(lambda: examples)
    return nlp


def load_intent_ner(args, encoder, init_paths, variant=None):
    if args.model:
        return spacy.load(args.model)
    return build_from_config(CONFIGS / "multitask.cfg", variant, encoder, init_paths)


def load_stock(args, encoder, init_paths):
    if args.stock_model:
        return spacy.load(args.stock_model)
    return build_from_config(CONFIGS / "stock.cfg", None, encoder, init_paths)


# ---------------------------------------------------------------- timing
def _pct(xs, q):
    return float(numpy.percentile(numpy.asarray(xs), q))


def lat_summary(times_s):
    ms = [t * 1000.0 for t in times_s]
    return {
        "n": len(ms),
        "p50_ms": _pct(ms, 50), "p95_ms": _pct(ms, 95), "p99_ms": _pct(ms, 99),
        "mean_ms": float(numpy.mean(ms)),
        "raw_ms": [round(x, 4) for x in ms],
    }


def thr_result(n, words, secs):
    return {"queries": n, "words": words, "seconds": secs, "qps": n / secs, "wps": words / secs}


def pipe_throughput(nlp, texts, b):
    for _ in nlp.pipe(texts[: max(b, 1)], batch_size=b):  # warm-up
        pass
    t0 = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=b):
        pass
    return thr_result(len(texts), n_words(texts), time.perf_counter() - t0)


def pipe_latency(nlp, texts, n, warm=10):
    for t in texts[:warm]:
        nlp(t)
    times = []
    for i in range(n):
        text = texts[i % len(texts)]
        t0 = time.perf_counter()
        nlp(text)
        times.append(time.perf_counter() - t0)
    return lat_summary(times)


def paired_latency(nlp, floor, texts, n, block=50):
    """Single-query latency of intent_ner and the floor measured in
    alternating blocks of `block` calls on the same queries, so that both
    see the same machine conditions (on a shared machine, speed drifts by
    tens of percent over minutes; sequential stages inherit that drift)."""
    singles = floor.encode(texts[: min(len(texts), n)], 1)
    for t in texts[:10]:
        nlp(t)
    floor.forward(singles[:10])
    times = {"intent_ner": [], "floor": []}
    i = 0
    while i < n:
        idx = [(i + j) % len(singles) for j in range(min(block, n - i))]
        for k in idx:
            t0 = time.perf_counter()
            nlp(texts[k])
            times["intent_ner"].append(time.perf_counter() - t0)
        with torch.inference_mode():
            for k in idx:
                t0 = time.perf_counter()
                floor.model(**singles[k])
                sync()
                times["floor"].append(time.perf_counter() - t0)
        i += len(idx)
    return {k: lat_summary(v) for k, v in times.items()}


class Floor:
    """The raw HF encoder: forward only, inputs pre-tokenised outside timing."""

    def __init__(self, path):
        from transformers import AutoModel, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(path, use_fast=True)
        self.model = AutoModel.from_pretrained(path).to(DEVICE)
        self.model.eval()

    def encode(self, texts, b, bucket=None):
        """Padded batches of b texts; with `bucket`, each batch is sorted by
        length and cut into sub-batches of `bucket` (as intent_ner's
        predict does with its bucket_size)."""
        chunks = [texts[i: i + b] for i in range(0, len(texts), b)]
        if bucket:
            chunks = [
                sorted_batch[j: j + bucket]
                for batch in chunks
                for sorted_batch in [sorted(batch, key=lambda t: len(t.split()))]
                for j in range(0, len(sorted_batch), bucket)
            ]
        return [
            self.tok(c, padding=True, truncation=True, max_length=512, return_tensors="pt").to(DEVICE)
            for c in chunks
        ]

    def forward(self, batches):
        with torch.inference_mode():
            for enc in batches:
                self.model(**enc)
        sync()

    def throughput(self, texts, b, bucket=None):
        batches = self.encode(texts, b, bucket)
        self.forward(batches[:1])  # warm-up
        t0 = time.perf_counter()
        self.forward(batches)
        return thr_result(len(texts), n_words(texts), time.perf_counter() - t0)

    def latency(self, texts, n, warm=10):
        singles = self.encode(texts[: min(len(texts), n)], 1)
        self.forward(singles[:warm])
        times = []
        with torch.inference_mode():
            for i in range(n):
                enc = singles[i % len(singles)]
                t0 = time.perf_counter()
                self.model(**enc)
                sync()
                times.append(time.perf_counter() - t0)
        return lat_summary(times)

    def run_queries(self, texts, n, b=32):
        batches = self.encode(texts, b)
        done = 0
        with torch.inference_mode():
            while done < n:
                for enc in batches:
                    self.model(**enc)
                    done += enc["input_ids"].shape[0]
                    if done >= n:
                        break
        return done


def run_queries(nlp, texts, checkpoints, b=32):
    """Stream n queries through nlp.pipe, recording memory at each checkpoint."""
    checkpoints = sorted(set(checkpoints))
    out = {}
    gen = (texts[i % len(texts)] for i in range(checkpoints[-1]))
    t0 = time.perf_counter()
    for n, _ in enumerate(nlp.pipe(gen, batch_size=b), 1):
        if n in checkpoints:
            out[str(n)] = {**mem(), "seconds": time.perf_counter() - t0}
    return out


# --------------------------------------------------------------- training
def train_batches(examples, n_batches, size=TRAIN_BATCH):
    egs = cycle(examples, n_batches * size)
    return [egs[i: i + size] for i in range(0, len(egs), size)]


def time_nlp_updates(nlp, examples, steps, warmup=2):
    optimizer = nlp.create_optimizer()
    batches = train_batches(examples, warmup + steps)
    for batch in batches[:warmup]:
        nlp.update(batch, sgd=optimizer)
    times = []
    for batch in batches[warmup:]:
        t0 = time.perf_counter()
        nlp.update(batch, sgd=optimizer)
        times.append(time.perf_counter() - t0)
    return _train_result(times, [len(b) for b in batches[warmup:]])


def time_raw_updates(path, examples, steps, warmup=2):
    """Raw encoder forward + backward (loss = last_hidden_state.sum()) + torch Adam step."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, use_fast=True)
    model = AutoModel.from_pretrained(path).to(DEVICE)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    batches = train_batches(examples, warmup + steps)
    encs = [
        tok([eg.reference.text for eg in b], padding=True, truncation=True, max_length=512, return_tensors="pt").to(DEVICE)
        for b in batches
    ]

    def step(enc):
        loss = model(**enc).last_hidden_state.sum()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()

    for enc in encs[:warmup]:
        step(enc)
    times = []
    for enc in encs[warmup:]:
        t0 = time.perf_counter()
        step(enc)
        times.append(time.perf_counter() - t0)
    return _train_result(times, [len(b) for b in batches[warmup:]])


def _train_result(times, sizes):
    total = sum(times)
    return {
        "steps": len(times), "batch_size": TRAIN_BATCH, "seconds": total,
        "s_per_step": total / len(times), "median_s_per_step": float(numpy.median(times)),
        "examples_per_s": sum(sizes) / total, "raw_step_s": times,
    }


# -------------------------------------------------------------------- int8
def quantize_intent_ner(nlp):
    """Dynamic int8 on the HF transformer and both heads (the package's opt-in)."""
    quantize_int8(nlp.get_pipe("intent_ner"))


def accuracy(nlp, path):
    scores = nlp.evaluate(read_examples(nlp, path, gold_tokens=True))
    return {k: scores.get(k) for k in ("ents_f", "ents_p", "ents_r", "intent_acc", "frame_acc")}


# ---------------------------------------------------------------- report
def _r(a, b):
    return a / b if a is not None and b else None


def _f(x, nd=2):
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return str(x)


def render_markdown(R) -> str:
    env, quick = R["env"], R["args"]["quick"]
    lines = []
    lines.append(
        f"Encoder `{R['encoder_name']}`; torch threads {env['torch_threads']}, "
        f"{env['cpu_count']} CPUs, {env['platform']}; torch {env['versions'].get('torch')}, "
        f"spaCy {env['versions'].get('spacy')}, transformers {env['versions'].get('transformers')}."
        + (f" **GPU: {env['gpu']}** (every system on it)." if env.get("gpu") else "")
    )
    if quick:
        lines.append("\n**--quick run: tiny sample sizes; numbers are a smoke test, not a benchmark.**")
    lines.append("")
    for ds, D in R["datasets"].items():
        lines.append(f"### Inference: `{ds}` ({D['n_texts']} queries of {MIN_WORDS}-{MAX_WORDS} words)\n")
        lines.append("| metric | intent_ner | stock | floor (raw encoder) | this/floor | this/stock |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        S = D["systems"]
        for b in BATCH_SIZES:
            for key, unit in (("qps", "queries/s"), ("wps", "words/s")):
                v = {s: S[s]["throughput"].get(str(b), {}).get(key) for s in S}
                lines.append(
                    f"| {unit}, batch {b} | {_f(v.get('intent_ner'), 1)} | {_f(v.get('stock'), 1)} | "
                    f"{_f(v.get('floor'), 1)} | {_f(_r(v.get('intent_ner'), v.get('floor')))} | "
                    f"{_f(_r(v.get('intent_ner'), v.get('stock')))} |"
                )
        for b, v in S.get("floor", {}).get("throughput_bucketed", {}).items():
            lines.append(
                f"| queries/s, batch {b}, floor in length-sorted buckets of {FLOOR_BUCKET} | "
                f"{_f(S['intent_ner']['throughput'].get(b, {}).get('qps'), 1)} | | {_f(v['qps'], 1)} | "
                f"{_f(_r(S['intent_ner']['throughput'].get(b, {}).get('qps'), v['qps']))} | |"
            )
        for key, suffix in (("latency", ""), ("latency_1thread", ", torch threads 1")):
            for p in ("p50_ms", "p95_ms", "p99_ms"):
                v = {s: S[s][key][p] for s in S if key in S[s]}
                if not v:
                    continue
                lines.append(
                    f"| single-query {p[:-3]} (ms){suffix} | {_f(v.get('intent_ner'))} | {_f(v.get('stock'))} | "
                    f"{_f(v.get('floor'))} | {_f(_r(v.get('intent_ner'), v.get('floor')))} | "
                    f"{_f(_r(v.get('intent_ner'), v.get('stock')))} |"
                )
        lines.append("")
    M = R["memory"]
    lines.append("### Memory and size\n")
    lines.append("| metric | intent_ner | stock | floor (raw encoder) | this/floor | this/stock |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    rows = [
        ("VmRSS after load (MiB)", lambda s: M[s]["after_load"]["VmRSS_MiB"]),
        ("RSS added by load (MiB)", lambda s: M[s]["after_load"]["VmRSS_MiB"] - M[s]["before_load"]["VmRSS_MiB"]),
        ("peak RSS during load, VmHWM (MiB)", lambda s: M[s]["after_load"]["VmHWM_MiB"]),
        (f"VmRSS after {M['n_first']:,} queries (MiB)", lambda s: M[s]["after_queries"]["VmRSS_MiB"]),
        (f"peak RSS to {M['n_first']:,} queries, VmHWM (MiB)", lambda s: M[s]["after_queries"]["VmHWM_MiB"]),
        ("size on disk (MB)", lambda s: R["size_on_disk"][s]["MB"]),
    ]
    for label, get in rows:
        v = {}
        for s in ("intent_ner", "stock", "floor"):
            try:
                v[s] = float(get(s))
            except (KeyError, TypeError):
                v[s] = None
        lines.append(
            f"| {label} | {_f(v['intent_ner'], 1)} | {_f(v['stock'], 1)} | {_f(v['floor'], 1)} | "
            f"{_f(_r(v['intent_ner'], v['floor']))} | {_f(_r(v['intent_ner'], v['stock']))} |"
        )
    lines.append(f"\nru_maxrss (process-wide peak) at the end: {M.get('final', {}).get('ru_maxrss_MiB')} MiB. "
                 f"intent_ner VmRSS over the stream: " + ", ".join(
                     f"{int(k):,} q: {v['VmRSS_MiB']} MiB" for k, v in M["intent_ner"]["stream"].items()))
    lines.append("")
    T = R["training"]
    if T:
        lines.append(f"### Training throughput (batch {TRAIN_BATCH}, {T['raw_encoder']['steps']} timed steps after 2 warm-up)\n")
        lines.append("| update | examples/s | s/step | step / ner_only step | this/raw encoder (examples/s) |")
        lines.append("|---|---:|---:|---:|---:|")
        ner = T.get("ner_only", {}).get("s_per_step")
        for k in ("raw_encoder",) + TRAIN_MODES:
            t = T.get(k)
            if not t:
                continue
            lines.append(
                f"| {k if k != 'raw_encoder' else 'raw encoder fwd+bwd+Adam (floor)'} | {_f(t['examples_per_s'], 1)} | "
                f"{_f(t['s_per_step'], 3)} | {_f(_r(t['s_per_step'], ner))} | "
                f"{_f(_r(t['examples_per_s'], T['raw_encoder']['examples_per_s']))} |"
            )
        lines.append("")
    if R.get("int8"):
        I = R["int8"]
        lines.append("### int8 (dynamic quantization of Linear layers, intent_ner)\n")
        lines.append("| metric | fp32 | int8 | int8/fp32 |")
        lines.append("|---|---:|---:|---:|")
        for b in BATCH_SIZES:
            a, q = I["fp32_throughput"][str(b)]["qps"], I["throughput"][str(b)]["qps"]
            lines.append(f"| queries/s, batch {b} | {_f(a, 1)} | {_f(q, 1)} | {_f(_r(q, a))} |")
        a, q = I["fp32_latency_p50_ms"], I["latency"]["p50_ms"]
        lines.append(f"| single-query p50 (ms) | {_f(a)} | {_f(q)} | {_f(_r(q, a))} |")
        if I.get("accuracy"):
            for k in ("ents_f", "intent_acc"):
                a, q = I["accuracy"]["fp32"].get(k), I["accuracy"]["int8"].get(k)
                d = None if a is None or q is None else q - a
                lines.append(f"| {k} | {_f(a, 4)} | {_f(q, 4)} | Δ {_f(d, 4)} |")
        else:
            lines.append(f"\nAccuracy: {I.get('accuracy_skipped')}")
        lines.append("")
    if R.get("paired_latency"):
        lines.append("### Single-query latency, intent_ner and floor interleaved (blocks of 50 calls)\n")
        lines.append("| queries | intent_ner p50 / p95 / p99 (ms) | floor p50 / p95 / p99 (ms) | p50 ratio |")
        lines.append("|---|---:|---:|---:|")
        for ds, P in R["paired_latency"].items():
            a, f = P["intent_ner"], P["floor"]
            lines.append(
                f"| {ds} | {_f(a['p50_ms'])} / {_f(a['p95_ms'])} / {_f(a['p99_ms'])} | "
                f"{_f(f['p50_ms'])} / {_f(f['p95_ms'])} / {_f(f['p99_ms'])} | {_f(_r(a['p50_ms'], f['p50_ms']))} |"
            )
        lines.append("")
    lines.append("### Targets\n")
    lines.append("| target | value | status |")
    lines.append("|---|---:|---|")
    for t in R["targets"]:
        status = "–" if t["met"] is None else ("met" if t["met"] else "**missed**")
        lines.append(f"| {t['name']} | {_f(t['value'], 3)} | {status} |")
    return "\n".join(lines) + "\n"


def evaluate_targets(R):
    ds = next(iter(R["datasets"].values()))["systems"]
    thr = lambda s: ds[s]["throughput"].get("256", {}).get("qps")  # noqa: E731
    out = []

    def add(name, value, ok):
        out.append({"name": name, "value": value, "met": None if value is None else bool(ok(value))})

    add(f"batch-256 q/s intent_ner / floor >= {TARGETS['thr256_vs_floor']}",
        _r(thr("intent_ner"), thr("floor")), lambda v: v >= TARGETS["thr256_vs_floor"])
    bucketed = ds["floor"].get("throughput_bucketed", {}).get("256", {}).get("qps")
    add(f"(stricter) batch-256 q/s intent_ner / floor in length-sorted buckets >= {TARGETS['thr256_vs_floor']}",
        _r(thr("intent_ner"), bucketed), lambda v: v >= TARGETS["thr256_vs_floor"])
    add(f"batch-256 q/s intent_ner / stock >= {TARGETS['thr256_vs_stock']}",
        _r(thr("intent_ner"), thr("stock")), lambda v: v >= TARGETS["thr256_vs_stock"])
    add(f"single-query p50 intent_ner / raw encoder <= {TARGETS['p50_vs_floor']} (sequential stages)",
        _r(ds["intent_ner"]["latency"]["p50_ms"], ds["floor"]["latency"]["p50_ms"]),
        lambda v: v <= TARGETS["p50_vs_floor"])
    for name, P in R.get("paired_latency", {}).items():
        add(f"single-query p50 intent_ner / raw encoder <= {TARGETS['p50_vs_floor']} (interleaved, {name})",
            _r(P["intent_ner"]["p50_ms"], P["floor"]["p50_ms"]), lambda v: v <= TARGETS["p50_vs_floor"])
    T = R["training"]
    alt = _r(T.get("alternating", {}).get("s_per_step"), T.get("ner_only", {}).get("s_per_step")) if T else None
    add(f"alternating step / ner_only step <= {TARGETS['alt_vs_ner_step']}", alt,
        lambda v: v <= TARGETS["alt_vs_ner_step"])
    stream = R["memory"]["intent_ner"]["stream"]
    keys = sorted(stream, key=int)
    flat = None
    name = "RSS flat ±5%"
    if len(keys) >= 2:
        flat = stream[keys[-1]]["VmRSS_MiB"] / stream[keys[0]]["VmRSS_MiB"]
        name = f"VmRSS({int(keys[-1]):,} q) / VmRSS({int(keys[0]):,} q) within 1 ± {TARGETS['rss_flat']}"
    add(name, flat, lambda v: abs(v - 1.0) <= TARGETS["rss_flat"])
    return out


# ------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help=".spacy corpus; its texts (5-15 words) are the queries")
    p.add_argument("--data2", default=None, help="optional second .spacy corpus (e.g. ATIS) for inference speed")
    p.add_argument("--model", default=None, help="trained intent_ner pipeline (default: build from configs)")
    p.add_argument("--stock-model", default=None, help="trained stock pipeline (default: build from configs/stock.cfg)")
    p.add_argument("--encoder", default="all-MiniLM-L6-v2",
                   help="HF encoder name/path for built pipelines and the floor; 'tiny' = a random 2-layer BERT")
    p.add_argument("--out", required=True, help="output folder (bench.json, bench.md)")
    p.add_argument("--quick", action="store_true", help="tiny sample sizes: a smoke test")
    p.add_argument("--n-queries", type=int, default=None, help="queries per throughput run (default 2048; quick 64)")
    p.add_argument("--n-queries-b1", type=int, default=None, help="queries for the batch-1 run (default 1000; quick 32)")
    p.add_argument("--latency-calls", type=int, default=None, help="single-query calls (default 1000; quick 30)")
    p.add_argument("--rss-queries", type=int, default=None,
                   help="queries streamed through intent_ner for the RSS-flatness check; RSS is read at "
                        "1/10 of it and at the end (default 100000; quick 300)")
    p.add_argument("--train-steps", type=int, default=None, help="timed update steps (default 20; quick 2)")
    p.add_argument("--no-train", action="store_true", help="skip the training-throughput section")
    p.add_argument("--int8", action="store_true", help="also measure intent_ner with dynamic int8 quantization")
    p.add_argument("--gpu-id", type=int, default=-1,
                   help="run every system on this GPU (thinc require_gpu; the floor on cuda:N); -1: CPU")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--append", default=None, help="append the Markdown report to this file (e.g. BENCHMARKS.md)")
    a = p.parse_args(argv)
    q = a.quick
    a.n_queries = a.n_queries or (64 if q else 2048)
    a.n_queries_b1 = a.n_queries_b1 or (32 if q else 1000)
    a.latency_calls = a.latency_calls or (30 if q else 1000)
    a.rss_queries = a.rss_queries or (300 if q else 100_000)
    a.train_steps = a.train_steps or (2 if q else 20)
    if a.gpu_id >= 0 and a.int8:
        p.error("--int8 is dynamic int8 quantization, a CPU feature: leave out --gpu-id or --int8")
    return a


def env_info():
    versions = {}
    for pkg in ("torch", "transformers", "tokenizers", "spacy", "spacy-transformers", "thinc", "numpy",
                "spacy-multitask-intent", "spacy_multitask_intent"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cpu_count": os.cpu_count(),
        "sched_getaffinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "versions": versions,
        "quantized_engine": torch.backends.quantized.engine,
        "gpu": torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else None,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def measure_inference(R, name, nlp_or_floor, query_sets, args):
    is_floor = isinstance(nlp_or_floor, Floor)
    for ds, texts in query_sets.items():
        res = {"throughput": {}}
        for b in BATCH_SIZES:
            qs = cycle(texts, args.n_queries_b1 if b == 1 else max(args.n_queries, b))
            log(f"{name} [{ds}] throughput batch {b} ({len(qs)} queries)")
            res["throughput"][str(b)] = (
                nlp_or_floor.throughput(qs, b) if is_floor else pipe_throughput(nlp_or_floor, qs, b)
            )
        if is_floor:
            bucket = FLOOR_BUCKET
            res["throughput_bucketed"] = {}
            for b in (32, 256):
                qs = cycle(texts, max(args.n_queries, b))
                log(f"{name} [{ds}] throughput batch {b}, length-sorted buckets of {bucket}")
                res["throughput_bucketed"][str(b)] = nlp_or_floor.throughput(qs, b, bucket)
        log(f"{name} [{ds}] latency ({args.latency_calls} calls)")
        res["latency"] = (
            nlp_or_floor.latency(texts, args.latency_calls) if is_floor
            else pipe_latency(nlp_or_floor, texts, args.latency_calls)
        )
        threads = torch.get_num_threads()
        if threads > 1 and DEVICE.type == "cpu":
            # Thread setting: a short query's matrices are small, so intra-op
            # threads may cost more in synchronisation than they save.
            log(f"{name} [{ds}] latency at torch threads 1 ({args.latency_calls} calls)")
            torch.set_num_threads(1)
            try:
                res["latency_1thread"] = (
                    nlp_or_floor.latency(texts, args.latency_calls) if is_floor
                    else pipe_latency(nlp_or_floor, texts, args.latency_calls)
                )
            finally:
                torch.set_num_threads(threads)
        R["datasets"][ds]["systems"][name] = res


def load_and_measure(R, name, loader, source, config, args, encoder, data_paths, query_sets):
    """Load one spaCy pipeline (trained `source`, or `config` initialized),
    record memory, size and inference speed, and return it."""
    reset_peak()
    R["memory"][name] = {"before_load": mem()}
    log(f"loading {name} pipeline", source or f"({config}, initialized)")
    nlp = loader(args, encoder, data_paths)
    R["memory"][name]["after_load"] = mem()
    R[f"{name}_source"] = source or f"{config} (initialized, untrained)"
    R["size_on_disk"][name] = model_size(nlp)
    measure_inference(R, name, nlp, query_sets, args)
    reset_peak()
    return nlp


def main(argv=None):
    global DEVICE
    args = parse_args(argv)
    if args.gpu_id >= 0:
        from thinc.api import require_gpu

        require_gpu(args.gpu_id)  # every spaCy pipeline built or loaded from here on is on the GPU
        DEVICE = torch.device(f"cuda:{args.gpu_id}")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory(prefix="bench_")
    t_start = time.perf_counter()

    data_paths = [args.data] + ([args.data2] if args.data2 else [])
    query_sets = {}
    for p in data_paths:
        name = Path(p).parent.name + "/" + Path(p).stem
        query_sets[name] = read_texts(p)
    primary = next(iter(query_sets))
    primary_texts = query_sets[primary]

    encoder = args.encoder
    if encoder == "tiny":
        encoder = build_tiny_bert([t for ts in query_sets.values() for t in ts], tmp.name)
    hf_path = resolve_encoder_name(encoder)

    R = {
        "args": vars(args),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "encoder_name": args.encoder,
        "encoder_path": hf_path,
        "env": env_info(),
        "datasets": {ds: {"n_texts": len(t), "n_words": n_words(t), "systems": {}} for ds, t in query_sets.items()},
        "memory": {"n_first": max(1, args.rss_queries // 10), "n_last": args.rss_queries,
                   "peak_reset_supported": reset_peak(), "process_start": mem()},
        "size_on_disk": {},
        "training": {},
        "notes": [
            "Systems run one after another in this process; VmHWM is reset (clear_refs=5) before each "
            "stage, so VmHWM is that stage's peak; ru_maxrss is the process-wide peak and only grows.",
            "floor = HF AutoModel forward under torch.inference_mode on inputs tokenised outside the timed "
            "region; intent_ner/stock timings include spaCy tokenisation, sub-word alignment and heads.",
            "Pipelines not given by path are built from configs and initialized (untrained): speed does "
            "not depend on training.",
        ],
    }
    R["env"]["encoder_path"] = hf_path
    n_first, n_last = R["memory"]["n_first"], R["memory"]["n_last"]

    # ---- floor
    reset_peak()
    R["memory"]["floor"] = {"before_load": mem()}
    log("loading floor (raw HF encoder)", hf_path)
    floor = Floor(hf_path)
    R["memory"]["floor"]["after_load"] = mem()
    R["size_on_disk"]["floor"] = dir_size(hf_path)
    measure_inference(R, "floor", floor, query_sets, args)
    reset_peak()
    floor.run_queries(primary_texts, n_first)
    R["memory"]["floor"]["after_queries"] = mem()
    del floor
    gc.collect()

    # ---- stock
    nlp = load_and_measure(R, "stock", load_stock, args.stock_model, "configs/stock.cfg", args, encoder, data_paths, query_sets)
    R["memory"]["stock"]["after_queries"] = run_queries(nlp, primary_texts, [n_first])[str(n_first)]
    del nlp
    gc.collect()

    # ---- intent_ner
    nlp = load_and_measure(R, "intent_ner", load_intent_ner, args.model, "configs/multitask.cfg", args, encoder, data_paths, query_sets)
    log(f"intent_ner RSS stream: {n_last:,} queries (checkpoints {n_first:,}, {n_last:,})")
    stream = run_queries(nlp, primary_texts, [n_first, n_last])
    R["memory"]["intent_ner"]["stream"] = stream
    R["memory"]["intent_ner"]["after_queries"] = stream[str(n_first)]

    # ---- int8 (on the same intent_ner pipeline, after the fp32 numbers)
    if args.int8:
        I = {
            "fp32_throughput": R["datasets"][primary]["systems"]["intent_ner"]["throughput"],
            "fp32_latency_p50_ms": R["datasets"][primary]["systems"]["intent_ner"]["latency"]["p50_ms"],
        }
        gold = has_gold(args.data)
        do_acc = bool(args.model) and gold
        if do_acc:
            log("int8: fp32 accuracy")
            I["accuracy"] = {"fp32": accuracy(nlp, args.data)}
        else:
            I["accuracy_skipped"] = (
                "needs --model (a trained pipeline)" if not args.model else f"{args.data} has no gold labels"
            )
        log("int8: quantizing")
        quantize_intent_ner(nlp)
        I["throughput"] = {}
        for b in BATCH_SIZES:
            qs = cycle(primary_texts, args.n_queries_b1 if b == 1 else max(args.n_queries, b))
            log(f"int8 throughput batch {b}")
            I["throughput"][str(b)] = pipe_throughput(nlp, qs, b)
        I["latency"] = pipe_latency(nlp, primary_texts, args.latency_calls)
        if do_acc:
            log("int8: accuracy")
            I["accuracy"]["int8"] = accuracy(nlp, args.data)
        R["int8"] = I
    del nlp
    gc.collect()
    R["memory"]["final"] = mem()

    # ---- paired single-query latency (interleaved with the floor)
    log(f"paired latency: intent_ner vs floor, interleaved blocks ({args.latency_calls} calls each)")
    nlp = load_intent_ner(args, encoder, data_paths)
    floor = Floor(hf_path)
    R["paired_latency"] = {ds: paired_latency(nlp, floor, texts, args.latency_calls) for ds, texts in query_sets.items()}
    del nlp, floor
    gc.collect()

    # ---- training throughput
    if not args.no_train:
        log(f"training: raw encoder ({args.train_steps} steps)")
        probe = spacy.blank("en")
        examples = read_examples(probe, args.data, gold_tokens=True)
        R["training"]["raw_encoder"] = time_raw_updates(hf_path, examples, args.train_steps)
        gc.collect()
        for mode in TRAIN_MODES:
            log(f"training: {mode} ({args.train_steps} steps)")
            variant = {"ner_only": CONFIGS / "ner_only.cfg", "joint": CONFIGS / "joint.cfg"}.get(mode)
            nlp = build_from_config(CONFIGS / "multitask.cfg", variant, encoder, [args.data])
            assert nlp.get_pipe("intent_ner").cfg["update_mode"] == mode
            egs = read_examples(nlp, args.data, gold_tokens=True)
            R["training"][mode] = time_nlp_updates(nlp, egs, args.train_steps)
            del nlp
            gc.collect()

    R["targets"] = evaluate_targets(R)
    R["elapsed_s"] = time.perf_counter() - t_start
    tmp.cleanup()

    (out / "bench.json").write_text(json.dumps(R, indent=1, default=str), encoding="utf8")
    report = render_markdown(R)
    (out / "bench.md").write_text(report, encoding="utf8")
    print(report)
    if args.append:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        head = (
            f"\n## Benchmark {stamp} — {R['env']['cpu_count']} cores"
            + (f", GPU {R['env']['gpu']}" if R["env"].get("gpu") else "")
            + " "
            f"(torch threads {R['env']['torch_threads']})\n\nCommand: `{R['command']}`\n\n"
        )
        with open(args.append, "a", encoding="utf8") as f:
            f.write(head + report)
        log(f"appended to {args.append}")
    log(f"wrote {out / 'bench.json'} and {out / 'bench.md'} in {R['elapsed_s']:.0f}s")


if __name__ == "__main__":
    main()
