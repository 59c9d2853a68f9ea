"""Could knowing the intent remove a model's entity false positives?

For every predicted entity that is not a gold entity (gold tokens), the script
says what kind of error it is (wrong label on a gold span, wrong boundaries,
or no gold entity there) and whether its label ever occurs in train with the
query's gold intent(s). A false positive whose label never co-occurs with the
intent is one an intent-aware model could veto; one whose label does co-occur
is not, whatever the intent head learns.

The same question by intent *set*: a label may occur in train with an intent
only inside two-intent queries (PRODUCT with store_lookup, in "find tea and
the Boston store's hours"), so a veto by the query's whole set of intents can
remove more. The script counts those, and scores three vetoes that drop every
predicted entity whose label never occurs in train with an intent set: none,
the gold set (an oracle: recall cannot fall), and the set the pipeline itself
decides: the component's own `intent_set_veto`, with the table of TRAIN. The
pipeline decodes without its veto, so every row starts from the same entities.

Usage: python scripts/error_intent_consistency.py TRAIN.spacy TEST.spacy MODEL [MODEL ...]
"""
import json
import sys
from collections import Counter, defaultdict

import spacy
from spacy.tokens import DocBin

from spacy_multitask_intent.corpus import read_examples
from spacy_multitask_intent.scoring import gold_intents


def labels_by_intent(train: str, vocab) -> dict:
    """intent -> entity labels seen with it in train (a multi-intent query counts for each part)."""
    seen = defaultdict(set)
    for doc in DocBin().from_disk(train).get_docs(vocab):
        for intent in gold_intents(doc.cats):
            seen[intent].update(e.label_ for e in doc.ents)
    return seen


def labels_by_intent_set(train: str, vocab) -> dict:
    """frozenset of intents -> entity labels seen in train with exactly that set."""
    seen = defaultdict(set)
    for doc in DocBin().from_disk(train).get_docs(vocab):
        seen[frozenset(gold_intents(doc.cats))].update(e.label_ for e in doc.ents)
    return seen


def prf(tp: int, fp: int, n_gold: int) -> dict:
    p, r = tp / max(tp + fp, 1), tp / max(n_gold, 1)
    return {"p": p, "r": r, "f": 2 * p * r / (p + r) if p + r else 0.0, "false_positives": fp}


def classify(pred, gold_spans) -> str:
    start, end, label = pred
    for g_start, g_end, g_label in gold_spans:
        if (g_start, g_end) == (start, end):
            return "wrong label on a gold span"
        if g_start < end and start < g_end:
            return "wrong boundaries" if g_label == label else "wrong boundaries and label"
    return "no gold entity there"


def analyse(model: str, train: str, test: str) -> dict:
    nlp = spacy.load(model)
    seen = labels_by_intent(train, nlp.vocab)
    seen_set = labels_by_intent_set(train, nlp.vocab)
    pipe = nlp.get_pipe("intent_ner")
    # The veto by the decided set is the component's own (intent_set_veto), with the table of
    # TRAIN; the pipeline itself decodes without it, so that every row starts from the same entities.
    table = None
    if pipe.uses_intents:
        pipe.set_intent_set_labels(read_examples(nlp, train))
        table = pipe._veto_tables()
    pipe.cfg["intent_set_veto"] = False
    pipe.cfg["intent_set_veto_min_expected"] = 0.0  # the gold-set row is the strict veto too
    examples = read_examples(nlp, test)
    kinds = Counter()
    consistent = Counter()
    n_pred = n_fp = n_gold = n_fp_set = 0
    cases = []
    set_cases = []
    # A NER-only pipeline's intent head is not trained: no veto by its decided set.
    names = ("none", "gold_set") if table is None else ("none", "gold_set", "predicted_set")
    veto = {name: [0, 0] for name in names}  # [tp, fp]
    for eg, doc in zip(examples, nlp.pipe([eg.predicted for eg in examples])):
        gold = {(e.start, e.end, e.label_) for e in eg.reference.ents}
        intents = gold_intents(eg.reference.cats)
        allowed = set().union(*(seen.get(i, set()) for i in intents))
        sets = {"none": None, "gold_set": frozenset(intents)}
        spans = [(e.start, e.end, e.label_) for e in doc.ents]
        kept = set(pipe._vetoed(doc, spans, table)) if table is not None else set()
        n_gold += len(gold)
        for e in doc.ents:
            n_pred += 1
            span = (e.start, e.end, e.label_)
            for name, key in sets.items():
                if key is None or e.label_ in seen_set.get(key, ()):
                    veto[name][span not in gold] += 1
            if table is not None and span in kept:
                veto["predicted_set"][span not in gold] += 1
            if span in gold:
                continue
            n_fp += 1
            if e.label_ not in seen_set.get(sets["gold_set"], ()):
                n_fp_set += 1
                set_cases.append({"text": doc.text, "intents": sorted(intents), "span": e.text, "label": e.label_})
            kind = classify(span, gold)
            ok = e.label_ in allowed
            kinds[kind] += 1
            consistent[ok] += 1
            if not ok:
                cases.append({"text": doc.text, "intents": sorted(intents), "span": e.text, "label": e.label_, "kind": kind})
    return {
        "model": model,
        "n_predicted_entities": n_pred,
        "n_false_positives": n_fp,
        "false_positives_by_kind": dict(kinds),
        "n_fp_label_seen_with_gold_intent": consistent[True],
        "n_fp_label_never_seen_with_gold_intent": consistent[False],
        "fp_an_intent_veto_could_remove": cases,
        "n_fp_label_never_seen_with_gold_intent_set": n_fp_set,
        "fp_an_intent_set_veto_could_remove": set_cases,
        "veto_by_intent_set": {name: prf(tp, fp, n_gold) for name, (tp, fp) in veto.items()},
    }


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__.strip())
    train, test, *models = sys.argv[1:]
    print(json.dumps([analyse(m, train, test) for m in models], indent=2))
