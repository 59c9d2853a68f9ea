"""Training curves of `compare` runs: dev slot F1, dev intent accuracy and the
training losses against steps, one line per configuration (mean over the seeds
that have a log).

    python benchmarks/plot_train_logs.py RESULTS_DIR/DATASET OUT.png --variants ner_only,joint+intent_weight=0.5,...

Reads RESULTS_DIR/DATASET/SPEC/seedN/train_log.jsonl (written by the
`spacy_multitask_intent.LossLogger.v1` logger; logged every 100 steps). Needs matplotlib.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path


def read_log(path: Path):
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{line_no}: not a JSON line ({err})") from None
    return rows


def loss_per_step(rows, keys):
    """Logged losses are sums since the previous log line: per-step means."""
    steps = [r["step"] for r in rows]
    spans = [max(s - p, 1) for s, p in zip(steps, [-1] + steps[:-1])]
    out = {}
    for r, n in zip(rows, spans):
        vals = [r["losses"][k] for k in keys if k in r["losses"]]
        if vals and r["step"] > 0:
            out[r["step"]] = sum(vals) / n
    return out


def mean_curve(curves):
    steps = sorted(set().union(*[c.keys() for c in curves])) if curves else []
    return steps, [statistics.fmean([c[s] for c in curves if s in c]) for s in steps]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--variants", required=True, help="Comma-separated SPEC folder names")
    parser.add_argument("--title", default=None)
    parser.add_argument("--f1-ymin", type=float, default=85.0, help="Lower end of the dev F1 axis")
    parser.add_argument("--intent-ymin", type=float, default=60.0, help="Lower end of the dev intent axis")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    panels = [
        ("dev slot F1 (%)", lambda rows: {r["step"]: 100 * r["scores"]["ents_f"] for r in rows if "ents_f" in r["scores"]}),
        ("dev intent accuracy (%)", lambda rows: {r["step"]: 100 * r["scores"]["intent_acc"] for r in rows if "intent_acc" in r["scores"]}),
        # spaCy's transition-based NER (the stock peer) has a loss of another kind: left out.
        ("NER loss per step (training, intent_ner only)", lambda rows: loss_per_step(rows, ["intent_ner_ner"])),
    ]
    colors = plt.get_cmap("tab10").colors
    for i, spec in enumerate(v for v in args.variants.split(",") if v):
        logs = sorted((args.dataset_dir / spec).glob("seed*/train_log.jsonl"))
        if not logs:
            print(f"{args.dataset_dir / spec}: no train_log.jsonl, left out", file=sys.stderr)
            continue
        runs = [read_log(p) for p in logs]
        label = f"{spec} ({len(runs)} seed{'s' if len(runs) > 1 else ''})"
        for ax, (_, get) in zip(axes, panels):
            curves = [c for c in (get(rows) for rows in runs) if c]
            if curves:
                steps, vals = mean_curve(curves)
                ax.plot(steps, vals, marker=".", color=colors[i % len(colors)], label=label)
    for ax, (title, _) in zip(axes, panels):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_ylim(args.f1_ymin, 100)
    axes[1].set_ylim(args.intent_ymin, 100)
    axes[2].set_yscale("log")
    handles = {h.get_label(): h for ax in axes for h in ax.get_lines()}
    axes[0].legend(handles.values(), handles.keys(), fontsize=7, loc="lower right")
    fig.suptitle(args.title or f"{args.dataset_dir.name}: mean over seeds of each run's train_log.jsonl")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=110, bbox_inches="tight")
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
