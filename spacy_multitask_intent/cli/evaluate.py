"""`evaluate`: score a pipeline on gold tokens and on raw text."""
import json
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ..evaluate import TABLE_COLUMNS, _pct, evaluate


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
