"""`convert`: an intent + entity dataset (bio / jsonl / brackets) to .spacy."""
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ..data.convert import FORMATS, DataError, convert, print_summary


def convert_cli(
    fmt: str = typer.Argument(..., help="Input format: bio (folder with seq.in/seq.out/label), jsonl or brackets"),
    input_path: Path = typer.Argument(..., help="Input folder (bio) or .jsonl file", exists=True),
    output_path: Path = typer.Argument(..., help="Output .spacy file"),
    train: Optional[Path] = typer.Option(
        None, "--train", help="Train split in the same format: complete intent label set + unseen-label warnings",
        exists=True,
    ),
) -> None:
    """Convert an intent + entity dataset to a spaCy DocBin (.spacy)."""
    if fmt not in FORMATS:
        msg.fail(f"Unknown format {fmt!r}. Choose one of: {', '.join(FORMATS)}", exits=1)
    msg.info(f"Converting {input_path} ({fmt})" + (f" with train labels from {train}" if train else ""))
    try:
        stats = convert(fmt, input_path, output_path, train=train, log_every=10000)
    except DataError as err:
        msg.fail("Invalid input data", str(err), exits=1)
        return
    print_summary(stats, output_path)
