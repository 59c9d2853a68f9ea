"""Score trained pipelines on a test set with and without `intent_set_veto`.

Each pipeline gets the table of the labels each intent set takes from TRAIN
(`set_intent_set_labels`, what `nlp.initialize` records for a new pipeline),
then is scored on TEST twice, on the gold tokens: as trained, and with the
veto on. Nothing is saved into the pipelines. `--min-expected 1,3` scores it
also with `intent_set_veto_min_expected` at each value (the veto then drops a
label unseen with the set only where independence would have shown them
together that many times in TRAIN).

    python benchmarks/intent_set_veto.py TRAIN.spacy TEST.spacy MODEL [MODEL ...] [--min-expected 1,3] [--out OUT.json]
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed copy

KEYS = ("ents_p", "ents_r", "ents_f", "intent_acc", "frame_acc")


def score(model: str, train: Path, test: Path, min_expected=(), batch_size: int = 256) -> dict:
    import spacy

    from spacy_multitask_intent.corpus import read_examples

    nlp = spacy.load(model)
    proc = nlp.get_pipe("intent_ner")
    if not proc.uses_intents:
        raise SystemExit(f"{model}: a NER-only pipeline has no trained intents to veto by")
    proc.set_intent_set_labels(read_examples(nlp, train))
    out = {"model": model, "n_intent_sets": len(proc.cfg["intent_set_labels"])}
    runs = [("as_trained", False, 0.0), ("intent_set_veto", True, 0.0)]
    runs += [(f"min_expected={m:g}", True, m) for m in min_expected]
    for name, veto, m in runs:
        proc.cfg["intent_set_veto"] = veto
        proc.cfg["intent_set_veto_min_expected"] = m
        # at compare's evaluation batch size, as its metrics.json were scored
        scores = nlp.evaluate(read_examples(nlp, test), batch_size=batch_size)
        out[name] = {k: scores[k] for k in KEYS}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train", type=Path)
    parser.add_argument("test", type=Path)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--min-expected", default="", help="Comma-separated values of intent_set_veto_min_expected")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    min_expected = [float(v) for v in args.min_expected.split(",") if v]
    results = [score(m, args.train, args.test, min_expected, args.batch_size) for m in args.models]
    for r in results:
        a, v = r["as_trained"], r["intent_set_veto"]
        print(
            f"{r['model']}: P {100 * a['ents_p']:.2f} -> {100 * v['ents_p']:.2f}, "
            f"R {100 * a['ents_r']:.2f} -> {100 * v['ents_r']:.2f}, F1 {100 * a['ents_f']:.2f} -> {100 * v['ents_f']:.2f}"
        )
        for name in (n for n in r if n.startswith("min_expected=")):
            m = r[name]
            print(f"  {name}: P {100 * m['ents_p']:.2f} R {100 * m['ents_r']:.2f} F1 {100 * m['ents_f']:.2f} frame {100 * m['frame_acc']:.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
