"""Per-intent thresholds computed on a validation set (the paper's future work).

Two kinds of threshold are fitted on dev and written into the pipeline's
component cfg, so `spacy.load` uses them:

* `intent_thresholds`: decide which intents a query has from `doc.cats`.
* `gate_thresholds`: drop an entity whose licensing intents all score below
  the threshold on the entity's words (`gating` maps entity label -> intents).

Objectives: "f1" (max F1) or "recall_at_precision" (max recall subject to
precision >= a target).
"""
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.training import Example

from .scoring import gold_intents

OBJECTIVES = ("f1", "recall_at_precision")


def best_threshold(
    scores: Sequence[float],
    labels: Sequence[bool],
    objective: str = "f1",
    min_precision: float = 0.9,
    n_positive: Optional[int] = None,
) -> Tuple[float, Dict[str, float]]:
    """The decision threshold (predict positive when score >= t) that best
    meets the objective, and the precision/recall/F1 it gives.

    n_positive: the number of gold positives, when some are out of reach of
    any threshold (e.g. gold entities that were never predicted).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got '{objective}'")
    s = numpy.asarray(scores, dtype="f")
    y = numpy.asarray(labels, dtype=bool)
    total_pos = int(y.sum()) if n_positive is None else int(n_positive)
    if len(s) == 0:
        return 0.5, {"p": 0.0, "r": 0.0, "f": 0.0}
    order = numpy.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = numpy.cumsum(y)
    fp = numpy.cumsum(~y)
    # Only cut between distinct scores: the last index of each run of ties.
    last = numpy.r_[s[1:] != s[:-1], True]
    tp, fp, cut = tp[last], fp[last], s[last]
    p = tp / numpy.maximum(tp + fp, 1)
    r = tp / max(total_pos, 1)
    f = numpy.where(p + r > 0, 2 * p * r / numpy.maximum(p + r, 1e-12), 0.0)
    if objective == "f1":
        i = int(numpy.argmax(f))
    else:
        ok = numpy.nonzero(p >= min_precision)[0]
        if len(ok):
            i = int(ok[numpy.argmax(r[ok])])
        else:  # no threshold reaches the target: the most precise one
            i = int(numpy.argmax(p))
    if i + 1 == len(cut):
        # Every candidate is kept: dev gives no lower bound, so keep everything
        # (a threshold just under the lowest dev score would drop test items that
        # score a little lower, e.g. a gate at 0.996 when every dev entity of a
        # label was right).
        threshold = min(0.0, float(cut[i]))
    else:
        # Midway to the next lower score, so the threshold is not on a data point.
        threshold = float((cut[i] + cut[i + 1]) / 2)
    return threshold, {"p": float(p[i]), "r": float(r[i]), "f": float(f[i])}


def _ungated(nlp: Language, name: str):
    """Context: run the component with gating and the intent-set veto
    switched off, so that the thresholds are fitted on every entity."""
    proc = nlp.get_pipe(name)

    class _Off:
        def __enter__(self):
            self.saved = proc.cfg["gating"], proc.cfg.get("intent_set_veto", False)
            proc.cfg["gating"], proc.cfg["intent_set_veto"] = {}, False

        def __exit__(self, *exc):
            proc.cfg["gating"], proc.cfg["intent_set_veto"] = self.saved

    return _Off()


def infer_gating(
    examples: List[Example], min_share: float = 0.9, min_count: int = 1
) -> Dict[str, List[str]]:
    """Entity label -> intents present in at least `min_share` of the gold
    queries that contain the label (labels seen with every intent get none,
    and so do labels in fewer than `min_count` queries)."""
    seen: Dict[str, Counter] = defaultdict(Counter)
    n_label: Counter = Counter()
    for eg in examples:
        intents = gold_intents(eg.reference.cats)
        for label in {e.label_ for e in eg.reference.ents}:
            n_label[label] += 1
            seen[label].update(intents)
    gating = {}
    for label, counts in seen.items():
        if n_label[label] < min_count:
            continue
        lic = sorted(i for i, c in counts.items() if c / n_label[label] >= min_share)
        if lic:
            gating[label] = lic
    return gating


def calibrate(
    nlp: Language,
    dev: List[Example],
    *,
    name: str = "intent_ner",
    objective: str = "f1",
    min_precision: float = 0.9,
    gating: Optional[Dict[str, List[str]]] = None,
    min_support: int = 5,
) -> Dict:
    """Fit intent and gate thresholds on `dev` and store them in the component.

    An intent with fewer than `min_support` dev queries, or an entity label
    with fewer than `min_support` gold dev entities, is not calibrated: a
    threshold fitted to one or two examples (or to none) is noise that costs
    test precision.  Such intents keep the default 0.5; such labels add no
    gate threshold (and are not gated at all when the gating is inferred).
    They are listed under "not_calibrated" in the result.
    """
    if min_support < 1:
        raise ValueError(f"min_support must be at least 1, got {min_support}")
    proc = nlp.get_pipe(name)
    if not proc.uses_intents:
        raise ValueError(
            f"Component '{name}' has no intent head (update_mode='{proc.cfg['update_mode']}'): "
            "there is nothing to calibrate."
        )
    intents = proc.intent_labels
    with _ungated(nlp, name):
        docs = list(nlp.pipe([eg.predicted for eg in dev]))
    result: Dict = {
        "objective": objective,
        "min_support": min_support,
        "intent_thresholds": {},
        "gate_thresholds": {},
        "not_calibrated": {"intents": {}, "entity_labels": {}},
    }
    for label in intents:
        scores = [d.cats.get(label, 0.0) for d in docs]
        gold = [label in gold_intents(eg.reference.cats) for eg in dev]
        n_pos = sum(gold)
        if n_pos < min_support:
            result["not_calibrated"]["intents"][label] = n_pos
            continue
        thr, stats = best_threshold(scores, gold, objective, min_precision)
        result["intent_thresholds"][label] = thr
        result.setdefault("intent_dev", {})[label] = stats
    gating = (
        dict(gating)
        if gating is not None
        else (proc.cfg["gating"] or infer_gating(dev, min_count=min_support))
    )
    result["gating"] = gating
    for ent_label, licensing in gating.items():
        for intent in licensing:
            if intent not in intents:
                raise ValueError(f"Gating intent '{intent}' is not one of the model's intents {list(intents)}")
        # Candidate entities: the ungated predictions of this label.
        scores, correct, n_gold = [], [], 0
        for doc, eg in zip(docs, dev):
            gold = {(e.start_char, e.end_char) for e in eg.reference.ents if e.label_ == ent_label}
            n_gold += len(gold)
            for ent in doc.ents:
                if ent.label_ != ent_label:
                    continue
                word = ent._.intent
                scores.append(max(word.get(i, 0.0) for i in licensing))
                correct.append((ent.start_char, ent.end_char) in gold)
        if n_gold < min_support:
            result["not_calibrated"]["entity_labels"][ent_label] = n_gold
            continue
        thr, stats = best_threshold(scores, correct, objective, min_precision, n_positive=n_gold)
        # One threshold per licensing intent (they share the entity's decision).
        for intent in licensing:
            prev = result["gate_thresholds"].get(intent)
            result["gate_thresholds"][intent] = thr if prev is None else min(prev, thr)
        result.setdefault("gate_dev", {})[ent_label] = stats
    proc.cfg["intent_thresholds"] = result["intent_thresholds"]
    proc.cfg["gating"] = gating
    proc.cfg["gate_thresholds"] = result["gate_thresholds"]
    # Keep nlp.config in step so the saved config.cfg shows the values too.
    comp = nlp.get_pipe_config(name)  # the live dict behind nlp.config
    comp["intent_thresholds"] = dict(result["intent_thresholds"])
    comp["gating"] = {k: list(v) for k, v in gating.items()}
    comp["gate_thresholds"] = dict(result["gate_thresholds"])
    return result
