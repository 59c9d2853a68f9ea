"""`config`: the base config merged with a variant."""
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ..configs import corpus_is_multi_label, exclusive_textcat, merge_config


def config_cli(
    base: Path = typer.Argument(..., help="Base config (.cfg)"),
    output: Path = typer.Argument(..., help="Where to write the merged config"),
    variant: Optional[Path] = typer.Option(None, "--variant", help="Fragment with the settings that differ"),
    train: Optional[Path] = typer.Option(
        None,
        "--train",
        help="Training corpus (.spacy) for the stock peer: on single-label data (one intent per "
        "query) its textcat_multilabel becomes spaCy's exclusive textcat",
    ),
) -> None:
    """Write BASE (+ --variant) as one full config for `spacy train`."""
    config = merge_config(base, variant)
    if train is not None and "textcat_multilabel" in config.get("components", {}):
        if not corpus_is_multi_label(train):
            config = exclusive_textcat(config)
            msg.info(f"{train}: every query has one intent: exclusive textcat")
    output.parent.mkdir(parents=True, exist_ok=True)
    config.to_disk(output, interpolate=False)
    msg.good(f"Saved config {output}")
