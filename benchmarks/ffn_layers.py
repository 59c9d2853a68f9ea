#!/usr/bin/env python
"""Which encoder layers' feed-forward output projections int8 hurts most.

For each set of layers, ``export MODEL --int8 --fp32-ffn-layers SET`` (those
layers' feed-forward output projections fp32, every other weight int8, one
scale per output column), then entity F1 and intent accuracy over every doc of
--data (gold tokens), each against torch fp32 on the same docs, and the
graph's size.  ``none`` is plain ``--int8``; ``all`` is ``--fp32-ffn-out``.

    python benchmarks/ffn_layers.py --model MODEL --data corpus/snips/test.spacy \\
        --sets none,0,1,2,3,4,5,all --out benchmarks/results/runtime/ffn_layers_snips.json

Speed is not measured here (``benchmarks/ort_graph.py --graph NAME=EXPORT``
times an export's graph beside plain int8).
"""
import argparse
import json
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402
import onnx_bench  # noqa: E402  (same_answers: the scoring of the five-way benchmark)

import spacy  # noqa: E402

from spacy_multitask_intent.onnx import ONNX_FILE, export_pipeline  # noqa: E402


def parse_set(text: str):
    """'none' -> False (plain int8), 'all' -> True, '4+5' or '4' -> [4, 5] / [4]."""
    text = text.strip()
    if text == "none":
        return False
    if text == "all":
        return True
    try:
        return sorted({int(x) for x in text.split("+")})
    except ValueError:
        raise SystemExit(f"ffn_layers: --sets entry '{text}' is not none, all or layer indices joined by '+'") from None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="trained pipeline (torch)")
    p.add_argument("--data", required=True, help="gold .spacy test set")
    p.add_argument("--sets", default="none,0,1,2,3,4,5,all", help="comma-separated: none, all, or layers joined by '+'")
    p.add_argument("--out", required=True, help="JSON file to write")
    args = p.parse_args(argv)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    parsed = {s: parse_set(s) for s in sets}
    R = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "env": bench.env_info(), "sets": {}}
    tmp = Path(tempfile.mkdtemp(prefix="ffn_layers_"))
    try:
        systems, paths = {"torch_fp32": spacy.load(args.model)}, {}
        for name, layers in parsed.items():
            paths[name] = tmp / f"set_{len(paths)}"
            bench.log(f"export int8, fp32 feed-forward outputs: {name}")
            export_pipeline(args.model, paths[name], int8=True, fp32_ffn_out=layers)
            systems[name] = spacy.load(paths[name])
        t0 = time.perf_counter()
        agree, acc = onnx_bench.same_answers(systems, args.data, None, ("torch_fp32", *parsed))
        R["score_seconds"] = time.perf_counter() - t0
        ref = acc["torch_fp32"]["all"]
        R["torch_fp32"] = ref
        for name in parsed:
            got = acc[name]["all"]
            R["sets"][name] = {
                "ents_f": got["ents_f"],
                "intent_acc": got["intent_acc"],
                "delta_points": {k: 100 * (got[k] - ref[k]) for k in ("ents_f", "intent_acc") if ref.get(k) is not None},
                "identical_spans": agree[name]["identical_spans"],
                "identical_intents": agree[name]["identical_intents"],
                "docs": agree[name]["docs"],
                "size_mib": (paths[name] / bench.intent_ner_name(systems[name]) / ONNX_FILE).stat().st_size / 2**20,
            }
            d = R["sets"][name]["delta_points"]
            print(
                f"{name:>6}: F1 {d.get('ents_f', 0):+.2f}  intent {d.get('intent_acc', 0):+.2f}  "
                f"spans {agree[name]['identical_spans']}/{agree[name]['docs']}  "
                f"intents {agree[name]['identical_intents']}/{agree[name]['docs']}  {R['sets'][name]['size_mib']:.1f} MiB",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(R, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
