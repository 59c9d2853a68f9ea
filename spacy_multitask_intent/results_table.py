"""One row per training run: the compact table of `compare` results.

`compare` writes one `OUTPUT_DIR/SPEC/seedN/metrics.json` per run. This module
flattens them into one CSV (dataset, variant, seed, gold-token and raw-text
scores, training time, device, the command that reproduces the run), reads it
back in the shape `compare.aggregate` takes, and merges new runs into it.
Standard library only.
"""
import csv
import json
import shlex
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

SETTINGS = ("gold_tokens", "raw_text")
SCORES = ("ents_p", "ents_r", "ents_f", "intent_acc", "frame_acc")
PREFIX = {"gold_tokens": "gold", "raw_text": "raw"}
COLUMNS = (
    ["dataset", "variant", "seed", "max_steps"]
    + [f"{PREFIX[s]}_{k}" for s in SETTINGS for k in SCORES]
    + ["train_seconds", "device", "not_reevaluated", "note", "command"]
)
KEY = ("dataset", "variant", "seed")


def run_command(spec: str, seed: int, metrics: Dict, output_dir: Optional[str] = None) -> str:
    """The `compare` command that trains and scores this one run (it skips
    nothing else; with --resume it reuses the run if its metrics.json exists)."""
    model = Path(metrics.get("model") or "")
    test = Path(metrics.get("data") or "TEST.spacy")
    if output_dir is None:
        # model = OUTPUT_DIR/SPEC/seedN/model-best
        output_dir = str(model.parent.parent.parent) if len(model.parts) >= 4 else "OUTPUT_DIR"
    overrides = metrics.get("overrides") or {}
    parts = [
        "python", "-m", "spacy_multitask_intent", "compare",
        str(test.parent / "train.spacy"),
        str(test.parent / "dev.spacy"),
        str(test),
        output_dir,
        "--variants", spec,
        "--seeds", str(seed),
    ]
    if "training.max_steps" in overrides and "training.max_steps=" not in spec:
        parts += ["--max-steps", str(overrides["training.max_steps"])]
    if "paths.encoder" in overrides:
        parts += ["--encoder", str(overrides["paths.encoder"])]
    device = metrics.get("device") or "cpu"
    if device.startswith("cuda:"):
        parts += ["--gpu-id", device.split(":")[1].split()[0]]
    parts.append("--resume")
    return " ".join(shlex.quote(p) for p in parts)


def row_from_metrics(dataset: str, spec: str, metrics: Dict, output_dir: Optional[str] = None) -> Dict:
    """Flatten one run's metrics.json (compare's per-run result)."""
    for setting in SETTINGS:
        if not isinstance(metrics.get(setting), dict):
            raise ValueError(f"{dataset}/{spec}: the run's metrics have no '{setting}' scores")
    seed = metrics.get("seed")
    if seed is None:
        raise ValueError(f"{dataset}/{spec}: the run's metrics have no 'seed'")
    overrides = metrics.get("overrides") or {}
    row = {
        "dataset": dataset,
        "variant": spec,
        "seed": int(seed),
        "max_steps": overrides.get("training.max_steps"),
        "train_seconds": metrics.get("train_seconds"),
        "device": metrics.get("device") or "cpu",
        "not_reevaluated": metrics.get("not_reevaluated"),
        "note": metrics.get("note"),
        "command": run_command(spec, int(seed), metrics, output_dir),
    }
    for setting in SETTINGS:
        for key in SCORES:
            row[f"{PREFIX[setting]}_{key}"] = metrics[setting].get(key)
    return row


def scan(results_dir: Path) -> List[Dict]:
    """Every run under RESULTS_DIR/DATASET/SPEC/seedN/metrics.json, one row each,
    sorted by dataset, variant and seed. A dataset folder added later is picked
    up like the others."""
    rows = []
    for path in sorted(Path(results_dir).glob("*/*/seed*/metrics.json")):
        seed_dir = path.parent
        spec_dir = seed_dir.parent
        dataset = spec_dir.parent.name
        try:
            metrics = json.loads(path.read_text(encoding="utf8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        row = row_from_metrics(dataset, spec_dir.name, metrics, str(spec_dir.parent))
        if f"seed{row['seed']}" != seed_dir.name:
            raise ValueError(f"{path}: its seed is {row['seed']}, its folder {seed_dir.name}")
        rows.append(row)
    return sort_rows(rows)


def sort_rows(rows: Iterable[Dict]) -> List[Dict]:
    return sorted(rows, key=lambda r: (r["dataset"], r["variant"], int(r["seed"])))


def write_csv(rows: Sequence[Dict], path: Path) -> Path:
    """Numbers are written as Python writes floats (no rounding); None is empty."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in COLUMNS})
    return path


def read_csv(path: Path) -> List[Dict]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no results table; build it with benchmarks/collect.py")
    with path.open(encoding="utf8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in KEY if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column(s) {missing}; expected the header {','.join(COLUMNS)}")
        rows = []
        for line, raw in enumerate(reader, start=2):
            row = {}
            for key, value in raw.items():
                if key is None:
                    raise ValueError(f"{path}:{line}: more cells than columns")
                row[key] = _parse(key, value, path, line)
            rows.append(row)
    return rows


def _parse(key: str, value: Optional[str], path: Path, line: int):
    if value is None or value == "":
        return None
    if key in ("seed", "max_steps"):
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{path}:{line}: {key} '{value}' is not an integer") from None
    if key == "train_seconds" or key.startswith(("gold_", "raw_")):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{path}:{line}: {key} '{value}' is not a number") from None
    return value


def merge(old: Iterable[Dict], new: Iterable[Dict]) -> List[Dict]:
    """Rows of `new` replace those of `old` with the same dataset, variant and seed."""
    table = {tuple(r[k] for k in KEY): r for r in old}
    for row in new:
        table[tuple(row[k] for k in KEY)] = row
    return sort_rows(table.values())


def to_run(row: Dict) -> Dict:
    """A row in the shape of a per-run result, as `compare.aggregate` takes it."""
    run = {
        "seed": row["seed"],
        "train_seconds": row.get("train_seconds"),
        "device": row.get("device") or "cpu",
    }
    for setting in SETTINGS:
        run[setting] = {key: row.get(f"{PREFIX[setting]}_{key}") for key in SCORES}
    if row.get("not_reevaluated"):
        run["not_reevaluated"] = row["not_reevaluated"]
    return run


def select(rows: Iterable[Dict], dataset: str, variants: Sequence[str], seeds: Sequence[int]) -> Dict[str, List[Dict]]:
    """variant -> per-run results (seed order as given) of one dataset."""
    by_key = {(r["dataset"], r["variant"], r["seed"]): r for r in rows}
    runs: Dict[str, List[Dict]] = {}
    for spec in variants:
        for seed in seeds:
            row = by_key.get((dataset, spec, int(seed)))
            if row is not None:
                runs.setdefault(spec, []).append(to_run(row))
    return runs
