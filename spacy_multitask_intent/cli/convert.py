"""`convert`: an intent + entity dataset (bio / jsonl / brackets / rasa / prodigy) to .spacy."""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ..data.convert import FORMATS, _show_paths, convert, print_summary


def convert_cli(
    fmt: str = typer.Argument(
        ..., help="Input format: bio (folder with seq.in/seq.out/label), jsonl, brackets, rasa (NLU YAML) or prodigy"
    ),
    input_path: List[Path] = typer.Argument(
        ..., help="Input folder (bio, rasa) or file; rasa and prodigy take several, merged", exists=True
    ),
    output_path: Path = typer.Argument(..., help="Output .spacy file"),
    train: Optional[List[Path]] = typer.Option(
        None, "--train", help="Train split in the same format: complete intent label set + unseen-label warnings "
        "(repeat for several rasa / prodigy files)", exists=True,
    ),
) -> None:
    """Convert an intent + entity dataset to a spaCy DocBin (.spacy)."""
    if fmt not in FORMATS:
        msg.fail(f"Unknown format {fmt!r}. Choose one of: {', '.join(FORMATS)}", exits=1)
    train = train or None
    msg.info(f"Converting {_show_paths(input_path)} ({fmt})" + (f" with train labels from {_show_paths(train)}" if train else ""))
    try:
        stats = convert(fmt, input_path, output_path, train=train, log_every=10000)
    except ValueError as err:  # DataError (file:line) or several inputs for a one-input format
        msg.fail("Invalid input data", str(err), exits=1)
        return
    print_summary(stats, output_path)
