"""Test scores of a saved intent_ner pipeline under each `cats_aggregation`
(how per-word intent scores become doc.cats), and how many queries get a
multi-intent prediction, and one never seen in train; and what the intent
errors are (the top-scored intent not gold, or a multi-intent gold set).

Usage: python scripts/cats_aggregation.py MODEL TRAIN.spacy TEST.spacy
"""
import json
import sys

import spacy
from spacy.scorer import Scorer
from unseen_combos import seen_combos  # scripts/ is on sys.path when run as a script

from spacy_multitask_intent.corpus import read_examples
from spacy_multitask_intent.scoring import gold_intents


def main(model: str, train: str, test: str) -> None:
    nlp = spacy.load(model)
    proc = nlp.get_pipe("intent_ner")
    seen = seen_combos(train, nlp.vocab)
    scorer = Scorer(nlp)
    out = {}
    for agg in ("mean", "max"):
        proc.cfg["cats_aggregation"] = agg
        # One pass: the processed docs serve both the scores (as nlp.evaluate
        # computes them) and the counts below.
        examples = read_examples(nlp, test)
        for eg, doc in zip(examples, nlp.pipe([eg.predicted for eg in examples])):
            eg.predicted = doc
        scores = scorer.score(examples)
        docs = [eg.predicted for eg in examples]
        predicted = [frozenset(proc.decide_intents(d)) for d in docs]
        golds = [gold_intents(eg.reference.cats) for eg in examples]
        errors = [(gold, doc) for gold, doc, pred in zip(golds, docs, predicted) if pred != gold]
        out[agg] = {
            **{k: scores[k] for k in ("ents_f", "intent_acc", "frame_acc")},
            "n_predicted_multi_intent": sum(len(p) > 1 for p in predicted),
            "n_predicted_unseen_combo": sum(len(p) > 1 and p not in seen for p in predicted),
            "n_intent_errors": len(errors),
            "n_errors_top_intent_not_gold": sum(
                max(proc.intent_labels, key=lambda l: doc.cats[l]) not in gold for gold, doc in errors
            ),
            "n_errors_multi_intent_gold": sum(len(gold) > 1 for gold, _ in errors),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip())
    main(*sys.argv[1:])
