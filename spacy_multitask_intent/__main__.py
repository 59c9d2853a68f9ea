"""Command line: python -m spacy_multitask_intent COMMAND ...

One module per command in cli/; each line below wires one. A command's heavy
libraries are imported inside its module, so the others start fast.
"""
import typer

from .cli.annotate import annotate_cli
from .cli.calibrate import calibrate_cli
from .cli.compare import compare_cli
from .cli.config import config_cli
from .cli.convert import convert_cli
from .cli.evaluate import evaluate_cli
from .cli.export import export_cli
from .cli.generate import generate_cli
from .cli.plots import plots_cli
from .cli.serve import serve_cli
from .cli.table import table_cli

app = typer.Typer(help="spacy-multitask-intent: joint intent + NER for spaCy", no_args_is_help=True)
app.command("convert", help="Convert bio / jsonl / brackets / rasa / prodigy data to .spacy")(convert_cli)
app.command("generate", help="Generate the embedded store-lookup dataset")(generate_cli)
app.command("config", help="Merge the base config with a variant")(config_cli)
app.command("evaluate", help="Score a pipeline on gold tokens and raw text")(evaluate_cli)
app.command("calibrate", help="Fit intent / gating thresholds on dev and save them in the pipeline")(calibrate_cli)
app.command("compare", help="Train + evaluate configurations over seeds; mean ± sd table")(compare_cli)
app.command("plots", help="Intent heat map, P/R curves and training curves")(plots_cli)
app.command("annotate", help="Annotate query logs (JSONL/CSV/Parquet) locally or on Ray")(annotate_cli)
app.command("export", help="Export a pipeline for ONNX Runtime (one graph: encoder + heads), optionally int8")(export_cli)
app.command("table", help="Table-1-style comparison of evaluate outputs")(table_cli)
app.command("serve", help="HTTP service: /parse, /model/parse (Rasa), /metrics, demo page")(serve_cli)

if __name__ == "__main__":
    app()
