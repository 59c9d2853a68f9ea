"""Entity scores of saved intent_ner pipelines under each `transition_weight`
(the decoder adds weight x the tag-bigram log-probabilities of TRAIN), on the
gold tokens of TEST.  The scores are estimated once per pipeline; each weight
re-decodes the same predictions.

Usage: python scripts/transition_weight.py TRAIN.spacy TEST.spacy OUT.json MODEL... [--weights 0,0.25,0.5,1]
"""
import argparse
import json

import spacy
from spacy.scorer import Scorer

from spacy_multitask_intent.corpus import read_examples


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("train")
    p.add_argument("test")
    p.add_argument("out")
    p.add_argument("models", nargs="+")
    p.add_argument("--weights", default="0,0.25,0.5,1")
    a = p.parse_args()
    weights = [float(w) for w in a.weights.split(",")]
    result = {"command": "python scripts/transition_weight.py " + " ".join(
        [a.train, a.test, a.out, *a.models, "--weights", a.weights]), "models": {}}
    for model in a.models:
        nlp = spacy.load(model)
        proc = nlp.get_pipe("intent_ner")
        proc.set_transition_scores(read_examples(nlp, a.train, gold_tokens=True))
        examples = read_examples(nlp, a.test, gold_tokens=True)
        docs = [eg.predicted for eg in examples]
        scores = []
        for b in range(0, len(docs), 256):
            scores.append(proc.predict(docs[b : b + 256]))
        scorer = Scorer(nlp)
        rows = {}
        for w in weights:
            proc.cfg["transition_weight"] = w
            for eg in examples:
                eg.predicted = eg.predicted.copy()
                eg.predicted.ents = []
            done = [eg.predicted for eg in examples]
            for i, b in enumerate(range(0, len(done), 256)):
                proc.set_annotations(done[b : b + 256], scores[i])
            s = scorer.score(examples)
            rows[str(w)] = {k: s.get(k) for k in ("ents_p", "ents_r", "ents_f", "intent_acc", "frame_acc")}
            print(model, w, {k: None if v is None else round(100 * v, 2) for k, v in rows[str(w)].items()}, flush=True)
        result["models"][model] = rows
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
