#!/usr/bin/env python
"""Batch-32 throughput of ``intent_ner`` with its host side as arrays
(``wordpieces.batch_inputs`` + ``inference.fast_logits``, the default), with
spacy-transformers' host side instead (the path long docs take), and of the
raw HF encoder floor on the same batches (``bench.Floor``: forward only,
tokenized outside the timing).  The three take turns over blocks of 256
queries, so the machine's drift hits each alike; each repetition prints
queries/s and the ratios to the floor.

    python benchmarks/host_path.py --model training/store_lookup/multitask/model-best \\
        --data corpus/store_lookup/test.spacy --reps 3
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import spacy  # noqa: E402

import spacy_multitask_intent.component as component  # noqa: E402
from spacy_multitask_intent.model import resolve_encoder_name  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help=".spacy corpus: its 5-15-word texts are the queries")
    p.add_argument("--queries", type=int, default=2048)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default=None, help="write the repetitions as JSON here")
    a = p.parse_args(argv)
    nlp = spacy.load(a.model)
    name = bench.intent_ner_name(nlp)
    enc = nlp.config.interpolate()["components"][name]["model"].get("encoder", {})
    floor = bench.Floor(resolve_encoder_name(enc.get("name", "all-MiniLM-L6-v2")))
    texts = bench.cycle(bench.read_texts(a.data), a.queries)
    arrays = component.fast_logits

    def run(system, chunk):
        if system == "floor":
            batches = floor.encode(chunk, 32)
            t0 = time.perf_counter()
            floor.forward(batches)
            return time.perf_counter() - t0
        component.fast_logits = arrays if system == "arrays" else (lambda *args: None)
        try:
            t0 = time.perf_counter()
            for _ in nlp.pipe(chunk, batch_size=32):
                pass
            return time.perf_counter() - t0
        finally:
            component.fast_logits = arrays

    systems = ("arrays", "spacy_transformers", "floor")
    for s in systems:  # warm-up
        run(s, texts[:64])
    reps = []
    for rep in range(a.reps):
        total = dict.fromkeys(systems, 0.0)
        for start in range(0, len(texts), 256):
            for s in systems:
                total[s] += run(s, texts[start: start + 256])
        qps = {s: len(texts) / total[s] for s in systems}
        row = {"rep": rep, "qps": {s: round(v, 1) for s, v in qps.items()},
               "arrays/floor": round(qps["arrays"] / qps["floor"], 3),
               "spacy_transformers/floor": round(qps["spacy_transformers"] / qps["floor"], 3),
               "arrays/spacy_transformers": round(qps["arrays"] / qps["spacy_transformers"], 3)}
        print(json.dumps(row), flush=True)
        reps.append(row)
    if a.out:
        Path(a.out).write_text(json.dumps({"command": "python " + " ".join(sys.argv), "env": bench.env_info(),
                                           "reps": reps}, indent=2) + "\n")


if __name__ == "__main__":
    main()
