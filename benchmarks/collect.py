"""Rebuild benchmarks/results.csv and the Markdown tables in benchmarks/results/.

1. Every run's `benchmarks/results/DATASET/SPEC/seedN/metrics.json` becomes one
   row of `benchmarks/results.csv` (dataset, variant, seed, gold-token and
   raw-text P/R/F1, intent and frame accuracy, train seconds, device, the
   command that reproduces the run). A dataset folder added later is included.
2. Each table below is rebuilt from that CSV with
   `python -m spacy_multitask_intent compare ... OUT_DIR --collect --table
   benchmarks/results.csv --seeds S --variants V --report NAME`
   (the train/dev/test arguments are not read with --collect). A dataset with
   no entry gets a `compare.md` of all its variants.

    python benchmarks/collect.py [--results benchmarks/results] [--table benchmarks/results.csv] [--no-tables]
"""
import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed copy

from spacy_multitask_intent import results_table  # noqa: E402

# The default's recipe before the intent-set veto (joint, intent weight 0.1, softmax intent head,
# heads at 30x the learn rate), and NER-only at the same head rate: most tables compare against them.
_X30 = "joint+intent_weight=0.1+intent_loss=softmax+head_lr_factor=30"
_NER30 = "ner_only+head_lr_factor=30"
# The same at heads 10x the learn rate (an earlier default).
_X10 = "joint+intent_weight=0.1+intent_loss=softmax+head_lr_factor=10"
_NER10 = "ner_only+head_lr_factor=10"
# The overrides that turn a lever on (joined to a variant with "+").
_CRF = "components.intent_ner.model.crf=true"
_POOL_FIRST = "components.intent_ner.model.encoder.pooling=first"

# The heads' learn-rate factor: NER-only and the default's recipe at the learn rate, x10 and x30
# (the default's setting).
HEAD_LR = ("0,1,2", f"ner_only,joint+intent_weight=0.1+intent_loss=softmax,{_NER10},{_X10},{_NER30},{_X30}")

# The summed sigmoid intent head against softmax (the default) at the default's weight and head
# rate, and NER-only at the same head rate.
INTENT_LOSS_X30 = ("0,1,2", f"{_NER30},{_X30},joint+intent_weight=0.1+intent_loss=sigmoid_sum+head_lr_factor=30")

# A CRF on the NER head (the default and NER-only) and the default with a scalar mix of the
# encoder's last 4 hidden states, beside NER-only and the default at heads x30 (`project.yml` levers).
CRF_MIX = ("0,1,2", f"{_NER30},{_X30},{_NER30}+{_CRF},{_X30}+{_CRF},{_X30}+components.intent_ner.model.encoder.scalar_mix=4")

# Each accuracy lever added to the default's recipe at heads x30 (first-sub-word pooling, label
# smoothing, an MLP head, the scalar mix, the CRF), beside NER-only and the recipe itself.
LEVERS_X30 = ",".join(
    [_NER30, _X30]
    + [
        f"{_X30}+{lever}"
        for lever in (
            _POOL_FIRST,
            "label_smoothing=0.1",
            "components.intent_ner.model.hidden_width=256",
            "components.intent_ner.model.encoder.scalar_mix=4",
            _CRF,
        )
    ]
)

# The CRF alone (no scalar mix runs), for the store-lookup sets.
CRF = (CRF_MIX[0], CRF_MIX[1].rsplit(",", 1)[0])

# The intent sets as softmax classes (intent_loss=softmax_sets) beside NER-only, the default
# (softmax) and the summed sigmoid, at the default's weight and head rate.
INTENT_SETS = ("0,1,2", INTENT_LOSS_X30[1] + ",joint+intent_weight=0.1+intent_loss=softmax_sets+head_lr_factor=30")

# The shipped default (`default`: configs/multitask.cfg, softmax_sets with the intent-set veto,
# trained as a user trains it, so its checkpoint is chosen on dev scores decoded with the veto)
# beside NER-only at the same head rate, the previous default and softmax_sets without the veto.
DEFAULT = ("0,1,2", f"{_NER30},{_X30},joint+intent_weight=0.1+intent_loss=softmax_sets+head_lr_factor=30,default")

# dataset -> report name -> (seeds, variants in row order)
REPORTS = {
    "store_lookup": {
        "compare": (
            "0,1,2",
            "ner_only,alternating,joint,stock,joint+intent_weight=0.5+intent_loss=softmax,joint+intent_weight=0.1+intent_loss=softmax",
        ),
        "head_lr": HEAD_LR,
        "intent_loss_x30": INTENT_LOSS_X30,
        "intent_sets": INTENT_SETS,
        "levers_crf": CRF,
        "default": DEFAULT,
    },
    "atis": {
        # The intent weight at heads x30, for the ATIS intent target (seed 0).
        "intent_weight_x30_seed0": (
            "0",
            f"{_NER30},{_X30},joint+intent_weight=0.2+intent_loss=softmax+head_lr_factor=30,"
            "joint+intent_weight=0.3+intent_loss=softmax+head_lr_factor=30",
        ),
        # The intent weight 0.2 against the default's 0.1 at heads x30, three seeds.
        "intent_weight_x30": (
            "0,1,2",
            f"{_NER30},{_X30},joint+intent_weight=0.2+intent_loss=softmax+head_lr_factor=30",
        ),
        # The intent loss at the default's weight and head rate: softmax (the default), the summed
        # sigmoid and auto (the averaged sigmoid on ATIS, which has multi-intent queries).
        "intent_loss_x30": (INTENT_LOSS_X30[0], INTENT_LOSS_X30[1] + ",joint+intent_weight=0.1+intent_loss=auto+head_lr_factor=30"),
        "levers_crf_mix": CRF_MIX,
        # Label smoothing, the MLP head and the scalar mix on the default's recipe at heads x30
        # (`project.yml` levers-x30), beside the CRF: SNIPS's levers_x30 without its pooling row
        # (ATIS's pooling runs are on the shipped default: pooling_first).
        "levers_x30": ("0,1,2", ",".join(v for v in LEVERS_X30.split(",") if _POOL_FIRST not in v)),
        # The CRF on the recipe with heads at 10x the learn rate (`project.yml` crf-x10), beside
        # NER-only and the recipe at x10, and both at x30 with a CRF.
        "levers_crf_x10": ("0,1,2", f"{_NER10},{_X10},{_X10}+{_CRF},{_NER30}+{_CRF},{_X30}+{_CRF}"),
        "intent_sets": INTENT_SETS,
        "default": DEFAULT,
        # The default with first-sub-word pooling (`project.yml` levers-x30), on the same seeds.
        "pooling_first": ("0,1", f"default,default+{_POOL_FIRST}"),
        # The default and NER-only (heads x30) at 1,500 steps and at the base config's budget, 3,000.
        "default_3000": (
            "0,1,2",
            f"{_NER30},{_X30},{_NER30}+training.max_steps=3000,{_X30}+training.max_steps=3000",
        ),
        "compare": (
            "0,1,2",
            "ner_only,joint+intent_weight=0.5+intent_loss=softmax,joint+intent_weight=0.1+intent_loss=softmax,"
            "joint+intent_weight=0.1,alternating,stock",
        ),
        "ablation_seed0": (
            "0",
            "ner_only,joint+intent_weight=0.1,joint+intent_weight=0.5,joint+intent_weight=1.0,"
            "alternating+intent_lr_factor=0.01,alternating,alternating+intent_lr_factor=1.0,"
            "alternating+intent_optimizer_state=separate,"
            "alternating+intent_optimizer_state=separate+intent_lr_factor=1.0",
        ),
        "ablation_intent_lr_factor": (
            "0,1,2",
            "alternating+intent_lr_factor=0.01,alternating,alternating+intent_lr_factor=1.0,joint+intent_weight=0.5",
        ),
        "ablation_intent_weight": (
            "0,1,2",
            "ner_only,joint+intent_weight=0.1,joint+intent_weight=0.5,joint+intent_weight=1.0",
        ),
        "budget": (
            "0,1,2",
            "ner_only,joint+intent_weight=0.5,ner_only+training.max_steps=3000,"
            "joint+intent_weight=0.5+training.max_steps=3000",
        ),
        "intent_loss_seed0": (
            "0", "ner_only,joint+intent_weight=0.5,joint+intent_weight=0.5+intent_loss=softmax,joint+intent_weight=0.1+intent_loss=softmax"
        ),
        # NER-only seed 0 trained again with the current code (its first models were not kept)
        "ner_only_retrained": ("0", "ner_only,ner_only+training.max_steps=1500"),
        "head_lr": HEAD_LR,
    },
    "snips": {
        "intent_loss_seed0": (
            "0", "ner_only,joint+intent_weight=0.5,joint+intent_weight=0.5+intent_loss=softmax,joint+intent_weight=0.1+intent_loss=softmax"
        ),
        "compare": (
            "0,1,2",
            "ner_only,joint+intent_weight=0.5+intent_loss=softmax,joint+intent_weight=0.1+intent_loss=softmax,"
            "joint+intent_weight=0.1,joint+intent_weight=0.5,"
            "alternating,stock_exclusive,stock_multilabel,joint+intent_weight=0.5+training.max_steps=3000",
        ),
        "budget": (
            "0,1,2",
            "ner_only,joint+intent_weight=0.5,ner_only+training.max_steps=3000,"
            "joint+intent_weight=0.1+training.max_steps=3000,joint+intent_weight=0.5+training.max_steps=3000,"
            "joint+intent_weight=0.1+intent_loss=softmax+training.max_steps=3000",
        ),
        "levers_crf_mix": CRF_MIX,
        # SNIPS is single-label: softmax_sets is the softmax head there, so no softmax_sets row.
        "default": ("0,1,2", f"{_NER30},{_X30},default"),
        "levers": (  # accuracy levers on the default (joint 0.1, softmax), 1,500 steps
            "0,1,2",
            f"ner_only,joint+intent_weight=0.1+intent_loss=softmax,{_NER10},{_X10},"
            "joint+intent_weight=0.1+intent_loss=softmax+label_smoothing=0.1,"
            "joint+intent_weight=0.1+intent_loss=softmax+components.intent_ner.model.hidden_width=256,"
            f"joint+intent_weight=0.1+intent_loss=softmax+{_POOL_FIRST},{_NER30},{_X30}",
        ),
        # The accuracy levers on the default's recipe at heads x30, 1,500 steps (`project.yml`
        # levers-x30; the runs of pooling, label smoothing, the MLP head and the scalar mix's seeds
        # 1-2 at one torch thread, the others at an unrecorded count).
        "levers_x30": ("0,1,2", LEVERS_X30),
        "learning_rate": (
            "0",
            "joint+intent_weight=0.5+training.optimizer.learn_rate.initial_rate=1e-4,joint+intent_weight=0.5,"
            "joint+intent_weight=0.5+training.optimizer.learn_rate.initial_rate=5e-4,"
            "joint+intent_weight=0.5+training.optimizer.learn_rate.initial_rate=1e-3",
        ),
    },
    "store_lookup_hard": {
        "compare": ("0,1,2", "ner_only,joint+intent_weight=0.5+intent_loss=softmax,alternating,joint+intent_weight=0.1+intent_loss=softmax"),
        "head_lr": HEAD_LR,
        "pooling_first_seed0": ("0", f"{_NER10},{_X10},{_NER10}+{_POOL_FIRST},{_X10}+{_POOL_FIRST}"),
        # The default (heads x30), NER-only at the same rate, the summed sigmoid intent head and
        # softmax_sets over five seeds (the split's seed sd is large).
        "seeds5_x30": ("0,1,2,3,4", INTENT_SETS[1]),
        "intent_loss_x30": INTENT_LOSS_X30,
        "intent_sets": INTENT_SETS,
        "levers_crf": CRF,
        "default": ("0,1,2,3,4", DEFAULT[1]),
    },
    "multidomain": {
        "balance": (  # project.yml, command multidomain-balance
            "0,1,2",
            "ner_only,joint+intent_weight=0.5,joint+intent_weight=0.5+intent_loss=softmax,"
            "joint+intent_weight=0.5+intent_loss=sigmoid_mean,joint+intent_weight=2.0+intent_loss=sigmoid_mean,"
            "joint+intent_weight=0.5+intent_weight_warmup=300,joint+intent_weight=0.5+loss_balance=uncertainty,"
            "joint+intent_weight=0.1+intent_loss=softmax,joint+intent_weight=0.2+intent_loss=softmax,"
            "joint+intent_weight=0.5+intent_loss=softmax+loss_balance=pcgrad",
        ),
        "intent_loss_x30": INTENT_LOSS_X30,
        "head_lr": HEAD_LR,
        "intent_sets": INTENT_SETS,
        "default": DEFAULT,
        # A CRF on the NER head of the shipped default and of NER-only x30 (`project.yml`
        # crf-many-intents), 3 seeds.
        "levers_crf": (
            "0,1,2",
            f"{_NER30},default,{_NER30}+{_CRF},default+{_CRF}",
        ),
    },
}


def reports_for(dataset: str, rows):
    """The registered tables of a dataset, or one `compare` table of every
    variant it has (in the order the variants first appear, all seeds)."""
    if dataset in REPORTS:
        return REPORTS[dataset]
    variants = list(dict.fromkeys(r["variant"] for r in rows if r["dataset"] == dataset))
    seeds = sorted({r["seed"] for r in rows if r["dataset"] == dataset})
    return {"compare": (",".join(map(str, seeds)), ",".join(variants))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--table", type=Path, default=ROOT / "benchmarks" / "results.csv")
    parser.add_argument("--no-tables", action="store_true", help="Write the CSV only")
    parser.add_argument("--quiet", action="store_true", help="Do not print the tables")
    args = parser.parse_args(argv)
    # Paths relative to the repository root, so the CSV's commands read the same everywhere.
    args.results, args.table = (Path(os.path.relpath(p.resolve(), ROOT)) for p in (args.results, args.table))
    os.chdir(ROOT)

    rows = results_table.scan(args.results)
    if not rows:
        print(f"no {args.results}/DATASET/SPEC/seedN/metrics.json found", file=sys.stderr)
        return 1
    results_table.write_csv(rows, args.table)
    datasets = sorted({r["dataset"] for r in rows})
    print(f"{args.table}: {len(rows)} runs ({', '.join(datasets)})")
    if args.no_tables:
        return 0
    try:
        from spacy_multitask_intent.cli.compare import run_compare
    except ImportError:
        from spacy_multitask_intent.compare import run_compare

    for dataset in datasets:
        reports = reports_for(dataset, rows)
        shown = {v for _, variants in reports.values() for v in variants.split(",")}
        extra = sorted({r["variant"] for r in rows if r["dataset"] == dataset} - shown)
        if extra:
            print(f"{dataset}: in {args.table} but in no table (add them to REPORTS): {', '.join(extra)}")
        for report, (seeds, variants) in reports.items():
            out = args.results / dataset
            unused = Path(f"corpus/{dataset}")  # --collect reads no data
            sink = io.StringIO() if args.quiet else sys.stdout
            with contextlib.redirect_stdout(sink):
                run_compare(
                    unused / "train.spacy", unused / "dev.spacy", unused / "test.spacy", out,
                    configs_dir=Path("configs"),
                    variants=[v for v in variants.split(",") if v],
                    seeds=[int(s) for s in seeds.split(",")],
                    report_name=report, collect_only=True, table=args.table,
                )
            print(f"{out / (report + '.md')}: rebuilt from {args.table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
