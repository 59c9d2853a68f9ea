"""Evaluate a pipeline on gold tokens and on raw text, and tabulate runs."""
import time
from pathlib import Path
from typing import Dict

import spacy
from wasabi import msg

from .corpus import read_examples

TABLE_COLUMNS = [
    ("ents_p", "Precision"),
    ("ents_r", "Recall"),
    ("ents_f", "F1"),
    ("intent_acc", "Intent acc"),
    ("frame_acc", "Frame acc"),
]


def evaluate(model: Path, data: Path, batch_size: int = 256) -> Dict:
    """Scores on the gold tokens (JointBERT's setting) and on raw text.

    Raw-text scores come from spaCy's Scorer, which aligns spans by character
    offsets, so a different tokenization costs only what the model lost.
    """
    nlp = spacy.load(model)
    result: Dict = {"model": str(model), "data": str(data)}
    for key, gold in (("gold_tokens", True), ("raw_text", False)):
        examples = read_examples(nlp, data, gold_tokens=gold)
        msg.info(f"Evaluating {model} on {len(examples)} docs ({key.replace('_', ' ')})")
        start = time.perf_counter()
        scores = nlp.evaluate(examples, batch_size=batch_size)
        if "intent_acc" not in scores:
            scores.update(_textcat_intent_scores(nlp, examples, batch_size))
        scores["seconds"] = time.perf_counter() - start
        result[key] = scores
    return result


def _textcat_intent_scores(nlp, examples, batch_size: int) -> Dict:
    """intent_acc / frame_acc for a pipeline without intent_ner (the stock
    peer: ner + textcat or textcat_multilabel), scored as intent_ner's are.

    The intent decision follows the pipe: an exclusive `textcat` (softmax,
    one intent per query: the stock peer on single-label data) takes the
    argmax, as intent_ner does on single-label data; `textcat_multilabel`
    (the stock peer on multi-label data, and older saved stock models) takes
    the multi-label rule (every label >= 0.5, the argmax if none is), i.e.
    its own threshold.
    """
    from spacy.training import Example

    from .scoring import score_intent_ner

    pipes = textcat_pipes(nlp)
    labels = sorted({l for pipe in pipes for l in pipe.labels})
    if not labels:
        return {}
    multi_label = any(_is_multi_label(pipe) for pipe in pipes)
    docs = nlp.pipe((eg.predicted.copy() for eg in examples), batch_size=batch_size)
    scored = [Example(doc, eg.reference) for doc, eg in zip(docs, examples)]
    s = score_intent_ner(scored, intent_labels=labels, multi_label=multi_label)
    return {"intent_acc": s["intent_acc"], "frame_acc": s["frame_acc"]}


def textcat_pipes(nlp) -> list:
    """The pipeline's text classifiers (textcat, textcat_multilabel, ...)."""
    from spacy.pipeline import TextCategorizer

    return [pipe for _, pipe in nlp.pipeline if isinstance(pipe, TextCategorizer)]


def _is_multi_label(pipe) -> bool:
    """textcat_multilabel (or a textcat whose model is not exclusive) is
    multi-label; spaCy's `textcat` with exclusive classes is not."""
    from spacy.pipeline import MultiLabel_TextCategorizer

    if isinstance(pipe, MultiLabel_TextCategorizer):
        return True
    return bool(pipe.model.attrs.get("multi_label", False))


def _pct(value) -> str:
    return "—" if value is None else f"{100 * float(value):.2f}"


def table(runs: Dict[str, Dict], setting: str = "gold_tokens") -> str:
    """A Table-1-style Markdown comparison of evaluate() results."""
    head = "| model | " + " | ".join(label for _, label in TABLE_COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(TABLE_COLUMNS)
    rows = [head, rule]
    for name, result in runs.items():
        s = result[setting]
        rows.append(f"| {name} | " + " | ".join(_pct(s.get(c)) for c, _ in TABLE_COLUMNS) + " |")
    return "\n".join(rows)
