"""Intent accuracy of a multi-label model under each default decision threshold.

Usage: python scripts/threshold_sweep.py OUT.md NAME=MODEL:DEV.spacy:TEST.spacy [...]

Each model is run once over its dev and test queries (gold tokens); the
decision rule (every intent at or above the threshold, the argmax if none is)
is then applied to the stored `doc.cats` at each threshold.  The threshold is
chosen on the pooled dev queries; test is reported beside it.
"""
import sys
from typing import Dict, List, Tuple

import spacy

from spacy_multitask_intent.corpus import read_examples
from spacy_multitask_intent.scoring import decide_intents, gold_intents

THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


def cats_and_gold(nlp, path: str) -> List[Tuple[Dict[str, float], set]]:
    examples = read_examples(nlp, path)
    docs = nlp.pipe([eg.predicted for eg in examples], batch_size=64)
    return [(doc.cats, gold_intents(eg.reference.cats)) for doc, eg in zip(docs, examples)]


def accuracy(rows, labels, threshold: float) -> float:
    right = sum(decide_intents(cats, labels, True, default=threshold) == gold for cats, gold in rows)
    return 100.0 * right / len(rows)


def main(out: str, *specs: str) -> None:
    lines = [
        "| data | split | queries | multi-intent | " + " | ".join(f"{t:g}" for t in THRESHOLDS) + " |",
        "|---|---|---:|---:|" + "---:|" * len(THRESHOLDS),
    ]
    pooled = {t: [0.0, 0] for t in THRESHOLDS}
    for spec in specs:
        name, rest = spec.split("=", 1)
        model, dev, test = rest.split(":")
        nlp = spacy.load(model)
        labels = nlp.get_pipe("intent_ner").intent_labels
        for split, path in (("dev", dev), ("test", test)):
            rows = cats_and_gold(nlp, path)
            accs = [accuracy(rows, labels, t) for t in THRESHOLDS]
            multi = sum(len(gold) > 1 for _, gold in rows)
            lines.append(f"| {name} | {split} | {len(rows)} | {multi} | " + " | ".join(f"{a:.2f}" for a in accs) + " |")
            if split == "dev":
                for t, a in zip(THRESHOLDS, accs):
                    pooled[t][0] += a * len(rows)
                    pooled[t][1] += len(rows)
    dev_acc = {t: s / n for t, (s, n) in pooled.items()}
    best = max(THRESHOLDS, key=lambda t: (dev_acc[t], t))
    lines.append("| pooled dev | dev | " + str(pooled[best][1]) + " | | " + " | ".join(f"{dev_acc[t]:.2f}" for t in THRESHOLDS) + " |")
    lines.append("")
    lines.append(f"Best default on the pooled dev queries: {best:g}.")
    text = "\n".join(lines) + "\n"
    with open(out, "w", encoding="utf8") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main(*sys.argv[1:])
