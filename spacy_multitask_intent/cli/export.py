"""`python -m spacy_multitask_intent export MODEL OUT [--int8 [--per-tensor] [--fp32-ffn-out | --fp32-ffn-layers 0,1]]`."""
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
    fp32_ffn_layers: str = typer.Option(
        "",
        "--fp32-ffn-layers",
        help="With --int8: keep only these encoder layers' feed-forward output projections in fp32, "
        "comma-separated, 0 = the layer nearest the input (e.g. 0,1)",
    ),
    opset: int = typer.Option(17, "--opset", help="ONNX opset version"),
):
    """Write MODEL to OUT with intent_ner's encoder and both heads as one ONNX
    graph run by ONNX Runtime; load it with spacy.load(OUT)."""
    from ..onnx import export_pipeline

    if not model.is_dir():
        typer.echo(f"export: model directory {model} does not exist", err=True)
        raise typer.Exit(1)
    given_flags = (("--per-tensor", per_tensor), ("--fp32-ffn-out", fp32_ffn_out), ("--fp32-ffn-layers", fp32_ffn_layers))
    for flag, given in given_flags:
        if given and not int8:
            typer.echo(f"export: {flag} only applies with --int8", err=True)
            raise typer.Exit(1)
    if fp32_ffn_out and fp32_ffn_layers:
        typer.echo("export: give --fp32-ffn-out (every layer) or --fp32-ffn-layers, not both", err=True)
        raise typer.Exit(1)
    keep = fp32_ffn_out
    if fp32_ffn_layers:
        try:
            keep = [int(x) for x in fp32_ffn_layers.split(",") if x.strip()]
        except ValueError:
            keep = []
        if not keep:
            typer.echo(f"export: --fp32-ffn-layers '{fp32_ffn_layers}' is not a comma-separated list of layer numbers", err=True)
            raise typer.Exit(1) from None
    try:
        onnx_path = export_pipeline(model, out, int8=int8, per_channel=not per_tensor, fp32_ffn_out=keep, opset=opset)
    except ValueError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from None
    size = onnx_path.stat().st_size / 2**20
    kind = f", int8 per {'tensor' if per_tensor else 'channel'}" if int8 else ""
    if keep is True:
        kind += ", feed-forward outputs fp32"
    elif keep:
        kind += f", feed-forward outputs of layer(s) {','.join(str(i) for i in sorted(set(keep)))} fp32"
    typer.echo(f"Saved {out} (intent_ner runs {onnx_path}, {size:.1f} MiB{kind})")
