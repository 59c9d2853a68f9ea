"""RSS over a long nlp.pipe stream: does memory stay flat?

python benchmarks/rss.py MODEL DATA.spacy --n 100000 [--chunk 10000]

Queries are the corpus texts, cycled. Each chunk runs inside
`nlp.memory_zone()`, as a long-running service would; RSS (VmRSS) is
printed after every chunk and written as JSON.
"""
import argparse
import itertools
import json
import time

import spacy
from spacy.tokens import DocBin


def vmrss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    nlp = spacy.load(args.model)
    texts = [d.text for d in DocBin().from_disk(args.data).get_docs(nlp.vocab)]
    stream = itertools.cycle(texts)
    rows = [{"queries": 0, "vmrss_mib": vmrss_mib()}]
    start = time.perf_counter()
    done = 0
    while done < args.n:
        n = min(args.chunk, args.n - done)
        with nlp.memory_zone():
            for doc in nlp.pipe(itertools.islice(stream, n), batch_size=args.batch_size):
                assert doc._.intent_scores is None or len(doc._.intent_scores) == len(doc)
        done += n
        rows.append({"queries": done, "vmrss_mib": vmrss_mib(), "seconds": time.perf_counter() - start})
        print(json.dumps(rows[-1]), flush=True)
    first = next(r for r in rows if r["queries"] >= min(10_000, args.n))
    ratio = rows[-1]["vmrss_mib"] / first["vmrss_mib"]
    summary = {"rows": rows, "ratio_last_vs_10k": ratio, "flat_within_5pct": abs(ratio - 1) <= 0.05}
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
