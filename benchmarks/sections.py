#!/usr/bin/env python
"""Where `nlp.pipe`'s time goes: wall time per query of each section of an
intent_ner pipeline's prediction, next to the raw HF encoder's forward on the
same batches (``bench.Floor``, tokenized outside its timer).

Sections: the encoder's forward (a hook on the HF module), ``predict``,
``set_annotations``, spaCy's tokenizer, and, when a batch takes
spacy-transformers' host path, its tokenizer call and alignment.

    python benchmarks/sections.py --model training/store_lookup/multitask/model-best \\
        --data corpus/store_lookup/test.spacy [--batch 32] [--rounds 2]
"""
import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import spacy  # noqa: E402
import spacy_transformers.layers.transformer_model as transformer_model  # noqa: E402

from spacy_multitask_intent.component import IntentNER  # noqa: E402
from spacy_multitask_intent.layers import encoder_module  # noqa: E402
from spacy_multitask_intent.model import resolve_encoder_name  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--queries", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args(argv)
    T = collections.Counter()

    def timed(key, f):
        return bench.timed(T, key, f)

    for n in ("huggingface_tokenize", "get_alignment_via_offset_mapping", "get_alignment"):
        setattr(transformer_model, n, timed(f"spacy-transformers {n}", getattr(transformer_model, n)))
    nlp = spacy.load(a.model)
    name, proc = next((n, pr) for n, pr in nlp.pipeline if isinstance(pr, IntentNER))
    proc.predict = timed("predict", proc.predict)
    proc.set_annotations = timed("set_annotations", proc.set_annotations)
    nlp.tokenizer = timed("spaCy tokenizer", nlp.tokenizer)
    texts = bench.cycle(bench.read_texts(a.data), a.queries)
    list(nlp.pipe(texts[:64], batch_size=a.batch))
    module = encoder_module(proc.model.get_ref("encoder"))
    start = {}
    module.register_forward_pre_hook(lambda m, args: start.__setitem__("t", time.perf_counter()))
    module.register_forward_hook(lambda m, args, out: T.update({"encoder forward": time.perf_counter() - start["t"]}))
    enc = nlp.config.interpolate()["components"][name]["model"].get("encoder", {})
    floor = bench.Floor(resolve_encoder_name(enc.get("name", "all-MiniLM-L6-v2")))
    batches = floor.encode(texts, a.batch)
    floor.forward(batches[:2])
    for r in range(a.rounds):
        T.clear()
        t0 = time.perf_counter()
        list(nlp.pipe(texts, batch_size=a.batch))
        total = time.perf_counter() - t0
        t1 = time.perf_counter()
        floor.forward(batches)
        fl = time.perf_counter() - t1
        print(f"round {r}: nlp.pipe {len(texts) / total:.1f} q/s, raw encoder {len(texts) / fl:.1f} q/s, ratio {fl / total:.3f}")
        for k, v in sorted(T.items(), key=lambda x: -x[1]):
            print(f"  {k:45s} {1000 * v / len(texts):.3f} ms/query  {100 * v / total:5.1f}%")
        print(f"  {'total':45s} {1000 * total / len(texts):.3f} ms/query; raw encoder {1000 * fl / len(texts):.3f}")


if __name__ == "__main__":
    main()
