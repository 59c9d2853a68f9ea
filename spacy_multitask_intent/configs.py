"""Build a full training config from the base file and a variant fragment."""
from pathlib import Path
from typing import Optional

import typer
from thinc.api import Config
from wasabi import msg


def merge_config(base: Path, variant: Optional[Path] = None) -> Config:
    """The base config with the variant's settings laid over it.

    Variants hold only what differs (e.g. `update_mode = "ner_only"`), so the
    configurations cannot drift apart in anything else.
    """
    config = Config().from_disk(base, interpolate=False)
    if variant is not None:
        config = config.merge(Config().from_disk(variant, interpolate=False))
    return config


def config_cli(
    base: Path = typer.Argument(..., help="Base config (.cfg)"),
    output: Path = typer.Argument(..., help="Where to write the merged config"),
    variant: Optional[Path] = typer.Option(None, "--variant", help="Fragment with the settings that differ"),
) -> None:
    """Write BASE (+ --variant) as one full config for `spacy train`."""
    output.parent.mkdir(parents=True, exist_ok=True)
    merge_config(base, variant).to_disk(output, interpolate=False)
    msg.good(f"Saved config {output}")
