"""Fetch a benchmark (atis or snips) into assets/: the local copy in
../shared/data when it exists, else the project's declared public URLs."""
import shutil
import subprocess
import sys
from pathlib import Path

SPLITS = ("train", "dev", "test")
FILES = ("seq.in", "seq.out", "label")


def main(name: str, shared: str = "../shared/data", assets: str = "assets") -> None:
    src, dest = Path(shared) / name, Path(assets) / name
    if src.exists():
        for split in SPLITS:
            (dest / split).mkdir(parents=True, exist_ok=True)
            for f in FILES:
                shutil.copyfile(src / split / f, dest / split / f)
        print(f"Copied {name} from {src} to {dest}")
        return
    print(f"{src} not found: fetching {name} from its public URLs (spacy project assets)")
    subprocess.run([sys.executable, "-m", "spacy", "project", "assets"], check=True)
    missing = [str(dest / s / f) for s in SPLITS for f in FILES if not (dest / s / f).exists()]
    if missing:
        sys.exit(f"Missing after fetch: {missing}")


if __name__ == "__main__":
    main(*sys.argv[1:])
