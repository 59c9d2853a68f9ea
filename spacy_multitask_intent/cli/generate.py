"""`generate`: the embedded store-lookup dataset."""
from pathlib import Path

import typer
from wasabi import msg

from ..data.generate import held_out_stores, write_splits


def generate_cli(
    output_dir: Path = typer.Argument(..., help="Folder for train.jsonl, dev.jsonl and test.jsonl"),
    n: int = typer.Option(3000, "--n", help="Number of records in total"),
    seed: int = typer.Option(0, "--seed", help="Random seed (the data is a function of the seed only)"),
    hard: bool = typer.Option(
        False,
        "--hard",
        help="The harder split: more store names shared with products, store names held out of "
        "train (dev/test only), more typos and all-lowercase queries",
    ),
) -> None:
    """Generate the embedded store-lookup dataset (train/dev/test JSONL)."""
    msg.info(f"Generating {n} {'hard ' if hard else ''}records (seed {seed})")
    counts = write_splits(output_dir, n=n, seed=seed, hard=hard)
    if hard:
        msg.info("Store names only in dev/test: " + ", ".join(held_out_stores(seed)))
    msg.good(f"Wrote {output_dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
