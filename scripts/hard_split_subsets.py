"""Entity scores of the runs on the hard store-lookup split, by kind of test query.

    python scripts/hard_split_subsets.py benchmarks/results/store_lookup_hard \
        assets/store_lookup_hard/test.jsonl --data-seed 0 --output docs/store_lookup_hard_subsets.md

For every RESULTS/VARIANT/seedN/model-best, parses the raw test texts and scores
the predicted entities (exact character spans and label) on:
  - unseen store: queries whose gold STOREs include a name held out of train;
  - seen store: queries whose gold STOREs are all names seen in train;
  - unseen phrasing: single-intent queries that fit only a held-out template;
  - STORE FP outside store_lookup: STORE spans predicted in queries without the
    store_lookup intent (the intent-dependent error the multitask model should cut).
Mean ± sd over seeds per variant.
"""
import argparse
import re
import statistics
from pathlib import Path
from typing import Dict, List, Set, Tuple

import srsly

from spacy_multitask_intent.data.generate import (
    HARD_TEMPLATES,
    PREFIXES,
    SUFFIXES,
    held_out_stores,
    held_out_templates,
)

Span = Tuple[int, int, str]


def template_re(template: str) -> "re.Pattern":
    """A template as a regex on lowercased text (any slot filling, prefix, suffix)."""
    prefixes = "|".join(re.escape(p) for p, _ in PREFIXES if p)
    suffixes = "|".join(re.escape(s) for s, _ in SUFFIXES if s)
    body = ".+?".join(re.escape(part) for part in re.split(r"\{\w+\}", template))
    return re.compile(rf"^(?:{prefixes})?{body}(?:{suffixes})?$")


def subsets(records: List[dict], data_seed: int) -> Dict[str, List[int]]:
    held = set(held_out_stores(data_seed))
    held_t = held_out_templates(data_seed)
    held_res = {i: [template_re(t) for t in held_t[i]] for i in held_t}
    seen_res = {i: [template_re(t) for t in HARD_TEMPLATES[i] if t not in held_t[i]] for i in held_t}
    out: Dict[str, List[int]] = {"all": [], "unseen store": [], "seen store": [], "unseen phrasing": []}
    for k, r in enumerate(records):
        out["all"].append(k)
        stores = [r["text"][s["start"]:s["end"]].lower() for s in r["spans"] if s["label"] == "STORE"]
        if stores:
            out["unseen store" if any(s in held for s in stores) else "seen store"].append(k)
        if len(r["intents"]) == 1:
            text, intent = r["text"].lower(), r["intents"][0]
            if any(x.match(text) for x in held_res[intent]) and not any(x.match(text) for x in seen_res[intent]):
                out["unseen phrasing"].append(k)
    return out


def prf(gold: List[Set[Span]], pred: List[Set[Span]], idx: List[int]) -> Tuple[float, float, float]:
    tp = sum(len(gold[k] & pred[k]) for k in idx)
    n_pred = sum(len(pred[k]) for k in idx)
    n_gold = sum(len(gold[k]) for k in idx)
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def score_model(model: Path, records: List[dict], groups: Dict[str, List[int]]) -> Dict[str, float]:
    import spacy

    nlp = spacy.load(model)
    gold = [{(s["start"], s["end"], s["label"]) for s in r["spans"]} for r in records]
    pred = [{(e.start_char, e.end_char, e.label_) for e in d.ents} for d in nlp.pipe(r["text"] for r in records)]
    row: Dict[str, float] = {}
    for name, idx in groups.items():
        p, r, f = prf(gold, pred, idx)
        row[f"{name} P"], row[f"{name} F1"] = 100 * p, 100 * f
    non_store = [k for k, rec in enumerate(records) if "store_lookup" not in rec["intents"]]
    row["STORE FP outside store_lookup"] = sum(
        1 for k in non_store for s in pred[k] - gold[k] if s[2] == "STORE"
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path)
    ap.add_argument("test_jsonl", type=Path)
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--variants", default="ner_only,default,alternating")
    ap.add_argument("--output", type=Path)
    args = ap.parse_args()
    records = list(srsly.read_jsonl(args.test_jsonl))
    groups = subsets(records, args.data_seed)
    non_store = sum("store_lookup" not in r["intents"] for r in records)
    lines = [
        f"Test queries: {len(records)}; unseen store {len(groups['unseen store'])}, "
        f"seen store {len(groups['seen store'])}, unseen phrasing {len(groups['unseen phrasing'])}, "
        f"without store_lookup {non_store}.",
        "",
    ]
    table: Dict[str, List[Dict[str, float]]] = {}
    for variant in args.variants.split(","):
        for model in sorted((args.results / variant).glob("seed*/model-best")):
            table.setdefault(variant, []).append(score_model(model, records, groups))
    if not table:
        raise SystemExit(f"no RESULTS/VARIANT/seedN/model-best under {args.results}")
    cols = list(next(iter(table.values()))[0])
    lines.append("| config | " + " | ".join(cols) + " | seeds |")
    lines.append("|---|" + "---:|" * (len(cols) + 1))
    for variant, rows in table.items():
        cells = []
        for c in cols:
            vals = [r[c] for r in rows]
            sd = f" ± {statistics.stdev(vals):.2f}" if len(vals) > 1 else ""
            cells.append(f"{statistics.mean(vals):.2f}{sd}")
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {len(rows)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
