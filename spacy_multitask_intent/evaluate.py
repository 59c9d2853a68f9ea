"""Evaluate a pipeline on gold tokens and on raw text, and tabulate runs."""
import json
import time
from pathlib import Path
from typing import Dict, List, Optional

import spacy
import typer
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
    peer: ner + textcat_multilabel), scored exactly as intent_ner's are.

    The intent decision is the multi-label rule (every label >= 0.5, the
    argmax if none is), i.e. textcat_multilabel's own threshold.
    """
    from spacy.training import Example

    from .scoring import score_intent_ner

    labels = sorted(
        {l for name in nlp.pipe_names if name.startswith("textcat")
         for l in nlp.get_pipe(name).labels}
    )
    if not labels:
        return {}
    docs = nlp.pipe((eg.predicted.copy() for eg in examples), batch_size=batch_size)
    scored = [Example(doc, eg.reference) for doc, eg in zip(docs, examples)]
    s = score_intent_ner(scored, intent_labels=labels, multi_label=True)
    return {"intent_acc": s["intent_acc"], "frame_acc": s["frame_acc"]}


def evaluate_cli(
    model: Path = typer.Argument(..., help="Trained pipeline directory"),
    data: Path = typer.Argument(..., help="Test set (.spacy)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write JSON here"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to run on (-1: CPU)"),
) -> None:
    """Evaluate MODEL on DATA, on gold tokens and on raw text."""
    if gpu_id >= 0:
        from thinc.api import require_gpu

        require_gpu(gpu_id)
    result = evaluate(model, data)
    for key in ("gold_tokens", "raw_text"):
        s = result[key]
        msg.good(
            f"{key}: " + "  ".join(f"{label} {_pct(s.get(col))}" for col, label in TABLE_COLUMNS)
        )
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2, default=float))
        msg.good(f"Saved {output}")


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


def table_cli(
    metrics: List[Path] = typer.Argument(..., help="NAME=metrics.json pairs or metrics.json files"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write Markdown here"),
) -> None:
    """Print a precision/recall/F1/intent/frame table from evaluate outputs."""
    runs = {}
    for item in metrics:
        name, _, path = str(item).rpartition("=")
        path = Path(path)
        runs[name or path.stem] = json.loads(path.read_text())
    text = []
    for setting in ("gold_tokens", "raw_text"):
        text.append(f"\n**{setting.replace('_', ' ')}**\n\n" + table(runs, setting))
    out = "\n".join(text) + "\n"
    print(out)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(out)
        msg.good(f"Saved {output}")
