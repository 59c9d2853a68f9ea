"""`plots`: intent heat map, P/R curves and training curves (needs the `plots` extra: matplotlib)."""
from pathlib import Path
from typing import List

import spacy
import typer
from wasabi import msg

from ..visualize import DEFAULT_QUERIES, heatmap_html, heatmap_png, pr_png, training_curves_png


def plots_cli(
    multitask: Path = typer.Argument(..., help="Multitask pipeline"),
    ner_only: Path = typer.Argument(..., help="NER-only pipeline"),
    data: Path = typer.Argument(..., help="Evaluation data (.spacy) for the P/R curves"),
    output_dir: Path = typer.Argument(..., help="Where the PNG/HTML files go"),
    query: List[str] = typer.Option([], "--query", help="Queries for the heat map (repeatable)"),
) -> None:
    """Heat map (PNG + HTML), P/R curves and training curves."""
    queries = query or DEFAULT_QUERIES
    nlp = spacy.load(multitask)
    msg.good(f"Saved {heatmap_png(nlp, queries, output_dir / 'intent_heatmap.png')}")
    heatmap_html(nlp, queries, output_dir / "intent_heatmap.html")
    msg.good(f"Saved {output_dir / 'intent_heatmap.html'}")
    msg.good(f"Saved {pr_png({'multitask': multitask, 'NER-only': ner_only}, data, output_dir / 'pr_curves.png')}")
    logs = {
        label: Path(model).parent / "train_log.jsonl"
        for label, model in (("multitask", multitask), ("NER-only", ner_only))
        if (Path(model).parent / "train_log.jsonl").exists()
    }
    if logs:
        msg.good(f"Saved {training_curves_png(logs, output_dir / 'training_curves.png')}")
    else:
        msg.warn("No train_log.jsonl next to the models: skipped training curves")
