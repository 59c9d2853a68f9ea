"""Where a pipeline's intent errors fall: queries with one gold intent against
queries with several (ATIS's "atis_airfare#atis_flight" is two).

Each test query is run on its gold tokens, as `evaluate` scores it; its
predicted intents are the component's decision (`IntentNER.decide_intents`:
the saved thresholds, else the head's default). A query is right when the
predicted and gold intent sets are equal, as in intent accuracy.

Usage: python scripts/intent_errors.py TEST.spacy MODEL [MODEL ...] [--json OUT.json] [--show N]

Prints, per model, the queries and errors with one gold intent and with
several, the intent accuracy, and the accuracy the model would have if every
multi-intent query were right; `--show N` lists the first N errors. `--json`
also keeps every wrong query (gold and predicted intents, text).
"""
import argparse
import json
from typing import Dict, Iterable, List, Sequence, Tuple

Pair = Tuple[Sequence[str], Sequence[str]]


def is_wrong(gold: Sequence[str], pred: Sequence[str]) -> bool:
    """True when the predicted intent set is not the gold set."""
    return set(gold) != set(pred)


def tally(pairs: Iterable[Pair]) -> Dict:
    """(gold intents, predicted intents) per query -> counts by gold-set size.

    "single": one gold intent; "multi": two or more; a query with no gold
    intent is counted under "none"."""
    out = {k: {"queries": 0, "errors": 0} for k in ("single", "multi", "none")}
    for gold, pred in pairs:
        kind = "none" if not gold else ("single" if len(set(gold)) == 1 else "multi")
        out[kind]["queries"] += 1
        out[kind]["errors"] += is_wrong(gold, pred)
    n = sum(v["queries"] for v in out.values())
    errors = sum(v["errors"] for v in out.values())
    out["intent_acc"] = (n - errors) / n if n else None
    out["intent_acc_if_multi_right"] = (n - errors + out["multi"]["errors"]) / n if n else None
    return out


def predict(model: str, test: str) -> List[Tuple[List[str], List[str], str]]:
    import spacy

    from spacy_multitask_intent.corpus import read_examples
    from spacy_multitask_intent.scoring import gold_intents

    nlp = spacy.load(model)
    pipe = nlp.get_pipe("intent_ner")
    examples = read_examples(nlp, test)
    rows = []
    for eg, doc in zip(examples, nlp.pipe([eg.predicted for eg in examples])):
        rows.append((sorted(gold_intents(eg.reference.cats)), pipe.decide_intents(doc), eg.reference.text))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("test")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--json", default=None)
    parser.add_argument("--show", type=int, default=0)
    args = parser.parse_args(argv)
    report = {}
    for model in args.models:
        rows = predict(model, args.test)
        if not rows:
            raise SystemExit(f"{args.test}: no queries to score")
        counts = tally((g, p) for g, p, _ in rows)
        wrong = [(g, p, text) for g, p, text in rows if is_wrong(g, p)]
        counts["wrong"] = [{"gold": g, "predicted": p, "text": text} for g, p, text in wrong]
        report[model] = counts
        s, m = counts["single"], counts["multi"]
        print(f"{model}\n  one gold intent: {s['errors']} wrong of {s['queries']}; several: "
              f"{m['errors']} wrong of {m['queries']}; intent accuracy {100 * counts['intent_acc']:.2f} "
              f"({100 * counts['intent_acc_if_multi_right']:.2f} with every multi-intent query right)")
        for gold, pred, text in wrong[: args.show]:
            print(f"    gold {'+'.join(gold) or '-'} predicted {'+'.join(pred) or '-'}: {text}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"test": args.test, "models": report}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
