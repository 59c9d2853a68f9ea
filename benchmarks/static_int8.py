#!/usr/bin/env python
"""An int8 export with static (calibrated) quantization (an experiment:
``export --int8`` quantizes dynamically).

Dynamic int8 (``export --int8``) computes each activation's scale at run
time (``DynamicQuantizeLinear`` before every ``MatMulInteger``).  Static int8
fixes the activation scales from calibration batches instead, so the graph
runs ``QLinearMatMul`` with no scale computation.  This script takes an fp32
export (``python -m spacy_multitask_intent export MODEL FP32``), calibrates
its MatMuls on the length-sorted batches of 32 that ``nlp.pipe`` would give
the graph for the first ``--calibration`` queries of ``--data``, quantizes
them (int8 weights, one scale per output column; uint8 activations) and
writes a copy of the fp32 pipeline with that graph and the int8 metadata.
``--weights-only`` quantizes only the MatMuls with a constant weight (the
attention's query-key and attention-value products stay fp32).  Time it
against the plain int8 export with

    python benchmarks/ort_graph.py --model MODEL --int8 EXPORT_INT8 --graph static=OUT \\
        --data corpus/store_lookup/test.spacy --reps 3 --isolated

    python benchmarks/static_int8.py FP32 OUT --data corpus/store_lookup/train.spacy
"""
import argparse
import json
import shutil
import tempfile
from pathlib import Path

import onnx
import spacy
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from spacy.tokens import DocBin

from spacy_multitask_intent.onnx import META_PREFIX, ONNX_FILE, _set_meta


def weight_matmuls(model) -> list:
    """The MatMul nodes with a constant (initializer) input."""
    names = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and any(x in names for x in n.input)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("fp32", type=Path, help="an fp32 export (its intent_ner/model.onnx is quantized)")
    p.add_argument("out", type=Path, help="output pipeline directory (must not exist)")
    p.add_argument("--data", type=Path, required=True, help=".spacy corpus whose texts calibrate the activations")
    p.add_argument("--calibration", type=int, default=1024, help="how many of its queries (default 1024)")
    p.add_argument("--format", choices=["qop", "qdq"], default="qop",
                   help="QLinearMatMul operators (qop) or QuantizeLinear/DequantizeLinear pairs (qdq)")
    p.add_argument("--weights-only", action="store_true", help="quantize only the MatMuls with a constant weight")
    a = p.parse_args(argv)
    if a.out.exists():
        raise SystemExit(f"static_int8: {a.out} exists")
    found = sorted(a.fp32.glob(f"*/{ONNX_FILE}"))
    if len(found) != 1:
        raise SystemExit(f"static_int8: no single */{ONNX_FILE} in {a.fp32}: give an fp32 export's directory")
    src = found[0]
    model = onnx.load(str(src), load_external_data=False)
    meta = {p.key[len(META_PREFIX):]: json.loads(p.value) for p in model.metadata_props if p.key.startswith(META_PREFIX)}
    if meta.get("int8"):
        raise SystemExit(f"static_int8: {src} is already int8: give an fp32 export")
    nlp = spacy.load(a.fp32)
    runtime = nlp.get_pipe(src.parent.name).model.attrs["runtime"]
    docs = [nlp.make_doc(d.text) for d in DocBin().from_disk(a.data).get_docs(nlp.vocab)][: a.calibration]
    docs.sort(key=len)
    batches = [docs[i : i + 32] for i in range(0, len(docs), 32)]
    wanted = set(meta.get("inputs") or [i.name for i in model.graph.input])

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {k: v for k, v in runtime.inputs(batch).items() if k in wanted}

    nodes = weight_matmuls(model) if a.weights_only else None
    with tempfile.TemporaryDirectory() as tmp:
        quantized = Path(tmp) / ONNX_FILE
        quantize_static(
            str(src), str(quantized), Reader(),
            quant_format=QuantFormat.QDQ if a.format == "qdq" else QuantFormat.QOperator,
            op_types_to_quantize=["MatMul"], nodes_to_quantize=nodes, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        )
        shutil.copytree(a.fp32, a.out)
        dst = a.out / src.parent.name / ONNX_FILE
        shutil.copyfile(quantized, dst)
    _set_meta(dst, {**meta, "int8": True, "int8_scales": "channel", "int8_fp32_nodes": 0})
    n = len(nodes) if nodes is not None else "every"
    print(f"Saved {a.out} ({dst.stat().st_size / 2**20:.1f} MiB, static int8 {a.format}, {n} MatMuls)")


if __name__ == "__main__":
    main()
