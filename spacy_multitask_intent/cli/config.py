"""`config`: the base config merged with a variant."""
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ..configs import merge_config


def config_cli(
    base: Path = typer.Argument(..., help="Base config (.cfg)"),
    output: Path = typer.Argument(..., help="Where to write the merged config"),
    variant: Optional[Path] = typer.Option(None, "--variant", help="Fragment with the settings that differ"),
) -> None:
    """Write BASE (+ --variant) as one full config for `spacy train`."""
    output.parent.mkdir(parents=True, exist_ok=True)
    merge_config(base, variant).to_disk(output, interpolate=False)
    msg.good(f"Saved config {output}")
