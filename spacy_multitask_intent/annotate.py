"""Offline annotation of query logs: one batch function, a local engine and a
Ray Data engine, with shards that make a killed job resumable.

`annotate_batch(nlp, batch)` is the whole per-row logic: it takes a
`pyarrow.Table` or a `pandas.DataFrame`, keeps every column and adds

- ``entities``: list of {start, end, label, text, confidence},
- ``intents``: the decided intents,
- ``intent_scores``: map label -> score (``doc.cats``),
- ``error``: null, or why the row could not be annotated.

It is built on `records.parse_texts`, so its output equals `nlp.pipe` plus
`records.doc_to_record`. Rows it cannot annotate are kept, with empty
annotations and `error` set:

- null text -> ``"null text"``; a value that is not a string (an int, a list)
  -> ``"text is int, not a string"``;
- a text that is empty or whitespace only -> ``"empty text"`` (records.py gives
  such a text no entities and no intents; the row says why);
- over ``max_bytes`` UTF-8 bytes (1 MB by default) -> ``"text is N bytes, over
  the 1000000-byte limit"``;
- bytes that are not valid UTF-8, or a str holding unpaired surrogates (what
  Python makes of undecodable bytes) -> ``"invalid UTF-8: ..."``;
- a row that arrives with ``error`` already set (the readers below set it for a
  line that is not JSON, say) is passed through unannotated.

The engines cut the input into shards, deterministically: one shard is one
input file's row range ``[start, start + shard_rows)``, and its output file is
named after the file and the start row. A shard's output is written to a
temporary name and renamed, so a file under a final name is complete; a rerun
with ``resume=True`` recomputes only the shards whose output is missing or
does not hold the shard's row count.

Heavy libraries (pyarrow, pandas, ray, tqdm) are imported inside the functions
that need them.
"""
import glob
import hashlib
import json
import math
import os
import re
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

MAX_BYTES = 1_000_000
INPUT_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
FORMATS = ("parquet", "jsonl", "prodigy")
PLAN_FILE = "_annotate_plan.json"
ADDED = ("entities", "intents", "intent_scores", "error")
# Ray: restart a dead actor and retry its batch this many times.
RAY_MAX_RESTARTS = 4
# Ray runs each read and write task in a worker process of its own. Tasks that
# ask for no CPU have no concurrency limit, so Ray Data would start one worker
# process per shard at once (each imports Ray and pyarrow: about a CPU-second),
# and the raylet kills a worker that idles past a second, so they start again
# for the next shards. One read and one write task at a time, in workers kept
# while the job runs, leave the CPUs to the annotating actors.
RAY_IO_CONCURRENCY = 1
RAY_IDLE_WORKER_KEEP_MS = 10 * 60 * 1000
RAY_MAX_TASK_RETRIES = 4
# Fault injection for tests: an actor that finds this file deletes it and dies,
# once (the deletion is the lock), in the middle of its batch.
CRASH_ONCE_ENV = "SPACY_MULTITASK_INTENT_ANNOTATE_CRASH_ONCE"
_SHARD_COL = "__annotate_shard__"
_ROW_COL = "__annotate_row__"


class AnnotateError(ValueError):
    """Bad arguments or input that stop the job before it starts."""


# ---------------------------------------------------------------------------
# the batch function


def _entity_type():
    import pyarrow as pa

    return pa.list_(
        pa.struct(
            [
                ("start", pa.int64()),
                ("end", pa.int64()),
                ("label", pa.string()),
                ("text", pa.string()),
                ("confidence", pa.float64()),
            ]
        )
    )


def output_types() -> Dict[str, Any]:
    """The Arrow types of the added columns."""
    import pyarrow as pa

    return {
        "entities": _entity_type(),
        "intents": pa.list_(pa.string()),
        "intent_scores": pa.map_(pa.string(), pa.float64()),
        "error": pa.string(),
    }


def _is_null(value) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN / NaT / pd.NA-like floats
    except Exception:  # pd.NA raises on bool()
        return value.__class__.__name__ in ("NAType", "NaTType")


def check_text(value, max_bytes: int = MAX_BYTES) -> Tuple[Optional[str], Optional[str]]:
    """(text, None) for an annotatable value, else (None, why)."""
    if _is_null(value):
        return None, "null text"
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"invalid UTF-8: {exc.reason} at byte {exc.start}"
    if not isinstance(value, str):
        return None, f"text is {type(value).__name__}, not a string"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return None, f"invalid UTF-8: undecodable byte at character {exc.start}"
    if size > max_bytes:
        return None, f"text is {size} bytes, over the {max_bytes}-byte limit"
    if not value.strip():
        return None, "empty text"
    return value, None


def _annotate_texts(nlp, texts: Sequence[str], batch_size: int) -> List[Tuple[Optional[dict], Optional[str]]]:
    """parse_texts over texts; a batch that raises is retried text by text so
    that one bad text costs one row, not the batch."""
    from .records import parse_texts

    if not texts:
        return []
    try:
        return [(r, None) for r in parse_texts(nlp, list(texts), batch_size=batch_size)]
    except Exception:
        if len(texts) == 1:
            raise
    out: List[Tuple[Optional[dict], Optional[str]]] = []
    for text in texts:
        try:
            out.append((parse_texts(nlp, [text], batch_size=1)[0], None))
        except Exception as exc:  # the row keeps its reason; the job goes on
            out.append((None, f"annotation failed: {type(exc).__name__}: {exc}"[:500]))
    return out


def annotate_values(
    nlp, values: Sequence[Any], prior_errors: Optional[Sequence[Any]] = None, *, batch_size: int = 256, max_bytes: int = MAX_BYTES
) -> Dict[str, list]:
    """The four added columns, as Python lists, for a sequence of text values."""
    n = len(values)
    errors: List[Optional[str]] = [None] * n
    good_idx, good_texts = [], []
    for i, value in enumerate(values):
        if prior_errors is not None and not _is_null(prior_errors[i]):
            errors[i] = str(prior_errors[i])
            continue
        text, why = check_text(value, max_bytes)
        if why is not None:
            errors[i] = why
        else:
            good_idx.append(i)
            good_texts.append(text)
    entities: List[list] = [[] for _ in range(n)]
    intents: List[list] = [[] for _ in range(n)]
    scores: List[dict] = [{} for _ in range(n)]
    for i, (record, why) in zip(good_idx, _annotate_texts(nlp, good_texts, batch_size)):
        if why is not None:
            errors[i] = why
            continue
        entities[i] = record["entities"]
        intents[i] = record["intents"]
        scores[i] = record["intent_scores"]
    return {"entities": entities, "intents": intents, "intent_scores": scores, "error": errors}


def annotate_batch(nlp, batch, text_column: str = "text", *, batch_size: int = 256, max_bytes: int = MAX_BYTES):
    """Annotate one batch: a pyarrow.Table or a pandas.DataFrame in, the same
    type out, every input column kept and `entities`, `intents`,
    `intent_scores`, `error` added (replacing columns of those names). Pure:
    the input is not modified."""
    type_name = type(batch).__module__.split(".")[0]
    if type_name == "pyarrow":
        import pyarrow as pa

        if text_column not in batch.column_names:
            raise AnnotateError(f"no column {text_column!r} in the batch (columns: {batch.column_names})")
        values = batch.column(text_column).to_pylist()
        prior = batch.column("error").to_pylist() if "error" in batch.column_names else None
        added = annotate_values(nlp, values, prior, batch_size=batch_size, max_bytes=max_bytes)
        types = output_types()
        out = batch.drop_columns([c for c in ADDED if c in batch.column_names])
        for name in ADDED:
            column = added[name]
            if name == "intent_scores":
                column = [list(d.items()) for d in column]
            out = out.append_column(pa.field(name, types[name]), pa.array(column, type=types[name]))
        return out
    if type_name == "pandas":
        if text_column not in batch.columns:
            raise AnnotateError(f"no column {text_column!r} in the batch (columns: {list(batch.columns)})")
        prior = batch["error"].tolist() if "error" in batch.columns else None
        added = annotate_values(nlp, batch[text_column].tolist(), prior, batch_size=batch_size, max_bytes=max_bytes)
        out = batch.drop(columns=[c for c in ADDED if c in batch.columns]).copy()
        import pandas as pd

        for name in ADDED:
            out[name] = pd.Series(added[name], index=out.index, dtype=object)
        return out
    raise TypeError(f"annotate_batch takes a pyarrow.Table or a pandas.DataFrame, not {type(batch).__name__}")


# ---------------------------------------------------------------------------
# input: files, plan, shards


@dataclass
class InputFile:
    path: str
    kind: str  # jsonl | csv | parquet
    key: str  # stable name used in shard file names
    rows: int
    # jsonl only: byte offset of each shard's first line
    offsets: List[int] = field(default_factory=list)


@dataclass
class Shard:
    file: InputFile
    index: int
    start: int
    end: int
    size: int  # shard_rows of the plan

    @property
    def name(self) -> str:
        return f"{self.file.key}-{self.start:012d}"

    @property
    def rows(self) -> int:
        return self.end - self.start


def list_inputs(input_path: str) -> List[Tuple[str, str]]:
    """(path, kind) of the input files: one file, a folder (searched
    recursively) or a glob; sorted, so the plan is deterministic."""
    p = Path(input_path)
    if p.is_file():
        candidates = [p]
    elif p.is_dir():
        candidates = sorted(q for q in p.rglob("*") if q.is_file())
    else:
        candidates = sorted(Path(q) for q in glob.glob(input_path, recursive=True) if Path(q).is_file())
        if not candidates:
            raise AnnotateError(f"{input_path}: no such file, folder or matching glob")
    out = []
    for q in candidates:
        kind = INPUT_SUFFIXES.get(q.suffix.lower())
        if kind is None:
            if p.is_file():
                raise AnnotateError(f"{q}: not a .jsonl, .csv or .parquet file")
            continue
        out.append((str(q.resolve()), kind))
    if not out:
        raise AnnotateError(f"{input_path}: no .jsonl, .csv or .parquet files")
    return sorted(out)


def _file_key(path: str, root: str) -> str:
    rel = os.path.relpath(path, root) if root else os.path.basename(path)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(rel).stem)[:40] or "input"
    return f"{stem}-{hashlib.sha1(rel.encode('utf-8')).hexdigest()[:8]}"


def _count_jsonl(path: str, shard_rows: int) -> Tuple[int, List[int]]:
    """Rows (non-blank lines) of a JSONL file and the byte offset of every
    shard_rows-th row."""
    rows, offsets, pos = 0, [], 0
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                if rows % shard_rows == 0:
                    offsets.append(pos)
                rows += 1
            pos += len(line)
    return rows, offsets


def _count_rows(path: str, kind: str, shard_rows: int) -> Tuple[int, List[int]]:
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows, []
        except Exception as exc:
            raise AnnotateError(f"{path}: not a readable Parquet file ({exc})") from exc
    if kind == "jsonl":
        return _count_jsonl(path, shard_rows)
    import pandas as pd

    try:
        rows = sum(len(c) for c in pd.read_csv(path, dtype=str, chunksize=100_000, encoding_errors="surrogateescape"))
    except Exception as exc:
        raise AnnotateError(f"{path}: not a readable CSV file ({exc})") from exc
    return rows, []


def make_plan(input_path: str, shard_rows: int) -> List[InputFile]:
    files = list_inputs(input_path)
    p = Path(input_path)
    root = str(p.resolve()) if p.is_dir() else os.path.commonpath([os.path.dirname(f) for f, _ in files])
    plan = []
    for path, kind in files:
        rows, offsets = _count_rows(path, kind, shard_rows)
        plan.append(InputFile(path=path, kind=kind, key=_file_key(path, root), rows=rows, offsets=offsets))
    keys = [f.key for f in plan]
    if len(set(keys)) != len(keys):
        raise AnnotateError("two input files map to the same shard name; rename one")
    return plan


def shards_of(plan: Sequence[InputFile], shard_rows: int) -> List[Shard]:
    out = []
    for f in plan:
        for i in range(math.ceil(f.rows / shard_rows)):
            out.append(Shard(f, i, i * shard_rows, min(f.rows, (i + 1) * shard_rows), shard_rows))
    return out


def _fix_strings(value, where: str, errors: List[Optional[str]], row: int):
    """Replace undecodable characters (surrogates) in strings so Arrow can hold
    them, noting the first one in errors[row]."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError as exc:
            if errors[row] is None:
                errors[row] = f"invalid UTF-8 in {where} at character {exc.start}"
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: _fix_strings(v, where, errors, row) for k, v in value.items()}
    if isinstance(value, list):
        return [_fix_strings(v, where, errors, row) for v in value]
    return value


def _rows_to_table(rows: List[dict], errors: List[Optional[str]], text_column: str, where: str, first_row: int = 0):
    """Python rows -> Arrow table. A column whose values Arrow cannot hold in
    one type keeps its strings and gets the others as JSON text; a non-string
    text is noted in `error` (it would not be annotated anyway)."""
    import pyarrow as pa

    names: Dict[str, None] = {}
    for r in rows:
        for k in r:
            names.setdefault(k, None)
    if text_column not in names:
        names[text_column] = None
    columns = {}
    for name in names:
        values = [r.get(name) for r in rows]
        if name == text_column:
            for i, v in enumerate(values):
                if v is not None and not isinstance(v, str) and errors[i] is None:
                    errors[i] = f"{where} row {first_row + i}: text is {type(v).__name__}, not a string"
            if any(v is not None and not isinstance(v, str) for v in values):
                values = [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            columns[name] = pa.array(
                [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str) for v in values],
                type=pa.string(),
            )
    if "error" in columns:
        prior = columns["error"].to_pylist()
        errors = [e if e is not None else (None if _is_null(p) else str(p)) for e, p in zip(errors, prior)]
    columns["error"] = pa.array(errors, type=pa.string())
    return pa.table(columns)


def _read_jsonl_shard(shard: Shard, text_column: str):
    f = shard.file
    rows: List[dict] = []
    errors: List[Optional[str]] = []
    with open(f.path, "rb") as fh:
        fh.seek(f.offsets[shard.index])
        while len(rows) < shard.rows:
            raw = fh.readline()
            if not raw:
                raise AnnotateError(f"{f.path}: ended before row {shard.start + len(rows)}; the file changed since the plan")
            if not raw.strip():
                continue
            i = len(rows)
            errors.append(None)
            where = f"{f.path} row {shard.start + i}"
            text = raw.decode("utf-8", "surrogateescape")
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                errors[i] = f"{where}: invalid JSON ({exc.msg} at column {exc.colno})"
                rows.append({text_column: _fix_strings(text.rstrip("\r\n"), where, [None], 0)})
                continue
            if not isinstance(obj, dict):
                errors[i] = f"{where}: a JSON {type(obj).__name__}, not an object"
                obj = {text_column: obj if isinstance(obj, str) else None}
            rows.append(_fix_strings(obj, where, errors, i))
    return _rows_to_table(rows, errors, text_column, f.path, shard.start)


def _read_csv_shard(shard: Shard, text_column: str):
    """CSV: every value is read as a string (an empty field is null). The file
    is parsed up to the shard's range: convert big CSV files to Parquet."""
    import pandas as pd
    import pyarrow as pa

    f = shard.file
    chunk = None
    for i, c in enumerate(pd.read_csv(f.path, dtype=str, chunksize=shard.size, encoding_errors="surrogateescape")):
        if i == shard.index:
            chunk = c
            break
    if chunk is None or len(chunk) != shard.rows:
        raise AnnotateError(f"{f.path}: rows {shard.start}-{shard.end} not found; the file changed since the plan")
    rows = [{k: (None if _is_null(v) else v) for k, v in r.items()} for r in chunk.to_dict("records")]
    errors: List[Optional[str]] = [None] * len(rows)
    rows = [_fix_strings(r, f"{f.path} row {shard.start + i}", errors, i) for i, r in enumerate(rows)]
    table = _rows_to_table(rows, errors, text_column, f.path, shard.start)
    return table.cast(pa.schema([pa.field(n, pa.string()) for n in table.column_names]))


def _read_parquet_shard(shard: Shard):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(shard.file.path)
    pieces, pos = [], 0
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        lo, hi = max(shard.start, pos), min(shard.end, pos + n)
        if lo < hi:
            pieces.append(pf.read_row_group(g).slice(lo - pos, hi - lo))
        pos += n
    table = pa.concat_tables(pieces) if pieces else pf.schema_arrow.empty_table()
    if table.num_rows != shard.rows:
        raise AnnotateError(f"{shard.file.path}: rows {shard.start}-{shard.end} not found; the file changed since the plan")
    return table


def read_shard(shard: Shard, text_column: str, id_column: Optional[str]):
    """One shard's rows as an Arrow table, with the id column added when the
    input has none (``<file name>:<row>``)."""
    import pyarrow as pa

    kind = shard.file.kind
    if kind == "jsonl":
        table = _read_jsonl_shard(shard, text_column)
    elif kind == "csv":
        table = _read_csv_shard(shard, text_column)
    else:
        table = _read_parquet_shard(shard)
        if text_column not in table.column_names:
            raise AnnotateError(f"{shard.file.path}: no column {text_column!r} (columns: {table.column_names})")
    if id_column and id_column not in table.column_names:
        base = os.path.basename(shard.file.path)
        ids = [f"{base}:{shard.start + i}" for i in range(table.num_rows)]
        table = table.add_column(0, id_column, pa.array(ids, type=pa.string()))
    return table


# ---------------------------------------------------------------------------
# output: one file per shard, written atomically


def shard_path(output: str, shard_name: str, fmt: str) -> str:
    return os.path.join(output, f"part-{shard_name}.{'parquet' if fmt == 'parquet' else 'jsonl'}")


def _jsonable(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _table_rows(table) -> List[dict]:
    rows = table.to_pylist()
    if "intent_scores" in table.column_names:
        for r in rows:
            if isinstance(r.get("intent_scores"), list):
                r["intent_scores"] = dict(r["intent_scores"])
    return rows


def _prodigy_task(row: dict, text_column: str) -> dict:
    from .records import record_to_prodigy

    text = row.get(text_column)
    record = {
        "text": text if isinstance(text, str) else _jsonable(text) if text is not None else "",
        "entities": row["entities"],
        "intents": row["intents"],
        "intent_scores": row["intent_scores"],
    }
    task = record_to_prodigy(record)
    for k, v in row.items():
        if k not in ("entities", "intents", "intent_scores", text_column):
            task["meta"][k] = v
    return task


def write_shard(table, path: str, fmt: str, text_column: str = "text") -> None:
    """Write one shard's table to `path` atomically (temporary file + rename)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                for row in _table_rows(table):
                    if fmt == "prodigy":
                        row = _prodigy_task(row, text_column)
                    f.write(json.dumps(row, ensure_ascii=False, default=_jsonable) + "\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def shard_done(path: str, rows: int, fmt: str) -> bool:
    """A shard is done when its file exists and holds exactly its rows."""
    if not os.path.exists(path):
        return False
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows == rows
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        else:
            return False  # no final newline: cut short
        return len(lines) == rows
    except Exception:
        return False


# ---------------------------------------------------------------------------
# the job


@dataclass
class JobResult:
    output: str
    rows: int
    shards: int
    computed_shards: List[str]
    skipped_shards: int
    errors: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else float("nan")


def _prepare_output(output: str, plan: List[InputFile], settings: dict, resume: bool) -> None:
    os.makedirs(output, exist_ok=True)
    plan_path = os.path.join(output, PLAN_FILE)
    current = {"settings": settings, "files": [asdict(f) for f in plan]}
    if os.path.exists(plan_path):
        if not resume:
            raise AnnotateError(f"{output} already holds an annotate job; pass --resume to finish it, or choose an empty folder")
        with open(plan_path, encoding="utf-8") as f:
            previous = json.load(f)
        if previous != current:
            raise AnnotateError(
                f"{output}: the input files or settings differ from the job that wrote it "
                "(files, their row counts, text/id column, shard size, format); choose a new folder"
            )
    else:
        others = [n for n in os.listdir(output) if not n.startswith(".")]
        if others:
            raise AnnotateError(f"{output} is not empty and holds no annotate plan; choose an empty folder")
        tmp = plan_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(current, f, indent=1)
        os.replace(tmp, plan_path)
    for name in os.listdir(output):  # leftovers of a killed writer
        if ".tmp-" in name:
            os.remove(os.path.join(output, name))


def _set_threads(threads: Optional[int]) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _load(model: str):
    import spacy

    import spacy_multitask_intent  # noqa: F401  registrations

    return spacy.load(model)


def run(
    model: str,
    input_path: str,
    output: str,
    *,
    text_column: str = "text",
    id_column: Optional[str] = "id",
    engine: str = "local",
    address: Optional[str] = None,
    workers: int = 1,
    batch_size: int = 256,
    shard_rows: int = 10_000,
    resume: bool = False,
    fmt: str = "parquet",
    threads: Optional[int] = None,
    max_bytes: int = MAX_BYTES,
    progress: bool = True,
) -> JobResult:
    """Annotate INPUT into OUTPUT (one file per shard); see the module docstring."""
    if fmt not in FORMATS:
        raise AnnotateError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if engine not in ("local", "ray"):
        raise AnnotateError(f"--engine must be local or ray, not {engine!r}")
    if shard_rows < 1 or batch_size < 1 or workers < 1:
        raise AnnotateError("--shard-rows, --batch-size and --workers must be at least 1")
    if not Path(model).exists():
        raise AnnotateError(f"{model}: no such pipeline folder")
    t0 = time.perf_counter()
    plan = make_plan(input_path, shard_rows)
    settings = {"text_column": text_column, "id_column": id_column, "shard_rows": shard_rows, "format": fmt}
    _prepare_output(output, plan, settings, resume)
    shards = shards_of(plan, shard_rows)
    todo = [s for s in shards if not shard_done(shard_path(output, s.name, fmt), s.rows, fmt)]
    for s in todo:  # a cut-short file under a final name (copied, not renamed here)
        p = shard_path(output, s.name, fmt)
        if os.path.exists(p):
            os.remove(p)
    args = dict(text_column=text_column, id_column=id_column, batch_size=batch_size, fmt=fmt, max_bytes=max_bytes)
    if todo:
        if engine == "local":
            _run_local(model, todo, output, threads=threads, progress=progress, **args)
        else:
            _run_ray(model, todo, output, address=address, workers=workers, threads=threads or 1, **args)
    total = sum(s.rows for s in shards)
    missing = [s.name for s in shards if not shard_done(shard_path(output, s.name, fmt), s.rows, fmt)]
    if missing:
        raise RuntimeError(f"{len(missing)} shard(s) not written: {', '.join(missing[:5])}")
    return JobResult(
        output=output,
        rows=total,
        shards=len(shards),
        computed_shards=[s.name for s in todo],
        skipped_shards=len(shards) - len(todo),
        errors=_count_errors(output, [s for s in todo], fmt),
        seconds=time.perf_counter() - t0,
    )


def _count_errors(output: str, shards: Sequence[Shard], fmt: str) -> int:
    n = 0
    for s in shards:
        p = shard_path(output, s.name, fmt)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            col = pq.read_table(p, columns=["error"]).column("error")
            n += len(col) - col.null_count
        else:
            with open(p, encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    n += bool(row.get("error") or row.get("meta", {}).get("error"))
    return n


def _run_local(model, shards, output, *, text_column, id_column, batch_size, fmt, max_bytes, threads, progress):
    import pyarrow as pa
    from tqdm import tqdm

    _set_threads(threads)
    nlp = _load(model)
    bar = tqdm(total=sum(s.rows for s in shards), unit="rows", disable=not progress, dynamic_ncols=True)
    try:
        for shard in shards:
            table = read_shard(shard, text_column, id_column)
            parts = []
            for lo in range(0, table.num_rows, batch_size):
                piece = table.slice(lo, batch_size)
                parts.append(annotate_batch(nlp, piece, text_column, batch_size=batch_size, max_bytes=max_bytes))
                bar.update(piece.num_rows)
            out = pa.concat_tables(parts) if parts else annotate_batch(nlp, table, text_column)
            write_shard(out, shard_path(output, shard.name, fmt), fmt, text_column)
    finally:
        bar.close()


# ---------------------------------------------------------------------------
# Ray Data engine


class RayAnnotator:
    """The map_batches callable class: each actor loads the pipeline once,
    from disk, in __init__ (a spaCy Language is never shipped through the
    object store), on `threads` torch threads."""

    def __init__(self, model: str, text_column: str, batch_size: int, max_bytes: int, threads: int = 1):
        _set_threads(threads)
        self.nlp = _load(model)
        self.text_column = text_column
        self.batch_size = batch_size
        self.max_bytes = max_bytes

    def __call__(self, batch):
        flag = os.environ.get(CRASH_ONCE_ENV)
        if flag:
            try:
                os.remove(flag)  # only the actor that removes it dies
                os._exit(1)
            except FileNotFoundError:
                pass
        return annotate_batch(self.nlp, batch, self.text_column, batch_size=self.batch_size, max_bytes=self.max_bytes)


def _shard_datasource(shards: Sequence[Shard], text_column: str, id_column: Optional[str]):
    import pyarrow as pa
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    def reader(shard: Shard):
        def read():
            table = read_shard(shard, text_column, id_column)
            table = table.append_column(_SHARD_COL, pa.array([shard.name] * table.num_rows, type=pa.string()))
            table = table.append_column(_ROW_COL, pa.array(range(shard.start, shard.end), type=pa.int64()))
            return [table]

        return read

    class ShardDatasource(Datasource):
        """One read task per shard (input file + row range), read on the workers."""

        def estimate_inmemory_data_size(self):
            return None

        def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
            return [
                ReadTask(reader(s), BlockMetadata(num_rows=s.rows, size_bytes=None, exec_stats=None, input_files=[s.file.path]))
                for s in shards
            ]

        def get_name(self):
            return "AnnotateShards"

    return ShardDatasource()


def _shard_datasink(output: str, expected: Dict[str, Tuple[int, int]], fmt: str, text_column: str):
    import pyarrow as pa
    import pyarrow.compute as pc
    from ray.data.datasource import Datasink

    class ShardDatasink(Datasink):
        """Groups rows by shard and writes each shard's file atomically with
        the same writer as the local engine."""

        def write(self, blocks, ctx):
            tables = [pa.Table.from_pandas(b) if not isinstance(b, pa.Table) else b for b in blocks]
            tables = [t for t in tables if t.num_rows]
            if not tables:
                return []
            table = pa.concat_tables(tables, promote_options="permissive")
            written = []
            for name in pc.unique(table.column(_SHARD_COL)).to_pylist():
                part = table.filter(pc.equal(table.column(_SHARD_COL), name))
                part = part.sort_by(_ROW_COL)
                start, end = expected[name]
                rows = part.column(_ROW_COL).to_pylist()
                if rows != list(range(start, end)):
                    raise RuntimeError(f"shard {name}: got {len(rows)} rows of {end - start} in one write task")
                part = part.drop_columns([_SHARD_COL, _ROW_COL])
                write_shard(part, shard_path(output, name, fmt), fmt, text_column)
                written.append(name)
            return written

    return ShardDatasink()


def init_local_ray(**kwargs) -> None:
    """Start a local Ray cluster as the Ray engine does: no dashboard, and
    idle workers kept while the job runs (see RAY_IO_CONCURRENCY)."""
    import ray

    config = {"idle_worker_killing_time_threshold_ms": RAY_IDLE_WORKER_KEEP_MS}
    ray.init(include_dashboard=False, log_to_driver=False, _system_config=config, **kwargs)


def _run_ray(model, shards, output, *, address, workers, threads, text_column, id_column, batch_size, fmt, max_bytes):
    import ray

    model = str(Path(model).resolve())
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            init_local_ray()
        started = True
    try:
        # Reading and writing a shard cost little next to annotating it: their
        # tasks ask for no CPU, so N actors on N CPUs do not starve them. One
        # block per shard (no splitting), so a shard is retried and written whole.
        ds = ray.data.read_datasource(
            _shard_datasource(shards, text_column, id_column),
            num_cpus=0,
            override_num_blocks=len(shards),
            concurrency=RAY_IO_CONCURRENCY,
        )
        map_args = dict(
            fn_constructor_kwargs=dict(model=model, text_column=text_column, batch_size=batch_size, max_bytes=max_bytes, threads=threads),
            compute=ray.data.ActorPoolStrategy(size=workers),  # a fixed pool: one pipeline per actor
            num_cpus=threads,
            batch_size=None,  # one shard per call: a shard is the unit of retry
            batch_format="pyarrow",
        )
        # An actor that dies is restarted and its batch retried. Ray Data's
        # default is to do so without limit; bound it, so that a text that kills
        # its actor every time fails the job instead of looping. Ray 2.60 takes
        # these as (deprecated) extra remote args.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            try:
                ds = ds.map_batches(RayAnnotator, max_restarts=RAY_MAX_RESTARTS, max_task_retries=RAY_MAX_TASK_RETRIES, **map_args)
            except TypeError:  # a Ray that no longer takes them: its unbounded default
                ds = ds.map_batches(RayAnnotator, **map_args)
        expected = {s.name: (s.start, s.end) for s in shards}
        ds.write_datasink(
            _shard_datasink(output, expected, fmt, text_column), ray_remote_args={"num_cpus": 0}, concurrency=RAY_IO_CONCURRENCY
        )
    finally:
        if started:
            ray.shutdown()


def read_output(output: str):
    """The annotated rows of OUTPUT as one Arrow table (Parquet) or a list of
    dicts (JSONL / Prodigy), in shard order."""
    names = sorted(n for n in os.listdir(output) if n.startswith("part-") and ".tmp-" not in n)
    if names and names[0].endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pa.concat_tables([pq.read_table(os.path.join(output, n)) for n in names], promote_options="permissive")
    rows = []
    for n in names:
        with open(os.path.join(output, n), encoding="utf-8") as f:
            rows.extend(json.loads(line) for line in f)
    return rows
