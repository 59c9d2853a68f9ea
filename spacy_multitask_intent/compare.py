"""Train and evaluate several configurations over several seeds; tabulate.

Every configuration gets the same encoder, data, training budget and seeds.
"""
import json
import statistics
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from wasabi import msg

from .configs import corpus_is_multi_label, exclusive_textcat, merge_config
from .evaluate import evaluate

METRICS = [
    ("ents_p", "Precision"),
    ("ents_r", "Recall"),
    ("ents_f", "F1"),
    ("intent_acc", "Intent acc"),
    ("frame_acc", "Frame acc"),
    ("train_seconds", "Train s"),
]

# name -> (base config, variant fragment or None), relative to the configs dir
DEFAULT_VARIANTS = {
    "ner_only": ("multitask.cfg", "ner_only.cfg"),  # the heads at the learn rate, as the paper
    # "ner_only+head_lr_factor=30": the NER-only baseline at the default's head learn rate
    "alternating": ("multitask.cfg", "paper.cfg"),  # the paper's exact setting
    "joint": ("multitask.cfg", "joint.cfg"),
    "stock": ("stock.cfg", None),  # textcat_multilabel; exclusive textcat on single-label data
    "stock_multilabel": ("stock.cfg", None),  # textcat_multilabel whatever the data
    "stock_exclusive": ("stock.cfg", None),  # exclusive textcat whatever the data
    "default": ("multitask.cfg", None),  # the shipped default (joint, intent_weight 0.1, intent sets, heads x30, set veto)
}
# What `compare` trains when no --variants are given: both NER-only baselines, the paper's
# schedule, the summed-sigmoid joint pass, spaCy's stock pipeline and the shipped default.
RUN_BY_DEFAULT = ("ner_only", "ner_only+head_lr_factor=30", "alternating", "joint", "stock", "default")
STOCK_VARIANTS = ("stock", "stock_multilabel", "stock_exclusive")


def mean_sd(values: Sequence[Optional[float]]) -> Dict[str, Optional[float]]:
    """Mean and sample standard deviation (None for a single value: one seed
    says nothing about the spread); None-safe."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"mean": None, "sd": None, "n": 0}
    sd = statistics.stdev(vals) if len(vals) > 1 else None
    return {"mean": statistics.fmean(vals), "sd": sd, "n": len(vals)}


def aggregate(runs: Dict[str, List[Dict]], setting: str = "gold_tokens") -> Dict[str, Dict]:
    """runs: config name -> list of per-seed results (evaluate() output plus
    'train_seconds'). Returns name -> metric -> mean/sd/n."""
    table = {}
    for name, results in runs.items():
        row = {}
        devices = [r.get("device") or "cpu" for r in results]
        on_cpu = [r for r, d in zip(results, devices) if d == "cpu"]
        for key, _ in METRICS:
            if key == "train_seconds":
                # A GPU run's minutes are not a CPU run's: with both, time the CPU runs.
                timed = on_cpu if on_cpu else results
                row[key] = mean_sd([r.get("train_seconds") for r in timed])
            else:
                row[key] = mean_sd([r[setting].get(key) for r in results])
        stale = [r["not_reevaluated"] for r in results if r.get("not_reevaluated")]
        if stale:
            row["stale"] = stale
        if any(d != "cpu" for d in devices):
            row["devices"] = devices
        table[name] = row
    return table


def markdown(table: Dict[str, Dict], title: str = "") -> str:
    def cell(stat, key):
        if stat["mean"] is None:
            return "—"
        scale, digits = (1, 0) if key == "train_seconds" else (100, 2)
        text = f"{scale * stat['mean']:.{digits}f}"
        if stat["sd"] is not None:
            text += f" ± {scale * stat['sd']:.{digits}f}"
        return text

    lines = [f"**{title}**\n" if title else ""]
    lines.append("| config | " + " | ".join(label for _, label in METRICS) + " | seeds |")
    lines.append("|---|" + "---:|" * (len(METRICS) + 1))
    notes = []
    for name, row in table.items():
        n = max(row[k]["n"] for k, _ in METRICS)
        mark = ""
        if row.get("stale"):
            mark = " †"
            notes.append(f"† {name}: {len(row['stale'])} of {n} runs {row['stale'][0]}")
        if row.get("devices"):
            mark += " ‡"
            other = [d for d in row["devices"] if d != "cpu"]
            cpu = len(row["devices"]) - len(other)
            if not cpu:
                timing = "Train s on that GPU"
            elif cpu == 1:
                timing = "Train s is the CPU run's"
            else:
                timing = f"Train s is the mean of the {cpu} CPU runs"
            notes.append(f"‡ {name}: {len(other)} of {n} runs trained on {other[0]}; {timing}")
        lines.append(f"| {name}{mark} | " + " | ".join(cell(row[k], k) for k, _ in METRICS) + f" | {n} |")
    return "\n".join(lines + ([""] + notes if notes else []))


def parse_variant(spec: str):
    """'joint' or 'joint+intent_weight=0.5+training.max_steps=900' ->
    (name, overrides). A key without a dot is a setting of the intent_ner
    component; values are parsed like spaCy's --key value overrides."""
    from spacy.cli._util import _parse_override

    name, *settings = spec.split("+")
    if name not in DEFAULT_VARIANTS:
        raise ValueError(
            f"Unknown configuration '{name}' in '{spec}'; choose from {list(DEFAULT_VARIANTS)}"
        )
    overrides = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"Bad setting '{item}' in '{spec}': write KEY=VALUE, e.g. intent_weight=0.5")
        if "." not in key:
            if name in STOCK_VARIANTS:
                raise ValueError(f"'{item}' in '{spec}': the stock pipeline has no intent_ner settings; use a full key")
            key = f"components.intent_ner.{key}"
        overrides[key] = _parse_override(value)
    return name, overrides


def variant_config(name: str, configs_dir: Path, train: Optional[Path] = None):
    """The full config of a named configuration. `stock` is the fair peer:
    exclusive `textcat` (softmax, scored by argmax) when every query of
    `train` has one intent, as intent_ner decides from its training corpus,
    else `textcat_multilabel`; `stock_exclusive` and `stock_multilabel` fix
    the choice whatever the data."""
    base, variant = DEFAULT_VARIANTS[name]
    config = merge_config(configs_dir / base, configs_dir / variant if variant else None)
    if name == "stock_exclusive":
        config = exclusive_textcat(config)
    elif name == "stock" and train is not None and "textcat_multilabel" in config.get("components", {}):
        if not corpus_is_multi_label(train):
            config = exclusive_textcat(config)
            msg.info(f"{name}: every training query has one intent: exclusive textcat")
    return config


def run_compare(
    train: Path,
    dev: Path,
    test: Path,
    output_dir: Path,
    configs_dir: Path = Path("configs"),
    variants: Sequence[str] = RUN_BY_DEFAULT,
    seeds: Sequence[int] = (0, 1, 2),
    overrides: Optional[Dict] = None,
    resume: bool = False,
    report_name: str = "compare",
    collect_only: bool = False,
    reevaluate: bool = False,
    gpu_id: int = -1,
    table: Optional[Path] = None,
) -> Dict:
    """Train and evaluate each variant on each seed, then tabulate.

    resume: reuse runs whose metrics.json exists. collect_only: train nothing.
    reevaluate (with either): score a reused run's saved model-best on `test`
    again, keeping its training time, so a decoding change reaches old runs
    without retraining; a run whose model was not kept stays as it was.
    gpu_id: train and evaluate on this GPU (-1: CPU), like `spacy train --gpu-id`.
    table: the per-run results table (CSV, one row per run; see results_table.py),
    whose dataset column is OUTPUT_DIR's folder name. With collect_only (and no
    reevaluate) the runs are read from it instead of the metrics.json files;
    otherwise the runs of this call are merged into it."""
    from . import results_table

    from spacy.cli.train import train as spacy_train

    if gpu_id >= 0:
        from thinc.api import require_gpu

        require_gpu(gpu_id)  # evaluation of reused runs runs there too
    output_dir.mkdir(parents=True, exist_ok=True)
    runs: Dict[str, List[Dict]] = {}
    parsed = [(spec, *parse_variant(spec)) for spec in variants]  # fail before training
    from_table = table is not None and collect_only and not reevaluate
    if from_table:
        rows = results_table.read_csv(table)
        runs = results_table.select(rows, output_dir.name, [p[0] for p in parsed], seeds)
        for spec, _, _ in parsed:
            found = [r["seed"] for r in runs.get(spec, [])]
            for seed in seeds:
                if seed not in found:
                    msg.warn(f"{spec}, seed {seed}: no row for {output_dir.name} in {table}, left out of the table")
        parsed = []
    for spec, name, settings in parsed:
        config = variant_config(name, configs_dir, None if collect_only else train)
        cfg_path = output_dir / "configs" / f"{spec}.cfg"
        cfg_path.parent.mkdir(parents=True, exist_ok=True)
        config.to_disk(cfg_path, interpolate=False)
        for seed in seeds:
            out = output_dir / spec / f"seed{seed}"
            done = out / "metrics.json"
            if (resume or collect_only) and done.exists():
                previous = json.loads(done.read_text())
                if reevaluate:
                    previous = _reevaluate(previous, out / "model-best", test, done)
                else:
                    msg.info(f"{spec}, seed {seed}: reusing {done}")
                runs.setdefault(spec, []).append(previous)
                continue
            if collect_only:
                msg.warn(f"{spec}, seed {seed}: no {done}, left out of the table")
                continue
            msg.divider(f"{spec}, seed {seed}")
            ov = {
                "paths.train": str(train),
                "paths.dev": str(dev),
                "system.seed": seed,
                "paths.train_log": str(out / "train_log.jsonl"),
                **(overrides or {}),
                **settings,
            }
            start = time.perf_counter()
            spacy_train(cfg_path, out, use_gpu=gpu_id, overrides=ov)
            seconds = time.perf_counter() - start
            result = evaluate(out / "model-best", test)
            result["train_seconds"] = seconds
            result["seed"] = seed
            result["device"] = _device_name(gpu_id)
            # torch's thread count changes the order of float sums, so the same seed trained at
            # another count gives other weights: record it with the run
            result["torch_threads"] = _torch_threads()
            result["overrides"] = {k: v for k, v in ov.items() if not k.startswith("paths.")}
            done.write_text(json.dumps(result, indent=2, default=float))
            runs.setdefault(spec, []).append(result)
    report = {
        setting: aggregate(runs, setting) for setting in ("gold_tokens", "raw_text")
    }
    report["runs"] = {
        name: [{k: r[k] for k in ("seed", "train_seconds", "gold_tokens", "raw_text")} for r in results]
        for name, results in runs.items()
    }
    if table is not None and not from_table:
        new = [
            results_table.row_from_metrics(output_dir.name, spec, r, str(output_dir))
            for spec, results in runs.items() for r in results
        ]
        old = results_table.read_csv(table) if Path(table).exists() else []
        results_table.write_csv(results_table.merge(old, new), table)
        msg.info(f"{len(new)} runs written to {table}")
    text = "\n\n".join(
        markdown(report[s], s.replace("_", " ")) for s in ("gold_tokens", "raw_text")
    )
    (output_dir / f"{report_name}.md").write_text(text + "\n")
    print(text)
    return report


def _device_name(gpu_id: int) -> str:
    if gpu_id < 0:
        return "cpu"
    import torch

    return f"cuda:{gpu_id} ({torch.cuda.get_device_name(gpu_id)})"


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _reevaluate(previous: Dict, model: Path, test: Path, done: Path) -> Dict:
    if not model.exists():
        msg.warn(f"{done}: no {model} kept, scores left as they were")
        previous["not_reevaluated"] = (
            f"not scored again on {time.strftime('%Y-%m-%d')} (model-best not kept): "
            "scores from the code of their training run"
        )
        done.write_text(json.dumps(previous, indent=2, default=float))
        return previous
    msg.info(f"{model}: evaluating again on {test}")
    result = evaluate(model, test)
    for key in ("train_seconds", "seed", "device", "torch_threads", "overrides"):  # not "not_reevaluated": it is fresh
        if key in previous:
            result[key] = previous[key]
    done.write_text(json.dumps(result, indent=2, default=float))
    return result
