"""`generate`: the embedded store-lookup dataset."""
from pathlib import Path

import typer
from wasabi import msg

from ..data.generate import write_splits


def generate_cli(
    output_dir: Path = typer.Argument(..., help="Folder for train.jsonl, dev.jsonl and test.jsonl"),
    n: int = typer.Option(3000, "--n", help="Number of records in total"),
    seed: int = typer.Option(0, "--seed", help="Random seed (the data is a function of the seed only)"),
) -> None:
    """Generate the embedded store-lookup dataset (train/dev/test JSONL)."""
    msg.info(f"Generating {n} records (seed {seed})")
    counts = write_splits(output_dir, n=n, seed=seed)
    msg.good(f"Wrote {output_dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
