"""Micro-measurements behind the inference speed-ups (numbers in BENCHMARKS.md).

    python benchmarks/micro.py predict-path MODEL QUERIES.spacy   # fast path vs thinc's, interleaved
    python benchmarks/micro.py buckets QUERIES.spacy [QUERIES2.spacy ...]  # bucket_size sweep, CPU time
    python benchmarks/micro.py span-getter                          # strided vs whole-doc span getter
    python benchmarks/micro.py viterbi [N_LABELS ...]               # O(tags) BIO decoder vs the tags x tags one
    python benchmarks/micro.py decoder-pipeline MODEL QUERIES.spacy # nlp.pipe CPU time with each decoder
    python benchmarks/micro.py crf-cost MODEL CRF_MODEL QUERIES.spacy # nlp.pipe CPU time without / with crf = true
    python benchmarks/micro.py crf-loss TRAIN.spacy [BATCH]        # training's CRF loss: exp-space vs log-sum-exp forward

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
    from spacy_multitask_intent.model import encode as model_encode

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
        model_encode(proc.model, [docs[t]], False)

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


def viterbi_decoders(label_counts=("4", "39", "79"), batch=256, rounds=5):
    """CPU time per batch of `batch` queries (5-15 words, random probabilities)
    for decoding.viterbi (tags x tags per word) and decoding.viterbi_bio (O(tags)),
    interleaved; SNIPS has 39 entity labels, ATIS 79."""
    from spacy_multitask_intent.decoding import bio_tags, transition_mask, viterbi, viterbi_bio

    rng = numpy.random.RandomState(0)
    for n in map(int, label_counts):
        tags = bio_tags([f"L{i}" for i in range(n)])
        allowed, start = transition_mask(tags)
        lps = [numpy.log(rng.dirichlet(numpy.ones(len(tags)), size=rng.randint(5, 16))).astype("f")
               for _ in range(batch)]
        assert [p.tolist() for p in viterbi(lps, allowed, start)] == [p.tolist() for p in viterbi_bio(lps, tags)]
        times = {"viterbi": [], "viterbi_bio": []}
        for _ in range(rounds):
            for name, f in (("viterbi", lambda: viterbi(lps, allowed, start)), ("viterbi_bio", lambda: viterbi_bio(lps, tags))):
                a = time.thread_time()
                f()
                times[name].append(time.thread_time() - a)
        slow, fast = (float(numpy.median(times[k])) * 1000 for k in ("viterbi", "viterbi_bio"))
        print(f"{n} labels ({len(tags)} tags), batch {batch}: viterbi {slow:.1f} ms, viterbi_bio {fast:.2f} ms "
              f"per batch (CPU time, median of {rounds}); ratio {slow / fast:.1f}")


def decoder_pipeline(model, data, rounds=3, batch=256):
    """nlp.pipe over the queries with the component's decoder (viterbi_bio)
    and with the general tags x tags viterbi swapped in, interleaved; process
    CPU time with torch at 1 thread, so another job on the machine changes
    little. Entities must come out the same."""
    import spacy

    from spacy_multitask_intent import component
    from spacy_multitask_intent.decoding import transition_mask, viterbi, viterbi_bio

    torch.set_num_threads(1)
    nlp = spacy.load(model)
    texts = bench.read_texts(data)

    def general(log_probs, tags):
        return viterbi(log_probs, *transition_mask(tags))

    out = {}
    times = {"viterbi_bio": [], "viterbi": []}
    for _ in range(rounds):
        for name, fn in (("viterbi_bio", viterbi_bio), ("viterbi", general)):
            component.viterbi_bio = fn
            try:
                a = time.process_time()
                docs = list(nlp.pipe(texts, batch_size=batch))
                times[name].append(time.process_time() - a)
            finally:
                component.viterbi_bio = viterbi_bio
            out[name] = [[(e.start, e.end, e.label_) for e in d.ents] for d in docs]
    assert out["viterbi_bio"] == out["viterbi"], "the decoders disagree"
    for name, ts in times.items():
        q = len(texts) / float(numpy.median(ts))
        print(f"{name}: {q:.1f} queries/s (CPU time, torch 1 thread, batch {batch}, median of {rounds})")
    print(f"ratio {numpy.median(times['viterbi']) / numpy.median(times['viterbi_bio']):.2f}; same entities on {len(texts)} queries")


def crf_cost(model, crf_model, data, rounds=5, batches=(1, 32, 256)):
    """nlp.pipe over the queries with a pipeline without a CRF and one with
    crf = true (same encoder and labels), interleaved; process CPU time with
    torch at 1 thread. For each pipeline, the time in the component's
    set_annotations; for the CRF one, the time inside its decoder (viterbi
    with the learned scores) and inside crf_marginals (the confidences)."""
    import spacy

    from spacy_multitask_intent import component

    torch.set_num_threads(1)
    nlps = {"no CRF": spacy.load(model), "CRF": spacy.load(crf_model)}
    assert not nlps["no CRF"].config["components"]["intent_ner"]["model"].get("crf", False), f"{model} has crf = true"
    assert nlps["CRF"].config["components"]["intent_ner"]["model"].get("crf") is True, f"{crf_model} has no crf = true"
    texts = bench.read_texts(data)
    inside = {"viterbi": 0.0, "crf_marginals": 0.0, "set_annotations": 0.0}

    def timed(name, fn):
        return bench.timed(inside, name, fn, clock=time.process_time)

    originals = {name: getattr(component, name) for name in ("viterbi", "crf_marginals")}
    for name, fn in originals.items():
        setattr(component, name, timed(name, fn))
    for nlp in nlps.values():
        proc = nlp.get_pipe("intent_ner")
        proc.set_annotations = timed("set_annotations", proc.set_annotations)
    try:
        for nlp in nlps.values():
            list(nlp.pipe(texts[:64], batch_size=32))
        times = {(b, name): [] for b in batches for name in nlps}
        parts = {(b, name): {k: [] for k in inside} for b in batches for name in nlps}
        for _ in range(rounds):
            for b in batches:
                sample = texts if b > 1 else texts[:300]
                for name, nlp in nlps.items():
                    for k in inside:
                        inside[k] = 0.0
                    a = time.process_time()
                    for _doc in nlp.pipe(sample, batch_size=b):
                        pass
                    times[b, name].append((time.process_time() - a) / len(sample))
                    for k in inside:
                        parts[b, name][k].append(inside[k] / len(sample))
    finally:
        for name, fn in originals.items():
            setattr(component, name, fn)

    def ms(xs):
        return float(numpy.median(xs)) * 1000

    print(f"{len(texts)} queries ({len(texts[:300])} at batch 1); CPU ms per query, torch 1 thread, median of {rounds}")
    print("| batch | no CRF | CRF | CRF / no CRF | set_annotations, no CRF | set_annotations, CRF | CRF decoder | CRF marginals |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for b in batches:
        base, crf = ms(times[b, "no CRF"]), ms(times[b, "CRF"])
        sa0, sa1 = ms(parts[b, "no CRF"]["set_annotations"]), ms(parts[b, "CRF"]["set_annotations"])
        dec, marg = ms(parts[b, "CRF"]["viterbi"]), ms(parts[b, "CRF"]["crf_marginals"])
        print(
            f"| {b} | {base:.3f} | {crf:.3f} | {crf / base:.2f} | {sa0:.3f} | {sa1:.3f} "
            f"| {dec:.3f} ({dec / crf:.0%}) | {marg:.3f} ({marg / crf:.0%}) |"
        )


def crf_loss(data, batch=32, rounds=5, n_batches=20):
    """Process CPU time of training's CRF loss and gradients (crf.crf_nll) per batch of
    `batch` training docs of DATA (their word counts and gold BIO tags over
    DATA's entity labels; random emission and transition scores): the
    exp-space forward algorithm (crf._log_partition) against the log-sum-exp
    over (docs x tags x tags) per word (crf._log_partition_logsumexp),
    interleaved, one torch thread."""
    import spacy
    from spacy.tokens import DocBin

    from spacy_multitask_intent import crf
    from spacy_multitask_intent.decoding import bio_tags

    torch.set_num_threads(1)
    batch = int(batch)
    docs = [d for d in DocBin().from_disk(data).get_docs(spacy.blank("en").vocab) if len(d)]
    tags = bio_tags(sorted({e.label_ for d in docs for e in d.ents}))
    index = {t: i for i, t in enumerate(tags)}
    rng = numpy.random.RandomState(0)
    rng.shuffle(docs)
    work = []
    for b in range(n_batches):
        chunk = docs[b * batch : (b + 1) * batch]
        lengths = [len(d) for d in chunk]
        gold = numpy.array(
            [index["O" if t.ent_iob_ == "O" else f"{t.ent_iob_}-{t.ent_type_}"] for d in chunk for t in d], "i"
        )
        logits = rng.normal(size=(sum(lengths), len(tags))).astype("f")
        trans = (0.1 * rng.normal(size=(len(tags), len(tags)))).astype("f")
        start = numpy.zeros(len(tags), "f")
        work.append((logits, lengths, gold, trans, start))
    forwards = {"exp space": crf._log_partition, "log-sum-exp": crf._log_partition_logsumexp}
    times = {name: [] for name in forwards}
    worst = 0.0
    try:
        for _ in range(rounds):
            for name, forward in forwards.items():
                crf._log_partition = forward
                a = time.process_time()
                out = [crf.crf_nll(*args, tags) for args in work]
                times[name].append((time.process_time() - a) / len(work))
                if name == "exp space":
                    fast = out
            worst = max(worst, max(abs(f[0] - o[0]) for f, o in zip(fast, out)))
    finally:
        crf._log_partition = forwards["exp space"]
    fast_ms, slow_ms = (float(numpy.median(times[k])) * 1000 for k in forwards)
    words = numpy.mean([sum(w[1]) for w in work])
    print(f"{data}: {len(tags)} tags, {n_batches} batches of {batch} docs ({words:.0f} words per batch on average)")
    print("| forward algorithm | ms per batch (CPU time, median of rounds) |")
    print("|---|---:|")
    print(f"| log-sum-exp over (docs x tags x tags) | {slow_ms:.1f} |")
    print(f"| exp space, (docs x tags) @ (tags x tags) | {fast_ms:.1f} |")
    print(f"ratio {slow_ms / fast_ms:.1f}x; largest loss difference {worst:.1e}; {rounds} rounds, interleaved, one torch thread")


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:] or ["--help"]
    if cmd == "predict-path":
        predict_path(*rest)
    elif cmd == "buckets":
        buckets(rest)
    elif cmd == "span-getter":
        span_getter()
    elif cmd == "decoder-pipeline":
        decoder_pipeline(*rest)
    elif cmd == "crf-cost":
        crf_cost(*rest)
    elif cmd == "crf-loss":
        crf_loss(*rest)
    elif cmd == "viterbi":
        viterbi_decoders(*([rest] if rest else []))
    else:
        print(__doc__)
