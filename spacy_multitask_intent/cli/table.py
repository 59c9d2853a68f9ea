"""`table`: a Table-1-style comparison of `evaluate` outputs."""
import json
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ..evaluate import table


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
