"""Score trained pipelines on a test set with and without `intent_set_veto`.

Each pipeline gets the table of the labels each intent set takes from TRAIN
(`set_intent_set_labels`, what `nlp.initialize` records for a new pipeline),
then is scored on TEST twice, on the gold tokens: as trained, and with the
veto on. Nothing is saved into the pipelines.

    python benchmarks/intent_set_veto.py TRAIN.spacy TEST.spacy MODEL [MODEL ...] [--out OUT.json]
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed copy

KEYS = ("ents_p", "ents_r", "ents_f", "intent_acc", "frame_acc")


def score(model: str, train: Path, test: Path) -> dict:
    import spacy

    from spacy_multitask_intent.corpus import read_examples

    nlp = spacy.load(model)
    proc = nlp.get_pipe("intent_ner")
    if not proc.uses_intents:
        raise SystemExit(f"{model}: a NER-only pipeline has no trained intents to veto by")
    proc.set_intent_set_labels(read_examples(nlp, train))
    out = {"model": model, "n_intent_sets": len(proc.cfg["intent_set_labels"])}
    for name, veto in (("as_trained", False), ("intent_set_veto", True)):
        proc.cfg["intent_set_veto"] = veto
        scores = nlp.evaluate(read_examples(nlp, test))
        out[name] = {k: scores[k] for k in KEYS}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train", type=Path)
    parser.add_argument("test", type=Path)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = [score(m, args.train, args.test) for m in args.models]
    for r in results:
        a, v = r["as_trained"], r["intent_set_veto"]
        print(
            f"{r['model']}: P {100 * a['ents_p']:.2f} -> {100 * v['ents_p']:.2f}, "
            f"R {100 * a['ents_r']:.2f} -> {100 * v['ents_r']:.2f}, F1 {100 * a['ents_f']:.2f} -> {100 * v['ents_f']:.2f}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
