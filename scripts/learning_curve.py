"""Learning curves: NER-only against multitask on growing shares of the training set.

    python scripts/learning_curve.py subsets corpus/snips corpus --fractions 5,10,25,50 --seed 0
    python scripts/learning_curve.py jobs --datasets snips,atis --steps 1500
    python scripts/learning_curve.py report --out-md benchmarks/results/learning_curves.md --out-png docs/learning_curves.png

`subsets` writes OUT_ROOT/NAME_pNN/{train,dev,test}.spacy for each fraction NN
(NAME: CORPUS_DIR's folder name). dev and test are byte copies of the
originals, so every point of a curve is scored on the same queries. The train
subsets are stratified by intent: the queries are grouped by their set of gold
intents (the labels with cats >= 0.5), each group is shuffled with the seed and
the first ceil(fraction x group size) queries of each group are kept, so every
intent set of the full train keeps at least one query and a smaller subset is
part of every larger one (same seed). The kept queries stay in their original
order.

`jobs` prints the runs of the curve not yet in the results folder, as the
TRAIN_JOBS lists of `benchmarks/gpu/check.sh trainings`, a few runs per line.

`report` reads the per-run CSV (benchmarks/results.csv; dataset `snips_p05` is
the 5% run, `snips` the full train) and writes, for each dataset, fraction and
variant, the mean ± sample sd over the seeds of entity precision and F1 (and
intent accuracy for the multitask variants) as a Markdown table, and a plot:
one panel per dataset, % of train on a log axis. A fraction with no runs is
shown as missing, never filled in.
"""
import argparse
import math
import random
import re
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed copy

DEFAULT_FRACTIONS = "5,10,25,50"
DEFAULT_VARIANTS = "ner_only+head_lr_factor=30,joint+intent_weight=0.1+intent_loss=softmax+head_lr_factor=30"
FULL = 100.0


# ------------------------------------------------------------------ subsets
def parse_fractions(text: str, allow_full: bool = False) -> List[float]:
    """'5,10,25,50' -> [5.0, 10.0, 25.0, 50.0] (sorted, no duplicates); each in (0, 100)."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"fraction '{part}' is not a number (percent of train, e.g. 5,10,25,50)") from None
        if not (0 < value < FULL or (allow_full and value == FULL)):
            raise ValueError(f"fraction {part} is outside (0, 100): give percents of train, e.g. 5,10,25,50")
        values.append(value)
    if not values:
        raise ValueError("no fractions given (percent of train, e.g. 5,10,25,50)")
    return sorted(set(values))


def fraction_suffix(fraction: float) -> str:
    """5 -> 'p05', 50 -> 'p50', 2.5 -> 'p2_5'."""
    if float(fraction).is_integer():
        return f"p{int(fraction):02d}"
    return "p" + f"{fraction:g}".replace(".", "_")


def _read_docbin(path: Path, vocab):
    from spacy.tokens import DocBin

    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (a corpus folder holds train.spacy, dev.spacy and test.spacy)")
    try:
        docbin = DocBin().from_disk(path)
        docs = list(docbin.get_docs(vocab))
    except Exception as err:  # a truncated or foreign file fails deep in msgpack/spaCy
        raise ValueError(f"{path}: not a readable .spacy DocBin ({type(err).__name__}: {err})") from None
    return docbin, docs


def choose(intent_sets: Sequence[frozenset], fraction: float, seed: int) -> List[int]:
    """Indices (ascending) of the queries kept at `fraction` percent: per intent
    set, the first ceil(fraction/100 x size) of the group shuffled with `seed`.
    The shuffle does not depend on the fraction, so the subsets are nested."""
    groups: Dict[tuple, List[int]] = {}
    for i, intents in enumerate(intent_sets):
        groups.setdefault(tuple(sorted(intents)), []).append(i)
    rng = random.Random(seed)
    kept: List[int] = []
    for key in sorted(groups):  # a fixed order: the shuffles do not depend on dict order
        members = list(groups[key])
        rng.shuffle(members)
        kept += members[: math.ceil(fraction / FULL * len(members))]
    return sorted(kept)


def make_subsets(corpus_dir: Path, out_root: Path, fractions: Sequence[float], seed: int = 0) -> List[Dict]:
    """Write OUT_ROOT/NAME_pNN/{train,dev,test}.spacy for each fraction; return
    one summary per subset (name, path, fraction, and the counts of queries,
    intents, intent sets and entity types kept, each with its of_ total)."""
    import spacy
    from spacy.tokens import DocBin

    from spacy_multitask_intent.scoring import gold_intents

    corpus_dir, out_root = Path(corpus_dir), Path(out_root)
    fractions = [float(f) for f in fractions]
    for f in fractions:
        if not 0 < f < FULL:
            raise ValueError(f"fraction {f:g} is outside (0, 100): give percents of train, e.g. 5,10,25,50")
    for split in ("dev", "test"):
        if not (corpus_dir / f"{split}.spacy").is_file():
            raise FileNotFoundError(f"{corpus_dir / f'{split}.spacy'}: missing (copied unchanged into every subset)")
    name = corpus_dir.name or corpus_dir.resolve().name
    vocab = spacy.blank("en").vocab
    source, docs = _read_docbin(corpus_dir / "train.spacy", vocab)
    if not docs:
        raise ValueError(f"{corpus_dir / 'train.spacy'}: holds no queries")
    intent_sets = [frozenset(gold_intents(doc.cats)) for doc in docs]
    all_sets = set(intent_sets)
    all_intents = set().union(*all_sets)
    ent_labels = [{ent.label_ for ent in doc.ents} for doc in docs]
    all_labels = set().union(*ent_labels)
    summaries = []
    for fraction in sorted(fractions):
        kept = choose(intent_sets, fraction, seed)
        out = out_root / f"{name}_{fraction_suffix(fraction)}"
        out.mkdir(parents=True, exist_ok=True)
        subset = DocBin(attrs=source.attrs, store_user_data=source.store_user_data, docs=[docs[i] for i in kept])
        subset.to_disk(out / "train.spacy")
        for split in ("dev", "test"):
            shutil.copyfile(corpus_dir / f"{split}.spacy", out / f"{split}.spacy")  # a real file, even from a link
        sets = {intent_sets[i] for i in kept}
        summaries.append({
            "name": out.name,
            "path": out,
            "fraction": fraction,
            "queries": len(kept),
            "of_queries": len(docs),
            "intents": len(set().union(*sets)),
            "of_intents": len(all_intents),
            "intent_sets": len(sets),
            "of_intent_sets": len(all_sets),
            "entity_types": len(set().union(*(ent_labels[i] for i in kept))),
            "of_entity_types": len(all_labels),
        })
    return summaries


# ------------------------------------------------------------------ report
def dataset_fraction(dataset: str, name: str) -> Optional[float]:
    """'snips' -> 100.0, 'snips_p05' -> 5.0, 'snips_p2_5' -> 2.5; another dataset -> None."""
    if dataset == name:
        return FULL
    m = re.fullmatch(re.escape(name) + r"_p(\d+)(?:_(\d+))?", dataset)
    if not m:
        return None
    return float(m.group(1) + ("." + m.group(2) if m.group(2) else ""))


def is_multitask(variant: str) -> bool:
    return not variant.split("+", 1)[0].startswith("ner_only")


def curves(rows: Sequence[Dict], datasets: Sequence[str], variants: Sequence[str],
           seeds: Sequence[int], fractions: Sequence[float]) -> Dict:
    """dataset -> fraction -> variant -> {p, f, intent_acc: mean/sd/n, steps: set}.
    Rows: results_table.read_csv's. The fractions shown are the ones asked for
    plus any other found in the rows; a cell with no run has n == 0."""
    from spacy_multitask_intent.compare import mean_sd

    seeds = {int(s) for s in seeds}
    out: Dict = {}
    for name in datasets:
        found = {}
        for row in rows:
            frac = dataset_fraction(row["dataset"], name)
            if frac is None or row["variant"] not in variants or row["seed"] not in seeds:
                continue
            found.setdefault(frac, {}).setdefault(row["variant"], []).append(row)
        table = {}
        for frac in sorted(set(fractions) | set(found)):
            table[frac] = {}
            for variant in variants:
                runs = sorted(found.get(frac, {}).get(variant, []), key=lambda r: r["seed"])
                table[frac][variant] = {
                    "p": mean_sd([r.get("gold_ents_p") for r in runs]),
                    "f": mean_sd([r.get("gold_ents_f") for r in runs]),
                    "intent_acc": mean_sd([r.get("gold_intent_acc") for r in runs]),
                    "seeds": [r["seed"] for r in runs],
                    "steps": sorted({r.get("max_steps") for r in runs if r.get("max_steps") is not None}),
                    "devices": [r.get("device") or "cpu" for r in runs],
                }
        out[name] = table
    return out


def short_names(variants: Sequence[str]) -> Dict[str, str]:
    """Column and legend names: NER-only, and multitask (numbered when several)."""
    multi = [v for v in variants if is_multitask(v)]
    names = {}
    for v in variants:
        if not is_multitask(v):
            names[v] = "NER-only" if len(variants) - len(multi) == 1 else v
        else:
            names[v] = "multitask" if len(multi) == 1 else f"multitask {multi.index(v) + 1}"
    return names


def _cell(stat: Dict) -> str:
    if stat["mean"] is None:
        return "—"
    text = f"{100 * stat['mean']:.2f}"
    if stat["sd"] is not None:
        text += f" ± {100 * stat['sd']:.2f}"
    return text


def _delta(a: Dict, b: Dict) -> str:
    if a["mean"] is None or b["mean"] is None:
        return "—"
    return f"{100 * (a['mean'] - b['mean']):+.2f}"


def markdown(table: Dict, variants: Sequence[str], seeds: Sequence[int]) -> str:
    base, others = variants[0], list(variants[1:])
    short = short_names(variants)
    lines = [
        "# Learning curves: entity precision and F1 by share of train",
        "",
        f"Test set, gold tokens, in points: mean ± sample sd over seeds {','.join(map(str, seeds))} "
        f"(n: the seeds found); Δ: the mean minus {short[base]}'s mean; —: no run. "
        "Variants: " + ", ".join(f"{short[v]} = `{v}`" for v in variants) + ". "
        "Rebuilt by `python scripts/learning_curve.py report` from the per-run CSV.",
    ]
    for name, fractions in table.items():
        head = ["% train", "steps"]
        for v in variants:
            head += [f"{short[v]} P", f"{short[v]} F1"] + ([f"{short[v]} intent acc"] if is_multitask(v) else [])
            head.append("n")
        for v in others:
            head += [f"Δ P {short[v]}", f"Δ F1 {short[v]}"]
        lines += ["", f"## {name}", "", "| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
        for frac, cells in fractions.items():
            steps = sorted({s for c in cells.values() for s in c["steps"]})
            row = [f"{frac:g}", "/".join(map(str, steps)) or "—"]
            for v in variants:
                c = cells[v]
                row += [_cell(c["p"]), _cell(c["f"])]
                if is_multitask(v):
                    row.append(_cell(c["intent_acc"]))
                row.append(str(len(c["seeds"])))
            for v in others:
                row += [_delta(cells[v]["p"], cells[base]["p"]), _delta(cells[v]["f"], cells[base]["f"])]
            lines.append("| " + " | ".join(row) + " |")
        mixed = [f"{frac:g}%" for frac, cells in fractions.items()
                 if len({s for c in cells.values() for s in c["steps"]}) > 1]
        if mixed:
            lines += ["", f"Runs of different step budgets share a row at {', '.join(mixed)}."]
        devices = [d for cells in fractions.values() for c in cells.values() for d in c["devices"]]
        elsewhere = sorted({d for d in devices if d != "cpu"})
        if elsewhere:
            lines += ["", f"{sum(d != 'cpu' for d in devices)} of {len(devices)} runs trained on "
                      f"{', '.join(elsewhere)}, the others on the CPU (the CSV's device column)."]
    return "\n".join(lines) + "\n"


def plot(table: Dict, variants: Sequence[str], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    short = short_names(variants)
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[0], names):
        fractions = list(table[name])
        for i, variant in enumerate(variants):
            for key, label, style in (("p", "precision", "s--"), ("f", "F1", "o-")):
                points = [(frac, table[name][frac][variant][key]) for frac in fractions]
                points = [(x, s) for x, s in points if s["mean"] is not None]
                if not points:
                    continue
                ax.errorbar(
                    [x for x, _ in points],
                    [100 * s["mean"] for _, s in points],
                    yerr=[100 * (s["sd"] or 0.0) for _, s in points],
                    fmt=style, color=colors[i % len(colors)], capsize=3, markersize=4,
                    label=f"{short[variant]} {label}",
                )
        ax.set_xscale("log")
        ax.set_xlim(min(fractions) / 1.3, max(fractions) * 1.3)
        ax.set_xticks(fractions)
        ax.set_xticklabels([f"{f:g}" for f in fractions])
        ax.minorticks_off()
        ax.set_xlabel("% of train")
        ax.set_ylabel("test entity score (gold tokens)")
        ax.set_title(name.upper() if name in ("snips", "atis") else name)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no runs yet", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle("Entity precision (dashed) and F1 (solid) by share of train, mean ± sd over seeds", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report(results_csv: Path, datasets: Sequence[str], variants: Sequence[str], seeds: Sequence[int],
           out_md: Path, out_png: Path, fractions: Sequence[float] = (5, 10, 25, 50, 100)) -> Dict:
    from spacy_multitask_intent import results_table

    rows = results_table.read_csv(results_csv)
    table = curves(rows, datasets, variants, seeds, fractions)
    text = markdown(table, variants, seeds)
    out_md = Path(out_md)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(text, encoding="utf8")
    plot(table, variants, out_png)
    print(text)
    print(f"{out_md}, {out_png}: written from {results_csv}")
    return table


# ------------------------------------------------------------------ jobs
def jobs(results: Path, datasets: Sequence[str], variants: Sequence[str], seeds: Sequence[int],
         fractions: Sequence[float], steps: int, per_line: int) -> List[str]:
    """TRAIN_JOBS lines for the runs without RESULTS/DATASET_pNN/VARIANT/seedN/metrics.json."""
    todo = []
    for name in datasets:
        for frac in fractions:
            dataset = name if frac == FULL else f"{name}_{fraction_suffix(frac)}"
            for variant in variants:
                for seed in seeds:
                    if not (Path(results) / dataset / variant / f"seed{seed}" / "metrics.json").exists():
                        todo.append(f"{dataset} {variant} {seed} {steps}")
    return [";".join(todo[i:i + per_line]) for i in range(0, len(todo), per_line)]


# ------------------------------------------------------------------ main
def _csv(text: str) -> List[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("subsets", help="Nested, intent-stratified train subsets with the same dev and test")
    s.add_argument("corpus_dir", type=Path, help="Folder with train.spacy, dev.spacy, test.spacy")
    s.add_argument("out_root", type=Path, help="Where NAME_pNN/ go (NAME: CORPUS_DIR's folder name)")
    s.add_argument("--fractions", default=DEFAULT_FRACTIONS, help="Percents of train, each in (0, 100)")
    s.add_argument("--seed", type=int, default=0)
    j = sub.add_parser("jobs", help="TRAIN_JOBS lines (benchmarks/gpu/check.sh trainings) for the missing runs")
    j.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    j.add_argument("--datasets", default="snips,atis")
    j.add_argument("--variants", default=DEFAULT_VARIANTS)
    j.add_argument("--seeds", default="0,1,2")
    j.add_argument("--fractions", default=DEFAULT_FRACTIONS + ",100")
    j.add_argument("--steps", type=int, default=1500)
    j.add_argument("--per-line", type=int, default=6, help="Runs started together per check.sh call")
    r = sub.add_parser("report", help="Markdown table and plot from the per-run CSV")
    r.add_argument("--results-csv", type=Path, default=ROOT / "benchmarks" / "results.csv")
    r.add_argument("--datasets", default="snips,atis")
    r.add_argument("--variants", default=DEFAULT_VARIANTS, help="The first is the baseline of the Δ columns")
    r.add_argument("--seeds", default="0,1,2")
    r.add_argument("--fractions", default=DEFAULT_FRACTIONS + ",100", help="Rows shown even with no run")
    r.add_argument("--out-md", type=Path, required=True)
    r.add_argument("--out-png", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "subsets":
            fractions = parse_fractions(args.fractions)
            for s in make_subsets(args.corpus_dir, args.out_root, fractions, args.seed):
                print(
                    f"{s['path']}: {s['queries']} of {s['of_queries']} queries, "
                    f"{s['intents']}/{s['of_intents']} intents, {s['intent_sets']}/{s['of_intent_sets']} intent sets, "
                    f"{s['entity_types']}/{s['of_entity_types']} entity types"
                )
        elif args.command == "jobs":
            lines = jobs(args.results, _csv(args.datasets), _csv(args.variants), [int(x) for x in _csv(args.seeds)],
                         parse_fractions(args.fractions, allow_full=True), args.steps, max(1, args.per_line))
            print("\n".join(lines) if lines else f"every run is in {args.results}")
        else:
            variants = _csv(args.variants)
            if not variants:
                raise ValueError("--variants: none given")
            report(args.results_csv, _csv(args.datasets), variants, [int(x) for x in _csv(args.seeds)],
                   args.out_md, args.out_png, parse_fractions(args.fractions, allow_full=True))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
