"""Micro-measurements behind the inference speed-ups (numbers in BENCHMARKS.md).

    python benchmarks/micro.py predict-path MODEL QUERIES.spacy   # fast path vs thinc's, interleaved
    python benchmarks/micro.py buckets QUERIES.spacy [QUERIES2.spacy ...]  # bucket_size sweep, CPU time
    python benchmarks/micro.py span-getter                          # strided vs whole-doc span getter

Measurements, not tests: nothing here asserts a speed.
"""
import os
import random
import sys
import time
import types
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def _p50(f, texts, n=200):
    for t in texts[:5]:
        f(t)
    ts = []
    for i in range(n):
        t0 = time.perf_counter()
        f(texts[i % len(texts)])
        ts.append(time.perf_counter() - t0)
    return float(numpy.median(ts)) * 1000


def predict_path(model, data, rounds=3):
    """Encoder single-query p50: the component's inference path vs thinc's
    PyTorchShim.predict, and the raw floor, in interleaved rounds."""
    import spacy

    from spacy_multitask_intent.inference import _inference_predict

    texts = bench.read_texts(data)[:200]
    nlp = spacy.load(model)
    proc = nlp.get_pipe("intent_ner")
    floor = bench.Floor(bench.resolve_encoder_name("all-MiniLM-L6-v2"))
    singles = {t: floor.tok([t], return_tensors="pt") for t in texts}
    docs = {t: nlp.make_doc(t) for t in texts}
    shims = [s for node in proc.model.walk() for s in node.shims]

    def use(fn):
        for s in shims:
            s.__dict__.pop("predict", None)
            if fn is not None:
                s.predict = types.MethodType(fn, s)

    def run_floor(t):
        with torch.inference_mode():
            floor.model(**singles[t])

    def encode(t):
        proc._encode([docs[t]], False)

    variants = {"floor": (None, run_floor), "inference path": (_inference_predict, encode), "thinc path": (None, encode)}
    res = {k: [] for k in variants}
    for _ in range(rounds):
        for name, (fn, f) in variants.items():
            if name != "floor":
                use(fn)
            res[name].append(round(_p50(f, texts), 2))
    for name, v in res.items():
        print(f"{name}: p50 ms per round {v}")


def buckets(paths, sizes=(100000, 256, 128, 64, 32, 16)):
    """predict() docs/s in CPU time (one torch thread) by bucket_size."""
    torch.set_num_threads(1)
    nlp = bench.build_from_config(bench.CONFIGS / "multitask.cfg", None, "all-MiniLM-L6-v2", [paths[0]])
    proc = nlp.get_pipe("intent_ner")
    for path in paths:
        texts = bench.read_texts(path)
        random.Random(0).shuffle(texts)
        docs = [nlp.make_doc(t) for t in texts[:512]]
        for size in sizes:
            proc.cfg["bucket_size"] = size
            proc.predict(docs[:256])
            a = time.thread_time()
            for b in range(0, len(docs), 256):
                proc.predict(docs[b: b + 256])
            print(f"{path} bucket_size {size}: {len(docs) / (time.thread_time() - a):.1f} docs/s (CPU time, 1 thread)")


def span_getter():
    import spacy
    from spacy_transformers.span_getters import configure_strided_spans, get_doc_spans

    nlp = spacy.blank("en")
    docs = [nlp("pickup my order at the orange store near me please") for _ in range(1000)]
    for name, f in (("strided 128/96", configure_strided_spans(128, 96)), ("whole doc", get_doc_spans)):
        a = time.thread_time()
        for _ in range(20):
            for d in docs:
                f([d])
        print(f"{name}: {(time.thread_time() - a) / 20000 * 1e6:.2f} us per single-doc call")


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:] or ["--help"]
    if cmd == "predict-path":
        predict_path(*rest)
    elif cmd == "buckets":
        buckets(rest)
    elif cmd == "span-getter":
        span_getter()
    else:
        print(__doc__)
