"""Merge JointBERT-layout benchmarks into one multi-domain set with many intents.

    python scripts/merge_domains.py assets/multidomain assets/atis assets/snips

Each source folder holds train/, dev/ and test/ with seq.in, seq.out and label.
Every intent is prefixed with its source's name unless it already starts with
it (ATIS's `atis_flight` stays, SNIPS's `PlayMusic` becomes `snips_PlayMusic`);
multi-intent labels (`a#b`) are prefixed part by part. Entity types are kept as
they are. The queries of each split are the sources' queries in order, source
by source, so the merge is deterministic and every line keeps its three files
aligned.
"""
import sys
from pathlib import Path

SPLITS = ("train", "dev", "test")


def prefixed(label: str, domain: str) -> str:
    return "#".join(p if p.startswith(f"{domain}_") else f"{domain}_{p}" for p in label.split("#"))


def read_split(folder: Path):
    lines = {}
    for name in ("seq.in", "seq.out", "label"):
        path = folder / name
        if not path.is_file():
            sys.exit(f"{path}: missing; a source folder needs train/, dev/ and test/ with seq.in, seq.out and label")
        lines[name] = path.read_text(encoding="utf8").splitlines()
    counts = {name: len(v) for name, v in lines.items()}
    if len(set(counts.values())) != 1:
        sys.exit(f"{folder}: seq.in, seq.out and label have different line counts {counts}")
    return lines


def merge(output: Path, sources) -> None:
    for split in SPLITS:
        merged = {"seq.in": [], "seq.out": [], "label": []}
        for source in sources:
            source = Path(source)
            lines = read_split(source / split)
            merged["seq.in"] += lines["seq.in"]
            merged["seq.out"] += lines["seq.out"]
            merged["label"] += [prefixed(l.strip(), source.name) for l in lines["label"]]
        (output / split).mkdir(parents=True, exist_ok=True)
        for name, rows in merged.items():
            (output / split / name).write_text("\n".join(rows) + "\n", encoding="utf8")
        intents = {p for l in merged["label"] for p in l.split("#")}
        print(f"{output / split}: {len(merged['label'])} queries, {len(intents)} intents")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    merge(Path(sys.argv[1]), sys.argv[2:])
