"""`annotate`: annotate query logs (JSONL / CSV / Parquet) into a sharded
Parquet or JSONL dataset, on this machine or on a Ray cluster."""
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg


def annotate_cli(
    model: Path = typer.Argument(..., help="Trained pipeline directory (on every Ray node)"),
    input: str = typer.Argument(..., help="A .jsonl, .csv or .parquet file, a folder of them or a glob"),
    output: Path = typer.Argument(..., help="Output folder: one file per shard"),
    text_column: str = typer.Option("text", "--text-column", help="Column holding the query"),
    id_column: str = typer.Option("id", "--id-column", help="Row id column; added as <file>:<row> when the input has none"),
    engine: str = typer.Option("local", "--engine", help="local | ray"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster: auto | HOST:PORT (default: start a local one)"),
    workers: int = typer.Option(1, "--workers", help="Ray actors, one pipeline and one CPU each"),
    batch_size: int = typer.Option(256, "--batch-size", help="Texts per nlp.pipe batch"),
    shard_rows: int = typer.Option(10_000, "--shard-rows", help="Rows per shard (the unit of output, retry and resume)"),
    resume: bool = typer.Option(False, "--resume", help="Finish a killed job: compute only the missing shards"),
    fmt: str = typer.Option("parquet", "--format", help="parquet | jsonl | prodigy"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch threads per process (Ray default 1, local default torch's)"),
    max_bytes: int = typer.Option(1_000_000, "--max-bytes", help="Longer texts are kept unannotated with an error"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar (local engine)"),
) -> None:
    """Annotate every row of INPUT with entities, intents and intent scores."""
    from ..annotate import AnnotateError, run

    try:
        result = run(
            str(model),
            input,
            str(output),
            text_column=text_column,
            id_column=id_column or None,
            engine=engine,
            address=address,
            workers=workers,
            batch_size=batch_size,
            shard_rows=shard_rows,
            resume=resume,
            fmt=fmt,
            threads=threads,
            max_bytes=max_bytes,
            progress=progress,
        )
    except AnnotateError as exc:
        msg.fail(str(exc), exits=1)
    msg.good(
        f"{result.rows} rows in {result.shards} shards -> {result.output} "
        f"({len(result.computed_shards)} computed, {result.skipped_shards} already done; "
        f"{result.errors} rows of the computed shards with an error; {result.seconds:.1f} s)"
    )
