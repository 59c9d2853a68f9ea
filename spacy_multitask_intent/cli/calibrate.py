"""`calibrate`: fit intent / gating thresholds on dev and save them in the pipeline."""
import json
from pathlib import Path
from typing import List, Optional

import spacy
import typer
from wasabi import msg

from ..calibrate import calibrate
from ..corpus import read_examples


def calibrate_cli(
    model: Path = typer.Argument(..., help="Trained pipeline directory"),
    dev: Path = typer.Argument(..., help="Validation set (.spacy)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Save the calibrated pipeline here (default: overwrite MODEL)"),
    objective: str = typer.Option("f1", "--objective", help="f1 | recall_at_precision"),
    min_precision: float = typer.Option(0.9, "--min-precision", help="Precision target for recall_at_precision"),
    gate: List[str] = typer.Option([], "--gate", help="ENTITY=intent[,intent] (repeatable); default: the model's gating, else inferred from dev"),
    test: Optional[Path] = typer.Option(None, "--test", help="Report test scores before and after"),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the thresholds and scores as JSON"),
    name: str = typer.Option("intent_ner", "--component"),
    min_support: int = typer.Option(5, "--min-support", help="Fewest dev positives an intent or entity label needs to get its own threshold"),
) -> None:
    """Fit per-intent thresholds on DEV and write them into the pipeline."""
    nlp = spacy.load(model)
    gating = None
    if gate:
        gating = {}
        for item in gate:
            label, sep, intents = item.partition("=")
            if not sep or not intents:
                raise typer.BadParameter(f"--gate expects ENTITY=intent[,intent], got '{item}'")
            gating[label] = intents.split(",")
    before = nlp.evaluate(read_examples(nlp, test)) if test else None
    result = calibrate(
        nlp,
        read_examples(nlp, dev),
        name=name,
        objective=objective,
        min_precision=min_precision,
        gating=gating,
        min_support=min_support,
    )
    skipped = result["not_calibrated"]
    if skipped["intents"] or skipped["entity_labels"]:
        msg.info(
            f"Too few dev examples (< {min_support}) to calibrate: intents {skipped['intents']}, "
            f"entity labels {skipped['entity_labels']}"
        )
    msg.good(f"Intent thresholds: {json.dumps(result['intent_thresholds'])}")
    msg.good(f"Gating: {json.dumps(result['gating'])}  thresholds: {json.dumps(result['gate_thresholds'])}")
    if test:
        after = nlp.evaluate(read_examples(nlp, test))
        result["test_before"] = {k: before.get(k) for k in ("ents_p", "ents_r", "ents_f", "intent_acc", "frame_acc")}
        result["test_after"] = {k: after.get(k) for k in ("ents_p", "ents_r", "ents_f", "intent_acc", "frame_acc")}
        for key in ("ents_p", "ents_r", "ents_f", "intent_acc", "frame_acc"):
            b, a = result["test_before"][key], result["test_after"][key]
            msg.info(f"test {key}: {100 * b:.2f} -> {100 * a:.2f}")
    if report:  # written first: the scores survive a failed save
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result, indent=2))
    out = Path(output or model)
    out.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(out)
    msg.good(f"Saved calibrated pipeline to {out}")
