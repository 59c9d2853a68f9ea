"""`python -m spacy_multitask_intent export MODEL OUT [--int8 [--per-tensor] [--fp32-ffn-out]]`."""
from pathlib import Path

import typer


def export_cli(
    model: Path = typer.Argument(..., help="Trained pipeline directory (with an intent_ner component)"),
    out: Path = typer.Argument(..., help="Output pipeline directory (must not exist or be empty)"),
    int8: bool = typer.Option(False, "--int8", help="Dynamic int8 quantization of the ONNX graph"),
    per_tensor: bool = typer.Option(
        False, "--per-tensor", help="With --int8: one scale per weight matrix instead of one per output column"
    ),
    fp32_ffn_out: bool = typer.Option(
        False,
        "--fp32-ffn-out",
        help="With --int8: keep the encoder's feed-forward output projections in fp32 "
        "(answers closer to fp32; a larger, slower graph)",
    ),
    opset: int = typer.Option(17, "--opset", help="ONNX opset version"),
):
    """Write MODEL to OUT with intent_ner's encoder and both heads as one ONNX
    graph run by ONNX Runtime; load it with spacy.load(OUT)."""
    from ..onnx import export_pipeline

    if not model.is_dir():
        typer.echo(f"export: model directory {model} does not exist", err=True)
        raise typer.Exit(1)
    for flag, given in (("--per-tensor", per_tensor), ("--fp32-ffn-out", fp32_ffn_out)):
        if given and not int8:
            typer.echo(f"export: {flag} only applies with --int8", err=True)
            raise typer.Exit(1)
    onnx_path = export_pipeline(model, out, int8=int8, per_channel=not per_tensor, fp32_ffn_out=fp32_ffn_out, opset=opset)
    size = onnx_path.stat().st_size / 2**20
    kind = f", int8 per {'tensor' if per_tensor else 'channel'}" if int8 else ""
    kind += ", feed-forward outputs fp32" if fp32_ffn_out else ""
    typer.echo(f"Saved {out} (intent_ner runs {onnx_path}, {size:.1f} MiB{kind})")
