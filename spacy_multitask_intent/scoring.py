"""Scores for entities, intents and whole frames, in spaCy's Scorer style."""
from typing import Any, Dict, Iterable, Optional, Sequence, Set

from spacy.scorer import Scorer
from spacy.training import Example
from spacy.util import registry


def decide_intents(
    cats: Dict[str, float],
    labels: Sequence[str],
    multi_label: bool,
    thresholds: Optional[Dict[str, float]] = None,
    default: float = 0.5,
) -> Set[str]:
    """The set of intents a query is predicted to have.

    Single-label data: the argmax.  Multi-label data: every intent at or above
    its threshold (`thresholds[label]`, else `default`), and the argmax if
    none is.
    """
    scored = {label: cats[label] for label in labels if label in cats}
    if not scored:
        return set()
    best = max(scored, key=scored.__getitem__)
    if not multi_label:
        return {best}
    thresholds = thresholds or {}
    chosen = {l for l, v in scored.items() if v >= thresholds.get(l, default)}
    return chosen or {best}


def gold_intents(cats: Dict[str, float]) -> Set[str]:
    return {label for label, value in cats.items() if value >= 0.5}


def needs_multi_label(cats: Dict[str, float]) -> bool:
    """A query with intents but not exactly one gold intent: training data
    holding one makes the intent decision multi-label."""
    return bool(cats) and len(gold_intents(cats)) != 1


def _ent_set(doc) -> Set[tuple]:
    return {(e.start_char, e.end_char, e.label_) for e in doc.ents}


def score_intent_ner(
    examples: Iterable[Example],
    *,
    intent_labels: Sequence[str] = (),
    multi_label: bool = False,
    thresholds: Optional[Dict[str, float]] = None,
    default_threshold: float = 0.5,
    **cfg: Any,
) -> Dict[str, Any]:
    """ents_p/r/f (+ per type), cats micro/macro F, intent_acc and frame_acc.

    Intent accuracy is an exact match of the predicted and gold intent sets.
    A frame is right when the intents match and every entity matches exactly
    (character offsets and label), so it does not depend on tokenization.
    Gold intents never seen in training simply count as errors.
    """
    examples = list(examples)
    scores: Dict[str, Any] = Scorer.score_spans(examples, "ents", **cfg)
    if intent_labels:
        cat_labels = sorted(
            set(intent_labels)
            | {l for eg in examples for l in eg.reference.cats}
        )
        cats = Scorer.score_cats(
            examples, "cats", labels=cat_labels, multi_label=True, threshold=0.5
        )
        scores["cats_micro_f"] = cats["cats_micro_f"]
        scores["cats_macro_f"] = cats["cats_macro_f"]
        scores["cats_macro_auc"] = cats.get("cats_macro_auc")
        n_intent = n_frame = 0
        for eg in examples:
            pred = decide_intents(eg.predicted.cats, intent_labels, multi_label, thresholds, default_threshold)
            intent_ok = pred == gold_intents(eg.reference.cats)
            n_intent += intent_ok
            n_frame += intent_ok and _ent_set(eg.predicted) == _ent_set(eg.reference)
        n = max(len(examples), 1)
        scores["intent_acc"] = n_intent / n if examples else None
        scores["frame_acc"] = n_frame / n if examples else None
    return scores


@registry.scorers("spacy_multitask_intent.intent_ner_scorer.v1")
def make_intent_ner_scorer():
    return score_intent_ner
