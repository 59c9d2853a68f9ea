"""How often a multi-label model predicts intent combinations unseen in train.

Usage: python scripts/unseen_combos.py MODEL TRAIN.spacy TEST.spacy
"""
import json
import sys

import spacy
from spacy.tokens import DocBin

from spacy_multitask_intent.corpus import read_examples
from spacy_multitask_intent.scoring import gold_intents


def main(model: str, train: str, test: str) -> None:
    nlp = spacy.load(model)
    seen = {
        frozenset(gold_intents(d.cats)) for d in DocBin().from_disk(train).get_docs(nlp.vocab)
    }
    seen_parts = set().union(*seen)
    proc = nlp.get_pipe("intent_ner")
    rows = []
    examples = read_examples(nlp, test)
    docs = nlp.pipe([eg.predicted for eg in examples])
    for eg, doc in zip(examples, docs):
        gold = frozenset(gold_intents(eg.reference.cats))
        if len(gold) > 1 and gold not in seen and gold <= seen_parts:
            pred = frozenset(proc.decide_intents(doc))
            rows.append({"text": doc.text, "gold": sorted(gold), "pred": sorted(pred), "ok": pred == gold})
    n_ok = sum(r["ok"] for r in rows)
    print(json.dumps({"n_unseen_combo_queries": len(rows), "n_predicted_exactly": n_ok, "cases": rows}, indent=2))


if __name__ == "__main__":
    main(*sys.argv[1:])
