"""Annotation throughput: the local engine against Ray Data with 1 and 2 workers,
in one run on the same input, one torch thread per process.

    python benchmarks/annotate.py --model training/store_lookup/multitask/model-best \
        --rows 50000 --out bench_out/annotate

Prints a Markdown table and writes results.json under --out: rows/s of each
engine, Ray 1 worker / local (target >= 0.9), Ray 2 workers / Ray 1 worker
(target >= 1.7), the scaling efficiency (speed-up / workers), rows/s per core
and the cores needed for 50 M rows in one hour. Every timing includes loading
the pipeline (once per process) and writing the shards; the Ray cluster is
started once, before the timings, and warmed by one small job (--warmup-rows),
as a cluster that is already running would be: the first Ray Data job on a
fresh cluster also starts Ray's worker processes, and that job's time is
reported on its own row (`ray-1, first job`), outside the ratios.
"""
import argparse
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# this checkout's package, here and in the Ray workers
ROOT = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def make_input(path: Path, rows: int, seed: int) -> int:
    """`rows` store-lookup queries (the generator's texts, cycled) as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from spacy_multitask_intent.data.generate import generate

    texts = [r["text"] for r in generate(n=min(rows, 5000), seed=seed)]
    texts = [texts[i % len(texts)] for i in range(rows)]
    pq.write_table(pa.table({"id": [f"q{i:08d}" for i in range(rows)], "text": texts}), path, row_group_size=10_000)
    return len(set(texts))


def timed(label, fn):
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    print(f"{label}: {result.rows} rows in {seconds:.1f} s = {result.rows / seconds:.1f} rows/s", flush=True)
    return {"engine": label, "rows": result.rows, "seconds": round(seconds, 2), "rows_per_s": round(result.rows / seconds, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--out", default="bench_out/annotate")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--shard-rows", type=int, default=2_500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--warmup-rows", type=int, default=500, help="rows of the untimed-for-ratios first Ray job (0: none)")
    ap.add_argument("--target-rows", type=float, default=50e6, help="rows for the cores-per-hour estimate")
    args = ap.parse_args()

    import ray
    import torch

    from spacy_multitask_intent.annotate import init_local_ray, run

    load_start = os.getloadavg()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    src = out / "queries.parquet"
    distinct = make_input(src, args.rows, args.seed)
    print(f"{args.rows} queries ({distinct} distinct) -> {src}", flush=True)
    common = dict(batch_size=args.batch_size, shard_rows=args.shard_rows, threads=1)

    results = [timed("local", lambda: run(args.model, str(src), str(out / "local"), engine="local", progress=False, **common))]
    # Ray starts its workers at niceness 15 by default; on a machine shared with
    # other work that alone starves them against the local engine (niceness 0).
    # Same priority for every engine: the workers get this process's niceness.
    os.environ["RAY_worker_niceness"] = str(os.nice(0))
    init_local_ray(num_cpus=2)  # the cluster `annotate --engine ray` starts
    try:
        if args.warmup_rows:
            warm = out / "warmup.parquet"
            make_input(warm, args.warmup_rows, args.seed + 1)
            results.append(
                timed("ray-1, first job", lambda: run(args.model, str(warm), str(out / "warmup"), engine="ray", workers=1, **common))
            )
        for workers in (1, 2):
            results.append(
                timed(
                    f"ray-{workers}",
                    lambda: run(args.model, str(src), str(out / f"ray{workers}"), engine="ray", workers=workers, **common),
                )
            )
    finally:
        ray.shutdown()

    rate = {r["engine"]: r["rows_per_s"] for r in results}
    local, ray1, ray2 = rate["local"], rate["ray-1"], rate["ray-2"]
    speedup = ray2 / ray1
    overhead = ray1 / local
    per_core = ray2 / 2
    summary = {
        "ray1_over_local": round(overhead, 3),
        "ray2_over_ray1": round(speedup, 3),
        "scaling_efficiency": round(speedup / 2, 3),
        "rows_per_s_per_core": round(per_core, 1),
        "cores_for_target_in_1h": math.ceil(args.target_rows / 3600 / per_core),
        "targets": {
            "ray2_over_ray1>=1.7": "met" if speedup >= 1.7 else "missed",
            "ray1_over_local>=0.9": "met" if overhead >= 0.9 else "missed",
        },
    }
    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "ray": ray.__version__,
        "loadavg_at_start": load_start,
        "loadavg_at_end": os.getloadavg(),
    }
    report = {"command": " ".join(sys.argv), "args": vars(args), "results": results, "summary": summary, "machine": machine}
    (out / "results.json").write_text(json.dumps(report, indent=1))
    print()
    print("| engine | rows | seconds | rows/s |")
    print("| --- | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['engine']} | {r['rows']} | {r['seconds']} | {r['rows_per_s']} |")
    print()
    print(json.dumps(summary, indent=1))
    print(json.dumps(machine))


if __name__ == "__main__":
    main()
