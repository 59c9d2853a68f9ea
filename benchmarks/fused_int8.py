#!/usr/bin/env python
"""An int8 export whose graph went through ONNX Runtime's BERT fusion first
(an experiment: ``export`` does not fuse).

Takes an fp32 export (``python -m spacy_multitask_intent export MODEL FP32``),
fuses its graph with ``onnxruntime.transformers.optimizer.optimize_model``
(model_type "bert"; embeddings, attention, GELU and skip layer norms become
single operators), quantizes it like ``export --int8`` (dynamic, per output
column) and writes a copy of the fp32 pipeline with that graph and the int8
metadata.  Time it against the plain int8 export with

    python benchmarks/ort_graph.py --model MODEL --int8 EXPORT_INT8 --graph fused=OUT \\
        --data corpus/store_lookup/test.spacy --reps 3 --isolated

    python benchmarks/fused_int8.py FP32 OUT --num-heads 12 --hidden-size 384
"""
import argparse
import json
import shutil
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.optimizer import optimize_model

from spacy_multitask_intent.onnx import META_PREFIX, ONNX_FILE, _set_meta


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("fp32", type=Path, help="an fp32 export (its intent_ner/model.onnx is fused)")
    p.add_argument("out", type=Path, help="output pipeline directory (must not exist)")
    p.add_argument("--num-heads", type=int, default=12, help="the encoder's attention heads (all-MiniLM-L6-v2: 12)")
    p.add_argument("--hidden-size", type=int, default=384, help="the encoder's width (all-MiniLM-L6-v2: 384)")
    a = p.parse_args(argv)
    if a.out.exists():
        raise SystemExit(f"fused_int8: {a.out} exists")
    found = sorted(a.fp32.glob(f"*/{ONNX_FILE}"))  # the exported component's directory
    if len(found) != 1:
        raise SystemExit(f"fused_int8: no single */{ONNX_FILE} in {a.fp32}: give an fp32 export's directory")
    src = found[0]
    props = onnx.load(str(src), load_external_data=False).metadata_props
    meta = {p.key[len(META_PREFIX):]: json.loads(p.value) for p in props if p.key.startswith(META_PREFIX)}
    if meta.get("int8"):
        raise SystemExit(f"fused_int8: {src} is already int8: give an fp32 export")
    with tempfile.TemporaryDirectory() as tmp:
        fused_path, quantized = Path(tmp) / "fused_fp32.onnx", Path(tmp) / ONNX_FILE
        fused = optimize_model(str(src), model_type="bert", num_heads=a.num_heads, hidden_size=a.hidden_size,
                               opt_level=1)
        print("fused operators:", {k: v for k, v in fused.get_fused_operator_statistics().items() if v})
        fused.save_model_to_file(str(fused_path))
        # The fused operators come from another domain, so shape inference cannot type
        # their outputs: DefaultTensorType tells the quantizer they are float.
        quantize_dynamic(str(fused_path), str(quantized), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        shutil.copytree(a.fp32, a.out)
        dst = a.out / src.parent.name / ONNX_FILE
        shutil.copyfile(quantized, dst)
    _set_meta(dst, {**meta, "int8": True, "int8_scales": "channel", "int8_fp32_nodes": 0})
    print(f"Saved {a.out} ({dst.stat().st_size / 2**20:.1f} MiB, fused, int8 per channel)")


if __name__ == "__main__":
    main()
