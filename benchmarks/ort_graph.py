#!/usr/bin/env python
"""How far the batch-32 ratio "ORT int8 / torch fp32" can go: the exported
int8 graph alone against both pipelines.

Four systems take turns over blocks of 256 queries, at batch 32:

- ``torch_fp32``: ``nlp.pipe`` of the torch pipeline;
- ``ort_int8``: ``nlp.pipe`` of its int8 export;
- ``ort_int8_graph``: the int8 export's ``session.run`` alone, on the inputs
  ``nlp.pipe`` would give it (computed before the timer starts): no spaCy
  tokenizer, no word-piece tokenizer, no decoding, no Docs;
- ``ort_int8_graph_halves`` (with ``--halves``): the same, each batch of 32
  sorted by length and run as two calls of 16 (less padding, one more call);
- ``graph:NAME`` (with ``--graph NAME=EXPORT``, repeatable): the ``session.run``
  of another export of the same pipeline (e.g. another quantization) on the
  same inputs.

Each repetition prints queries/s and the ratios.  ``ort_int8_graph /
torch_fp32`` is what the pipeline's ratio would be with a host side that
cost nothing.

Systems that take turns in one process move each other's readings.  One
cause: after a call, ONNX Runtime's thread pool goes on spinning on cores the
next system needs; torch's OpenMP threads may do the same.  ``--no-spin``
gives every ONNX Runtime session of the run
``session.intra_op.allow_spinning = 0`` (``OMP_WAIT_POLICY=PASSIVE`` in the
environment does the same for torch's OpenMP threads); in one run each way it
removed most of the bias between two ONNX Runtime sessions (docs/onnx.md
"Spinning").  ``--isolated`` times each system in its own child process
instead (load, one warm-up block, then every block), the systems in turn, a
fresh process per system and repetition: no system shares a process with
another.

    python benchmarks/ort_graph.py --model MODEL --int8 EXPORT_INT8 \\
        --data corpus/store_lookup/test.spacy --reps 3 --isolated

    python benchmarks/ort_graph.py --model training/store_lookup/multitask/model-best \\
        --int8 EXPORT_INT8 --data corpus/store_lookup/test.spacy --reps 3 --halves
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import spacy  # noqa: E402


def onnx_runtime(nlp, path):
    """The ONNX runtime of the exported pipeline ``nlp`` loaded from ``path``."""
    runtime = nlp.get_pipe(bench.intent_ner_name(nlp)).model.attrs.get("runtime")
    if runtime is None:
        raise SystemExit(f"ort_graph: {path} is not an exported (ONNX) intent_ner pipeline")
    return runtime


def no_spin():
    """Every ONNX Runtime session created from now on in this process lets its
    intra-op threads sleep when a call ends instead of spinning."""
    import onnxruntime as ort

    base = ort.SessionOptions

    class NoSpinOptions(base):
        def __init__(self):
            super().__init__()
            self.add_session_config_entry("session.intra_op.allow_spinning", "0")

    ort.SessionOptions = NoSpinOptions


def graph_inputs(nlp, runtime, texts, batch=32, halves=False):
    """The feeds ``intent_ner.predict`` hands to ``runtime`` (the ONNX runtime
    of ``nlp``) for each batch of ``texts`` (its docs sorted by length, as
    predict does), or, with ``halves``, for each half of each sorted batch."""
    keep = set(runtime.meta["inputs"])
    feeds = []
    for start in range(0, len(texts), batch):
        docs = sorted((nlp.make_doc(t) for t in texts[start: start + batch]), key=len)
        parts = [docs[: len(docs) // 2], docs[len(docs) // 2:]] if halves and len(docs) > 1 else [docs]
        for part in parts:
            feeds.append({k: v for k, v in runtime.inputs(part).items() if k in keep})
    return runtime.session, feeds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--model", required=True, help="trained intent_ner pipeline (torch)")
    p.add_argument("--int8", required=True, help="its int8 export (python -m spacy_multitask_intent export MODEL OUT --int8)")
    p.add_argument("--data", required=True, help=".spacy corpus: its 5-15-word texts are the queries")
    p.add_argument("--queries", type=int, default=2048)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--halves", action="store_true", help="also time the graph on length-sorted halves of each batch")
    p.add_argument("--graph", action="append", default=[], metavar="NAME=EXPORT",
                   help="also time the graph alone of this export (repeatable)")
    p.add_argument("--out", default=None, help="write the repetitions as JSON here")
    p.add_argument("--isolated", action="store_true",
                   help="time each system in its own child process, the systems in turn (see above)")
    p.add_argument("--no-spin", action="store_true",
                   help="ONNX Runtime sessions with session.intra_op.allow_spinning = 0 (see above)")
    p.add_argument("--only", default=None, help=argparse.SUPPRESS)  # the child of --isolated: one system
    a = p.parse_args(argv)
    if a.no_spin:
        no_spin()
    specs = {}
    for spec in a.graph:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"ort_graph: --graph takes NAME=EXPORT, got {spec!r}")
        specs["graph:" + name] = path
    systems = ("torch_fp32", "ort_int8", "ort_int8_graph", *(("ort_int8_graph_halves",) if a.halves else ()), *specs)
    if a.isolated and a.only is None:
        return isolated(a, argv, systems)
    only = a.only
    if only is not None and only not in systems:
        raise SystemExit(f"ort_graph: --only {only!r} is not one of {systems}")
    need = (lambda s: True) if only is None else (lambda s: s == only)
    torch_nlp = spacy.load(a.model) if need("torch_fp32") else None
    ort_nlp = spacy.load(a.int8) if only is None or only.startswith("ort_int8") else None
    ort_runtime = onnx_runtime(ort_nlp, a.int8) if ort_nlp is not None else None
    texts = bench.cycle(bench.read_texts(a.data), a.queries)
    blocks = [texts[s: s + 256] for s in range(0, len(texts), 256)]
    graphs = {}
    if need("ort_int8_graph"):
        graphs["ort_int8_graph"] = [graph_inputs(ort_nlp, ort_runtime, b) for b in blocks]
    if a.halves and need("ort_int8_graph_halves"):
        graphs["ort_int8_graph_halves"] = [graph_inputs(ort_nlp, ort_runtime, b, halves=True) for b in blocks]
    for name, path in specs.items():
        if need(name):
            other = spacy.load(path)
            # Its own inputs (an export may take other ones, e.g. no token_type_ids).
            graphs[name] = [graph_inputs(other, onnx_runtime(other, path), b) for b in blocks]

    # Share of the sub-word positions each graph system computes that are
    # real (attention mask 1), not padding.
    real = {name: round(sum(int(f["attention_mask"].sum()) for _, feeds in blocks_ for f in feeds)
                        / sum(f["attention_mask"].size for _, feeds in blocks_ for f in feeds), 3)
            for name, blocks_ in graphs.items()}
    print(json.dumps({"real_positions": real}), flush=True)

    def run(system, i):
        if system in graphs:
            session, feeds = graphs[system][i]
            t0 = time.perf_counter()
            for f in feeds:
                session.run(None, f)
            return time.perf_counter() - t0
        nlp = torch_nlp if system == "torch_fp32" else ort_nlp
        t0 = time.perf_counter()
        for _ in nlp.pipe(blocks[i], batch_size=32):
            pass
        return time.perf_counter() - t0

    if only is not None:
        run(only, 0)  # warm-up
        total = sum(run(only, i) for i in range(len(blocks)))
        print(json.dumps({"only": only, "qps": len(texts) / total}), flush=True)
        return
    for s in systems:  # warm-up
        run(s, 0)
    reps = []
    for rep in range(a.reps):
        total = dict.fromkeys(systems, 0.0)
        for i in range(len(blocks)):
            for s in systems:
                total[s] += run(s, i)
        qps = {s: len(texts) / total[s] for s in systems}
        row = {"rep": rep, "qps": {s: round(v, 1) for s, v in qps.items()}, **ratios(qps)}
        print(json.dumps(row), flush=True)
        reps.append(row)
    if a.out:
        Path(a.out).write_text(json.dumps({"command": "python " + " ".join(sys.argv), "env": bench.env_info(),
                                           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "no_spin": a.no_spin,
                                           "real_positions": real, "reps": reps}, indent=2) + "\n")


def ratios(qps):
    """The ratios of one repetition's queries/s: every graph system (halves,
    ``graph:NAME``) against the int8 export's own graph."""
    row = {"ort_int8/torch_fp32": round(qps["ort_int8"] / qps["torch_fp32"], 3),
           "ort_int8_graph/torch_fp32": round(qps["ort_int8_graph"] / qps["torch_fp32"], 3),
           "ort_int8/ort_int8_graph": round(qps["ort_int8"] / qps["ort_int8_graph"], 3)}
    for g in qps:
        if g == "ort_int8_graph_halves" or g.startswith("graph:"):
            row[g + "/ort_int8_graph"] = round(qps[g] / qps["ort_int8_graph"], 3)
    return row


def isolated(a, argv, systems):
    """--isolated: each system timed by a child process of its own (``--only``),
    the systems in turn, ``--reps`` times."""
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = [x for x in argv if x != "--isolated" and not x.startswith("--out=")]
    if "--out" in argv:  # the parent writes the JSON, not the children
        i = argv.index("--out")
        del argv[i: i + 2]
    reps = []
    for rep in range(a.reps):
        qps = {}
        for s in systems:
            # The child's last JSON line is its {"only": ..., "qps": ...}.
            qps[s] = bench.child_json([__file__, *argv, "--only", s], f"ort_graph --isolated: the child for {s}")["qps"]
        row = {"rep": rep, "qps": {s: round(v, 1) for s, v in qps.items()}, **ratios(qps)}
        print(json.dumps(row), flush=True)
        reps.append(row)
    if a.out:
        Path(a.out).write_text(json.dumps({"command": "python " + " ".join(sys.argv), "env": bench.env_info(),
                                           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "no_spin": a.no_spin,
                                           "isolated": True, "reps": reps}, indent=2) + "\n")


if __name__ == "__main__":
    main()
