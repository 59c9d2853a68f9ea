"""`compare`: train + evaluate configurations over seeds; mean ± sd tables."""
from pathlib import Path
from typing import Dict, Optional

import typer

from ..compare import RUN_BY_DEFAULT, run_compare


def compare_cli(
    train: Path = typer.Argument(..., help="Training set (.spacy)"),
    dev: Path = typer.Argument(..., help="Dev set (.spacy)"),
    test: Path = typer.Argument(..., help="Test set (.spacy)"),
    output_dir: Path = typer.Argument(..., help="Where the runs (SPEC/seedN/metrics.json) and REPORT.md go"),
    configs_dir: Path = typer.Option(Path("configs"), "--configs"),
    variants: str = typer.Option(
        ",".join(RUN_BY_DEFAULT),
        "--variants",
        help="Comma-separated; each NAME or NAME+KEY=VALUE+... (a KEY without a dot is an "
        "intent_ner setting), e.g. alternating+intent_lr_factor=0.01,joint+intent_weight=0.5. "
        "NAME: ner_only, alternating, joint, default, stock (the fair peer: exclusive textcat on "
        "single-label data), stock_exclusive, stock_multilabel",
    ),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Comma-separated seeds"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps"),
    encoder: Optional[str] = typer.Option(None, "--encoder", help="Override paths.encoder"),
    resume: bool = typer.Option(False, "--resume", help="Reuse runs whose metrics.json exists"),
    report_name: str = typer.Option("compare", "--report", help="Table file name: OUTPUT_DIR/REPORT.md"),
    collect_only: bool = typer.Option(False, "--collect", help="Train nothing: tabulate the runs that exist"),
    reevaluate: bool = typer.Option(
        False, "--reevaluate", help="With --resume/--collect: score reused runs' saved models on TEST again"
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to train and evaluate on (-1: CPU)"),
    table: Optional[Path] = typer.Option(
        None,
        "--table",
        help="Per-run results CSV (e.g. benchmarks/results.csv; dataset = OUTPUT_DIR's folder name). "
        "With --collect the tables are built from its rows; otherwise this call's runs are merged into it",
    ),
) -> None:
    """Train + evaluate each configuration on each seed; print mean ± sd."""
    overrides: Dict = {}
    if max_steps is not None:
        overrides["training.max_steps"] = max_steps
    if encoder is not None:
        overrides["paths.encoder"] = encoder
    run_compare(
        train,
        dev,
        test,
        output_dir,
        configs_dir,
        [v for v in variants.split(",") if v],
        [int(s) for s in seeds.split(",") if s],
        overrides,
        resume,
        report_name,
        collect_only,
        reevaluate,
        gpu_id,
        table,
    )
