#!/usr/bin/env python
"""ONNX Runtime benchmark: five systems in ONE run, on the same queries.

* torch fp32: the trained pipeline (--model) as saved;
* torch int8: the same with ``inference.quantize_int8`` (torch dynamic int8);
* ORT fp32:   ``export MODEL OUT``   (encoder + heads as one ONNX graph);
* ORT int8:   ``export MODEL OUT --int8`` (onnxruntime ``quantize_dynamic``);
* floor:      the raw HF encoder, forward only on pre-tokenised batches
  (``bench.Floor``).

Measured: throughput at batch 1, 32, 256 (``nlp.pipe``; best of --rounds
round-robin rounds), batch-32 throughput of torch fp32, ORT int8 and the
floor taking turns over blocks of 256 queries (the batch-32 targets are its
ratios), single-query p50/p99 (all five systems in alternating
blocks of 50 calls, so they share the machine's conditions), RSS after load
and peak while streaming queries (each system in its own child process),
size on disk.  Systems that share a process move each other's readings
(docs/onnx.md "Timed in isolation"); ``--isolated`` times each system's
throughput and latency in a child process of its own instead, the systems in
turn, a fresh process per system and round, and takes each speed target's
value as the median of the rounds' own ratios (every round's ratio is kept).  With
--model on a gold corpus: agreement of ORT fp32 with
torch over the WHOLE --data set (max |logit difference|, identical spans and
intents), and entity F1 / intent accuracy of the four pipelines (--split N:
also on docs [:N] and [N:] separately).

    python benchmarks/onnx_bench.py --model MODEL --data corpus/store_lookup/test.spacy --out bench_out/onnx
    python benchmarks/onnx_bench.py --model MODEL --data corpus/store_lookup/test.spacy --isolated --rounds 3 \\
        --out bench_out/onnx_isolated
    python benchmarks/onnx_bench.py --model MODEL --data corpus/multidomain/test.spacy --split 893 \\
        --accuracy-only --out bench_out/onnx_md
"""
import argparse
import gc
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (the raw-encoder floor, timing, memory and size helpers)

import numpy  # noqa: E402
import spacy  # noqa: E402

from spacy_multitask_intent.corpus import read_examples  # noqa: E402
from spacy_multitask_intent.inference import predict_heads, quantize_int8  # noqa: E402
from spacy_multitask_intent.model import resolve_encoder_name  # noqa: E402
from spacy_multitask_intent.onnx import export_pipeline  # noqa: E402

SYSTEMS = ("torch_fp32", "torch_int8", "ort_fp32", "ort_int8", "floor")
TARGETS = {
    "ort_int8_b32_vs_torch_fp32": 3.0,  # >=
    "ort_int8_p50_vs_torch_fp32": 0.4,  # <=
    "accuracy_points": 0.3,  # |delta| <= for ents_f and intent_acc (ORT int8 vs torch fp32)
}
log = bench.log


# --in-turn: ORT int8 with a batch's buckets run one at a time on the session's own
# thread pool (OnnxRuntime.workers = 1), beside the default (one bucket per torch thread,
# side by side).
IN_TURN = "ort_int8_in_turn"


def load_system(name, paths):
    if name == "floor":
        return bench.Floor(paths["floor"])
    source = {"torch_int8": "torch_fp32", IN_TURN: "ort_int8"}.get(name, name)
    nlp = spacy.load(paths[source])
    if name == "torch_int8":
        quantize_int8(nlp.get_pipe(bench.intent_ner_name(nlp)))
    if name == IN_TURN:
        nlp.get_pipe(bench.intent_ner_name(nlp)).model.attrs["runtime"].workers = 1
    return nlp


# ------------------------------------------------------------- agreement
def predict_capture(nlp, examples):
    """One predict pass of the pipeline's intent_ner over the examples'
    gold-token docs, as nlp.pipe(batch_size=256): (logits per doc with words,
    in doc order, annotated docs, scores).  The logits are taken per doc, so
    runtimes that cut a batch into different buckets compare doc by doc."""
    from spacy.training import Example

    name = bench.intent_ner_name(nlp)
    proc = nlp.get_pipe(name)
    per_doc = {}

    def record(docs, out):
        outputs, lengths = out
        splits = numpy.cumsum(lengths)[:-1]
        parts = [numpy.split(numpy.asarray(o), splits) for o in outputs]
        for k, d in enumerate(docs):
            per_doc[id(d)] = [p[k] for p in parts]
        return out

    runtime = proc.model.attrs.get("runtime")
    if runtime is not None:  # ONNX Runtime: every bucket goes through OnnxRuntime._run
        orig = runtime._run
        runtime._run = lambda session, docs: record(docs, orig(session, docs))
    else:  # the torch path: every bucket goes through IntentNER._torch_logits
        orig = proc._torch_logits
        proc._torch_logits = lambda docs, heads: record(docs, orig(docs, heads))
    try:
        docs = [eg.predicted.copy() for eg in examples]
        for b in range(0, len(docs), 256):  # as nlp.pipe(batch_size=256)
            batch = docs[b : b + 256]
            proc.set_annotations(batch, proc.predict(batch))
    finally:
        if runtime is not None:
            del runtime._run
        else:
            del proc._torch_logits
    egs = [Example(d, eg.reference) for d, eg in zip(docs, examples)]
    return [per_doc[id(d)] for d in docs if id(d) in per_doc], docs, egs


def same_answers(systems, path, split=None, names=("torch_fp32", "ort_fp32", "ort_int8")):
    """Each system once over every doc of `path` (gold tokens): ORT vs torch
    fp32 max |logit difference| (doc by doc), identical
    spans and intents, and entity F1 / intent accuracy (on [:split] and
    [split:] too)."""
    ref_nlp = systems["torch_fp32"]
    examples = read_examples(ref_nlp, path, gold_tokens=True)
    keys = ("ents_f", "ents_p", "ents_r", "intent_acc", "frame_acc")
    runs, acc = {}, {}
    for name in names:
        log(f"same answers: {name} over {len(examples)} docs")
        nlp = systems[name]
        proc = nlp.get_pipe(bench.intent_ner_name(nlp))
        logits, docs, egs = predict_capture(nlp, examples)
        runs[name] = (logits, docs)
        parts = {"all": egs}
        if split:
            parts.update({f"[:{split}]": egs[:split], f"[{split}:]": egs[split:]})
        acc[name] = {}
        for part, sub in parts.items():
            scores = proc.score(sub)
            acc[name][part] = {k: scores.get(k) for k in keys}
    tproc = ref_nlp.get_pipe(bench.intent_ner_name(ref_nlp))
    t_logits, t_docs = runs["torch_fp32"]
    agree = {}
    for name in names[1:]:
        o_logits, o_docs = runs[name]
        assert len(o_logits) == len(t_logits)
        diff = {"ner": 0.0, "intent": 0.0}
        for t, o in zip(t_logits, o_logits):
            diff["ner"] = max(diff["ner"], float(numpy.abs(t[0] - o[0]).max()))
            if tproc.uses_intents:
                diff["intent"] = max(diff["intent"], float(numpy.abs(t[1] - o[1]).max()))
        oproc = systems[name].get_pipe(bench.intent_ner_name(systems[name]))
        same_spans = same_intents = 0
        mism = []
        for a, b in zip(t_docs, o_docs):
            sa = [(e.start, e.end, e.label_) for e in a.ents]
            sb = [(e.start, e.end, e.label_) for e in b.ents]
            same_spans += sa == sb
            same_intents += tproc.decide_intents(a) == oproc.decide_intents(b)
            if sa != sb and len(mism) < 5:
                mism.append({"text": a.text, "torch": sa, "ort": sb})
        agree[name] = {
            "docs": len(t_docs),
            "max_abs_logit_diff": diff,
            "identical_spans": same_spans,
            "identical_intents": same_intents,
            "span_mismatches": mism,
        }
    return agree, acc


# ----------------------------------------------------------------- speed
def throughput(sys_obj, texts, b):
    if isinstance(sys_obj, bench.Floor):
        return sys_obj.throughput(texts, b)
    return bench.pipe_throughput(sys_obj, texts, b)


PAIRED = ("torch_fp32", "ort_int8", "floor")


def paired_throughput(systems, texts, b, block=256):
    """q/s at batch `b` with the systems of PAIRED taking turns over blocks of
    `block` queries, so that the machine's drift over minutes (tens of
    percent on a shared VM) hits each alike; the batch-32 targets are ratios
    of these.  The floor's blocks are tokenized outside its timing, as in
    ``bench.Floor.throughput``."""
    names = [n for n in PAIRED if n in systems]
    for name in names:  # warm-up
        s = systems[name]
        if name == "floor":
            s.forward(s.encode(texts[:b], b))
        else:
            for _ in s.pipe(texts[:b], batch_size=b):
                pass
    total = {name: 0.0 for name in names}
    for start in range(0, len(texts), block):
        chunk = texts[start: start + block]
        for name in names:
            s = systems[name]
            if name == "floor":
                batches = s.encode(chunk, b)
                t0 = time.perf_counter()
                s.forward(batches)
            else:
                t0 = time.perf_counter()
                for _ in s.pipe(chunk, batch_size=b):
                    pass
            total[name] += time.perf_counter() - t0
    return {name: {"qps": len(texts) / total[name], "seconds": total[name]} for name in names}


def paired_latency(systems, texts, n, block=50):
    """p50/p99 of single queries, the systems taking turns in blocks."""
    import torch

    singles = systems["floor"].encode(texts[: min(len(texts), n)], 1) if "floor" in systems else None
    for name, s in systems.items():  # warm-up
        for k in range(10):
            if name == "floor":
                with torch.inference_mode():
                    s.model(**singles[k % len(singles)])
            else:
                s(texts[k % len(texts)])
    times = {name: [] for name in systems}
    i = 0
    while i < n:
        idx = [(i + j) % min(len(texts), n) for j in range(min(block, n - i))]
        for name, s in systems.items():
            if name == "floor":
                with torch.inference_mode():
                    for k in idx:
                        t0 = time.perf_counter()
                        s.model(**singles[k])
                        times[name].append(time.perf_counter() - t0)
            else:
                for k in idx:
                    t0 = time.perf_counter()
                    s(texts[k])
                    times[name].append(time.perf_counter() - t0)
        i += len(idx)
    return {k: {kk: vv for kk, vv in bench.lat_summary(v).items() if kk != "raw_ms"} for k, v in times.items()}


def rss_child(name, paths, data, n):
    """In a fresh process: RSS after loading `name`, and peak while it runs
    n queries at batch 32."""
    code = (
        "import json, sys; sys.path.insert(0, %r); import onnx_bench as ob, bench\n"
        "bench.reset_peak(); before = bench.mem(); s = ob.load_system(%r, %r); loaded = bench.mem()\n"
        "texts = bench.cycle(bench.read_texts(%r), %d)\n"
        "bench.reset_peak()\n"
        "if %r == 'floor': s.run_queries(texts, len(texts))\n"
        "else: [None for _ in s.pipe(texts, batch_size=32)]\n"
        "print(json.dumps({'before_load': before, 'after_load': loaded, 'after_queries': bench.mem()}))\n"
    ) % (str(HERE), name, {k: str(v) for k, v in paths.items()}, str(data), n, name)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    if out.returncode != 0:
        return {"error": out.stderr[-1000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def speed_child(name, paths, data, n_queries, n_queries_b1, latency_calls):
    """In a fresh process (``--isolated``): one system's throughput at every
    batch size, then its single-query latency, on the same queries as the
    in-process run."""
    s = load_system(name, {k: Path(v) for k, v in paths.items()})
    texts = bench.read_texts(data)
    res = {"throughput": {}}
    for b in bench.BATCH_SIZES:
        qs = bench.cycle(texts, n_queries_b1 if b == 1 else max(n_queries, b))
        res["throughput"][str(b)] = throughput(s, qs, b)
    res["latency"] = paired_latency({name: s}, texts, latency_calls)[name]
    return res


def isolated_rounds(paths, args):
    """``--isolated``: ``--rounds`` rounds, each system timed in turn by a
    child process of its own (``speed_child``)."""
    rounds = []
    for rnd in range(args.rounds):
        row = {}
        for name in SYSTEMS:
            log(f"round {rnd} {name}: throughput and latency in a child process")
            code = (
                "import json, sys; sys.path.insert(0, %r); import onnx_bench as ob\n"
                "print(json.dumps(ob.speed_child(%r, %r, %r, %d, %d, %d)))\n"
            ) % (str(HERE), name, {k: str(v) for k, v in paths.items()}, str(args.data),
                 args.n_queries, args.n_queries_b1, args.latency_calls)
            row[name] = bench.child_json(["-c", code], f"onnx_bench --isolated: the child for {name}")
        rounds.append(row)
    return rounds


def summarize_isolated(R, rounds):
    """The table's entries from the isolated rounds: throughput best of rounds
    (as in-process), p50 / p99 the median of the rounds; and each round's
    ratios, whose medians are the targets' values."""
    R["throughput"] = {}
    for name in SYSTEMS:
        R["throughput"][name] = {}
        for b in map(str, bench.BATCH_SIZES):
            runs = [r[name]["throughput"][b] for r in rounds]
            best = dict(max(runs, key=lambda x: x["qps"]))
            best["rounds_qps"] = [x["qps"] for x in runs]
            R["throughput"][name][b] = best
    R["latency"] = {name: {k: float(numpy.median([r[name]["latency"][k] for r in rounds]))
                           for k in rounds[0][name]["latency"]} for name in SYSTEMS}
    R["isolated_ratios"] = {
        "ort_int8_b32_vs_torch_fp32": [r["ort_int8"]["throughput"]["32"]["qps"] / r["torch_fp32"]["throughput"]["32"]["qps"]
                                       for r in rounds],
        "ort_int8_p50_vs_torch_fp32": [r["ort_int8"]["latency"]["p50_ms"] / r["torch_fp32"]["latency"]["p50_ms"]
                                       for r in rounds],
        "torch_fp32_b32_vs_floor": [r["torch_fp32"]["throughput"]["32"]["qps"] / r["floor"]["throughput"]["32"]["qps"]
                                    for r in rounds],
    }
    if IN_TURN in SYSTEMS:
        R["isolated_ratios"][f"{IN_TURN}_b32_vs_torch_fp32"] = [
            r[IN_TURN]["throughput"]["32"]["qps"] / r["torch_fp32"]["throughput"]["32"]["qps"] for r in rounds]


def size_on_disk(name, paths, systems):
    if name == "torch_int8":
        return bench.model_size(systems["torch_int8"]) if "torch_int8" in systems else None
    return bench.dir_size(paths[name])


# ------------------------------------------------------------------ main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--model", required=True, help="trained intent_ner pipeline (torch)")
    p.add_argument("--data", required=True, help="gold .spacy test set: agreement, accuracy; its 5-15-word texts are the queries")
    p.add_argument("--out", required=True, help="output folder (onnx_bench.json)")
    p.add_argument("--ort-fp32", default=None, help="an existing fp32 export of --model (default: export now)")
    p.add_argument("--ort-int8", default=None, help="an existing int8 export of --model (default: export now)")
    p.add_argument("--split", type=int, default=None, help="also score docs [:N] and [N:] of --data separately")
    p.add_argument("--accuracy-systems", default="torch_fp32,ort_fp32,ort_int8",
                   help="comma-separated systems run over --data, torch_fp32 first (torch_int8 may be added)")
    p.add_argument("--accuracy-only", action="store_true", help="agreement + accuracy, no speed")
    p.add_argument("--speed-only", action="store_true", help="no agreement / accuracy (e.g. an untrained pipeline)")
    p.add_argument("--n-queries", type=int, default=2048, help="queries per batch-32/256 throughput run")
    p.add_argument("--n-queries-b1", type=int, default=300, help="queries for the batch-1 run")
    p.add_argument("--latency-calls", type=int, default=500, help="single-query calls per system")
    p.add_argument("--rss-queries", type=int, default=2048, help="queries streamed in each RSS child process (0: no RSS children)")
    p.add_argument("--rounds", type=int, default=None,
                   help="round-robin rounds of the throughput runs, best kept (default 2; 1 with --quick); "
                        "with --isolated also of the latency runs, their median kept")
    p.add_argument("--quick", action="store_true", help="small sample sizes: a smoke test")
    p.add_argument("--isolated", action="store_true",
                   help="time each system in its own child process, the systems in turn, --rounds times")
    p.add_argument("--in-turn", action="store_true",
                   help=f"a sixth system, {IN_TURN}: ORT int8 running a batch's buckets one at a time "
                        "on the session's thread pool instead of side by side")
    a = p.parse_args(argv)
    if a.quick:
        a.n_queries, a.n_queries_b1, a.latency_calls, a.rss_queries = 64, 16, 20, 64
    if a.rounds is None:
        a.rounds = 1 if a.quick else 2
    if a.rounds < 1:
        p.error(f"--rounds must be at least 1, got {a.rounds}")
    if a.isolated and a.accuracy_only:
        p.error("--isolated times the systems; --accuracy-only times nothing: give one of them")
    return a


def main(argv=None):
    global SYSTEMS
    args = parse_args(argv)
    if args.in_turn:
        SYSTEMS = SYSTEMS + (IN_TURN,)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="onnx_bench_"))
    t_start = time.perf_counter()
    R = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "args": vars(args),
        "env": bench.env_info(),
        "notes": [],
    }
    try:
        import onnxruntime

        R["env"]["versions"]["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    paths = {"torch_fp32": Path(args.model), "ort_fp32": tmp / "ort_fp32", "ort_int8": tmp / "ort_int8"}
    for name, int8 in (("ort_fp32", False), ("ort_int8", True)):
        if getattr(args, name):
            paths[name] = Path(getattr(args, name))
            continue
        log(f"export {name}")
        t0 = time.perf_counter()
        export_pipeline(args.model, paths[name], int8=int8)
        R.setdefault("export_seconds", {})[name] = time.perf_counter() - t0
    torch_nlp = spacy.load(args.model)
    enc_cfg = torch_nlp.config.interpolate()["components"][bench.intent_ner_name(torch_nlp)]["model"].get("encoder", {})
    paths["floor"] = Path(resolve_encoder_name(enc_cfg.get("name", "all-MiniLM-L6-v2")))
    paths[IN_TURN] = paths["ort_int8"]
    R["paths"] = {k: str(v) for k, v in paths.items()}

    # ---- same answers
    systems = {"torch_fp32": torch_nlp}
    for name in (n for n in SYSTEMS if n not in ("torch_fp32", "floor")):
        if args.accuracy_only and name not in args.accuracy_systems.split(","):
            continue
        systems[name] = load_system(name, paths)  # torch_int8: quantized from a fresh load
    if not args.speed_only:
        agree, R["accuracy"] = same_answers(systems, args.data, args.split, tuple(args.accuracy_systems.split(",")))
        R["agreement"], R["agreement_int8"] = agree.get("ort_fp32"), agree.get("ort_int8")
    R["size_on_disk"] = {name: size_on_disk(name, paths, systems) for name in SYSTEMS}

    if not args.accuracy_only and args.isolated:
        texts = bench.read_texts(args.data)
        R["queries"] = {"n_texts": len(texts), "n_words": bench.n_words(texts)}
        del systems, torch_nlp  # the children load their own
        gc.collect()
        R["isolated_rounds"] = isolated_rounds(paths, args)
        summarize_isolated(R, R["isolated_rounds"])
    elif not args.accuracy_only:
        systems["floor"] = load_system("floor", paths)
        texts = bench.read_texts(args.data)
        R["queries"] = {"n_texts": len(texts), "n_words": bench.n_words(texts)}
        R["throughput"] = {name: {} for name in SYSTEMS}
        for rnd in range(args.rounds):
            for b in bench.BATCH_SIZES:
                qs = bench.cycle(texts, args.n_queries_b1 if b == 1 else max(args.n_queries, b))
                for name in SYSTEMS:
                    log(f"round {rnd} {name} throughput batch {b} ({len(qs)} queries)")
                    res = throughput(systems[name], qs, b)
                    prev = R["throughput"][name].get(str(b))
                    res["rounds_qps"] = (prev["rounds_qps"] if prev else []) + [res["qps"]]
                    if prev is None or res["qps"] > prev["qps"]:
                        R["throughput"][name][str(b)] = res
                    else:
                        prev["rounds_qps"] = res["rounds_qps"]
        qs = bench.cycle(texts, 2 * max(args.n_queries, 32))
        log(f"paired batch-32 throughput ({len(qs)} queries, {', '.join(PAIRED)} in turns)")
        R["paired_b32"] = paired_throughput(systems, qs, 32)
        log(f"paired single-query latency ({args.latency_calls} calls each)")
        R["latency"] = paired_latency(systems, texts, args.latency_calls)
        del systems
        gc.collect()
    if not args.accuracy_only:
        R["rss"] = {}
        for name in SYSTEMS if args.rss_queries > 0 else ():
            log(f"RSS child {name}")
            R["rss"][name] = rss_child(name, paths, args.data, args.rss_queries)
        R["targets"] = targets(R)
    R["seconds"] = time.perf_counter() - t_start
    (out / "onnx_bench.json").write_text(json.dumps(R, indent=2, default=str))
    (out / "onnx_bench.md").write_text(render_markdown(R))
    print(json.dumps({k: R[k] for k in ("agreement", "agreement_int8", "accuracy", "targets") if k in R}, indent=2, default=str))
    print((out / "onnx_bench.json"))


def render_markdown(R) -> str:
    """The tables of one run (what docs/onnx.md quotes)."""
    f = lambda x, nd=1: "–" if x is None else f"{x:,.{nd}f}"  # noqa: E731
    L = [f"Command: `{R['command']}`", ""]
    if "agreement" in R:
        for key, title in (("agreement", "ORT fp32"), ("agreement_int8", "ORT int8")):
            A = R[key]
            if not A:
                continue
            L.append(
                f"- {title} vs torch fp32 on all {A['docs']} docs: max |logit diff| NER "
                f"{A['max_abs_logit_diff']['ner']:.2e}, intent {A['max_abs_logit_diff']['intent']:.2e}; "
                f"identical spans {A['identical_spans']}/{A['docs']}, identical intents "
                f"{A['identical_intents']}/{A['docs']}"
            )
        L += ["", "| system | part | ents_f | intent_acc | frame_acc |", "|---|---|---|---|---|"]
        for name, parts in R["accuracy"].items():
            for part, sc in parts.items():
                pct = lambda v: "–" if v is None else f"{100 * v:.2f}"  # noqa: E731
                L.append(f"| {name} | {part} | {pct(sc['ents_f'])} | {pct(sc['intent_acc'])} | {pct(sc['frame_acc'])} |")
        L.append("")
    if "throughput" in R:
        L += [
            "| system | q/s b=1 | q/s b=32 | q/s b=256 | p50 ms | p99 ms | RSS after load MiB | peak RSS MiB | size MB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name in SYSTEMS:
            t, lat, rss = R["throughput"][name], R["latency"][name], R["rss"].get(name, {})
            size = (R["size_on_disk"].get(name) or {}).get("MB")
            L.append(
                f"| {name} | {f(t['1']['qps'])} | {f(t['32']['qps'])} | {f(t['256']['qps'])} | "
                f"{f(lat['p50_ms'], 2)} | {f(lat['p99_ms'], 2)} | "
                f"{f((rss.get('after_load') or {}).get('VmRSS_MiB'), 0)} | "
                f"{f((rss.get('after_queries') or {}).get('VmHWM_MiB'), 0)} | {f(size, 1)} |"
            )
        if "isolated_ratios" in R:
            L += ["", "Each system timed in a child process of its own, the systems in turn, "
                  f"{len(R['isolated_rounds'])} rounds (throughput: best of rounds; p50 / p99: median of rounds). "
                  "Each round's ratios: "
                  + "; ".join(f"{k} " + ", ".join(f"{v:.3f}" for v in vs) for k, vs in R["isolated_ratios"].items())
                  + "."]
        if "paired_b32" in R:
            P = R["paired_b32"]
            L += ["", "Batch 32 with " + ", ".join(P) + " taking turns over blocks of 256 queries (the targets' ratios): "
                  + ", ".join(f"{k} {f(v['qps'])} q/s" for k, v in P.items())
                  + "; the same ratios from the table above: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in R.get("best_of_rounds_ratios", {}).items()) + "."]
        L += ["", "| target | value | met |", "|---|---|---|"]
        for k, v in R.get("targets", {}).items():
            L.append(f"| {k} {v['target']} | {v['value']:.3f} | {'met' if v['met'] else 'missed'} |")
    return "\n".join(L) + "\n"


def targets(R):
    T = {}
    thr = R["throughput"]
    # The batch-32 ratios from the paired run (systems in turns) when there is
    # one; the best-of-rounds table's ratios are kept beside them.
    b32 = {k: v["qps"] for k, v in R["paired_b32"].items()} if "paired_b32" in R else {
        k: thr[k]["32"]["qps"] for k in PAIRED}
    for key, (a, c) in {"ort_int8_b32_vs_torch_fp32": ("ort_int8", "torch_fp32"),
                        "torch_fp32_b32_vs_floor": ("torch_fp32", "floor")}.items():
        R.setdefault("best_of_rounds_ratios", {})[key] = thr[a]["32"]["qps"] / thr[c]["32"]["qps"]
    lat = R["latency"]
    if "isolated_ratios" in R:  # the median of the rounds' own ratios
        ratio = {k: float(numpy.median(v)) for k, v in R["isolated_ratios"].items()}
    else:
        ratio = {"ort_int8_b32_vs_torch_fp32": b32["ort_int8"] / b32["torch_fp32"],
                 "ort_int8_p50_vs_torch_fp32": lat["ort_int8"]["p50_ms"] / lat["torch_fp32"]["p50_ms"],
                 "torch_fp32_b32_vs_floor": b32["torch_fp32"] / b32["floor"]}
    r = ratio["ort_int8_b32_vs_torch_fp32"]
    T["ort_int8_b32_vs_torch_fp32"] = {"value": r, "target": ">= 3.0", "met": r >= 3.0}
    r = ratio["ort_int8_p50_vs_torch_fp32"]
    T["ort_int8_p50_vs_torch_fp32"] = {"value": r, "target": "<= 0.4", "met": r <= 0.4}
    r = ratio["torch_fp32_b32_vs_floor"]
    T["torch_fp32_b32_vs_floor"] = {"value": r, "target": ">= 0.95 (reported only)", "met": r >= 0.95}
    acc = R.get("accuracy", {})
    for key in ("ents_f", "intent_acc"):
        if not acc:
            break
        a, b = acc["torch_fp32"]["all"].get(key), acc["ort_int8"]["all"].get(key)
        if a is not None and b is not None:
            d = 100 * (b - a)
            T[f"ort_int8_{key}_points"] = {"value": d, "target": "abs(points) <= 0.3", "met": abs(d) <= 0.3}
    return T


if __name__ == "__main__":
    main()
