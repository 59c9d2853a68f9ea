"""How often a multi-label model predicts intent combinations unseen in train.

Usage: python scripts/unseen_combos.py MODEL TRAIN.spacy TEST.spacy
"""
import json
import sys

import spacy
from spacy.tokens import DocBin

from spacy_multitask_intent.corpus import read_examples
from spacy_multitask_intent.scoring import gold_intents


def seen_combos(train: str, vocab) -> set:
    """The gold intent sets of the training queries."""
    return {frozenset(gold_intents(d.cats)) for d in DocBin().from_disk(train).get_docs(vocab)}


def main(model: str, train: str, test: str) -> None:
    nlp = spacy.load(model)
    seen = seen_combos(train, nlp.vocab)
    seen_parts = set().union(*seen)
    proc = nlp.get_pipe("intent_ner")
    rows = []
    predicted_unseen = []  # any query, gold or not: predicted sets of 2+ intents never seen in train
    examples = read_examples(nlp, test)
    docs = nlp.pipe([eg.predicted for eg in examples])
    for eg, doc in zip(examples, docs):
        gold = frozenset(gold_intents(eg.reference.cats))
        pred_any = frozenset(proc.decide_intents(doc))
        if len(pred_any) > 1 and pred_any not in seen:
            predicted_unseen.append({"text": doc.text, "gold": sorted(gold), "pred": sorted(pred_any)})
        if len(gold) > 1 and gold not in seen and gold <= seen_parts:
            rows.append({"text": doc.text, "gold": sorted(gold), "pred": sorted(pred_any), "ok": pred_any == gold})
    n_ok = sum(r["ok"] for r in rows)
    print(json.dumps({
        "n_unseen_combo_queries": len(rows),
        "n_predicted_exactly": n_ok,
        "cases": rows,
        "n_queries_predicted_an_unseen_combo": len(predicted_unseen),
        "n_of_those_correct": sum(r["gold"] == r["pred"] for r in predicted_unseen),
        "predicted_unseen_combos": predicted_unseen,
    }, indent=2))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip())
    main(*sys.argv[1:])
