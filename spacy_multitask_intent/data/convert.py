"""Convert intent + entity datasets into spaCy ``DocBin`` (.spacy) files.

Supported input formats
-----------------------
``bio``
    A folder with three line-aligned files: ``seq.in`` (whitespace-tokenised
    words), ``seq.out`` (one BIO tag per word) and ``label`` (the intent;
    several intents are joined with ``#``, e.g. ``atis_airfare#atis_flight``).
``jsonl``
    One JSON object per line: ``{"text": ..., "spans": [{"start": 0, "end": 5,
    "label": "STORE"}], "intents": ["store_lookup"]}`` with character offsets.
``brackets``
    MASSIVE-style JSONL: ``{"annot_utt": "wake me up at [time : five am]",
    "intent": "alarm_set"}``.
``rasa``
    Rasa 3.x NLU YAML (``nlu:`` / ``- intent:`` / ``examples: |``), one or
    several files or a ``data/`` folder; see :mod:`.rasa`.
``prodigy``
    Prodigy JSONL (``spans``, ``accept`` / ``label`` + ``answer``), one or
    several files merged by ``_input_hash``; see :mod:`.prodigy`.

Conventions
-----------
* ``doc.ents`` holds the gold entities.
* ``doc.cats`` holds *every* known intent label (the union of the train
  split's labels, when given, and the input's own labels): 1.0 for the doc's
  intents and 0.0 for all the others (``textcat_multilabel`` treats absent keys
  as missing values, not as negatives).

Bad input raises :class:`DataError` naming ``file:line``; nothing is dropped
silently. Stray ``I-`` tags in BIO data are repaired to ``B-`` and counted.
"""
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab
from wasabi import msg

FORMATS = ("bio", "jsonl", "brackets", "rasa", "prodigy")
MULTI_INPUT_FORMATS = ("rasa", "prodigy")  # several inputs are read and merged
MAX_LOCATIONS_SHOWN = 5
_TAG_RE = re.compile(r"^(O|([BI])-(\S+))$")


class DataError(ValueError):
    """Invalid input data. The message names ``file:line`` and what to fix."""

    def __init__(self, path: Union[str, Path], line: int, message: str) -> None:
        self.path = str(path)
        self.line = line
        super().__init__(f"{self.path}:{line}: {message}")


@dataclass
class ConvertStats:
    """Summary of one conversion (counts are for the converted input only)."""

    n_docs: int = 0
    n_ents: int = 0
    intent_counts: Dict[str, int] = field(default_factory=dict)
    entity_counts: Dict[str, int] = field(default_factory=dict)
    n_multi_intent: int = 0
    n_no_intent: int = 0
    repaired_tags: int = 0
    repaired_locations: List[str] = field(default_factory=list)
    labels: List[str] = field(default_factory=list)  # complete cats label set
    unseen_intents: Dict[str, int] = field(default_factory=dict)
    unseen_entity_types: Dict[str, int] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)  # input deliberately not converted, counted
    skipped: Dict[str, int] = field(default_factory=dict)  # what was not converted -> how many
    # per doc: (where its intents come from, where its entities come from), "file:line"
    doc_locations: List[Tuple[str, str]] = field(default_factory=list)

    @property
    def n_intents(self) -> int:
        return len(self.intent_counts)


# ---------------------------------------------------------------------------
# helpers


_BLANK_NLP: Optional[Language] = None


def _blank_nlp() -> Language:
    global _BLANK_NLP
    if _BLANK_NLP is None:
        import spacy

        _BLANK_NLP = spacy.blank("en")
    return _BLANK_NLP


def _input_files(
    paths: Sequence[Union[str, Path]], is_input: Callable[[Path], bool], none_found: str, recursive: bool = False
) -> List[Tuple[Path, bool]]:
    """(file, explicit) pairs for input paths: a folder expands to its files
    that `is_input` accepts, sorted (below it too when `recursive`), and one
    with none raises DataError(`none_found`); a named file must exist."""
    files: List[Tuple[Path, bool]] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in (p.rglob("*") if recursive else p.glob("*")) if f.is_file() and is_input(f))
            if not found:
                raise DataError(p, 0, none_found)
            files.extend((f, False) for f in found)
        elif p.exists():
            files.append((p, True))
        else:
            raise DataError(p, 0, "file not found. Check the input path.")
    return files


def _read_text(path: Path) -> str:
    """A UTF-8 text file's contents, a leading byte-order mark dropped; a
    missing file or bytes that are not UTF-8 raise DataError with the line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, 0, "file not found. Check the input path.")
    try:
        text = path.read_text(encoding="utf8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise DataError(path, line, f"not valid UTF-8 ({err.reason}). Re-encode the file as UTF-8.")
    return text[1:] if text.startswith("\ufeff") else text


def _read_lines(path: Path) -> List[str]:
    """Read a text file as lines; blank lines raise DataError (never skipped).

    A single trailing newline at the end of the file is allowed.
    """
    lines = _read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    if not lines:
        raise DataError(path, 1, "file is empty. Provide at least one example.")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            raise DataError(
                path, i, "blank line. Remove it (and the matching line in aligned files) "
                "or fill in the example; blank lines are not skipped."
            )
    return lines


def _split_intents(raw: str, path: Path, line: int) -> List[str]:
    parts = [p.strip() for p in raw.strip().split("#")]
    if any(not p for p in parts):
        raise DataError(
            path, line, f"empty intent in label {raw!r}. Join several intents as 'a#b' with no empty parts."
        )
    return list(dict.fromkeys(parts))


def _progress(log_every: int, path: Path, i: int) -> None:
    if log_every and i % log_every == 0:
        msg.text(f"... {path}: {i} lines", show=True)


def _finish(
    records: List[Tuple[Doc, List[str]]],
    intent_labels: Optional[Iterable[str]],
    stats: ConvertStats,
    locations: Optional[Sequence[Union[str, Tuple[str, str]]]] = None,
) -> List[Doc]:
    """Set complete cats on every doc and update the stats.

    ``locations`` (one ``"file:line"``, or an (intents, entities) pair, per
    record) say where each doc came from, for the unseen-label report.
    """
    if locations is not None:
        stats.doc_locations.extend((loc, loc) if isinstance(loc, str) else tuple(loc) for loc in locations)
    labels = set(intent_labels or [])
    for _, intents in records:
        labels.update(intents)
    ordered = sorted(labels)
    intent_counts: Counter = Counter(stats.intent_counts)
    entity_counts: Counter = Counter(stats.entity_counts)
    docs = []
    for doc, intents in records:
        own = set(intents)
        doc.cats = {label: (1.0 if label in own else 0.0) for label in ordered}
        intent_counts.update(intents)
        entity_counts.update(ent.label_ for ent in doc.ents)
        stats.n_ents += len(doc.ents)
        if len(intents) > 1:
            stats.n_multi_intent += 1
        if not intents:
            stats.n_no_intent += 1
        docs.append(doc)
    stats.n_docs += len(docs)
    stats.intent_counts = dict(sorted(intent_counts.items()))
    stats.entity_counts = dict(sorted(entity_counts.items()))
    stats.labels = sorted(set(stats.labels) | labels)
    return docs


def _overlap_error(
    text: str, prev: Tuple[int, int, str], cur: Tuple[int, int, str], path: Union[str, Path], line: int,
    where: str = "",
) -> DataError:
    (p0, p1, plab), (start, end, label) = prev, cur
    return DataError(
        path, line,
        f"overlapping spans {text[p0:p1]!r} [{p0}:{p1}] ({plab}){where} and "
        f"{text[start:end]!r} [{start}:{end}] ({label}). Entities may not overlap; keep one of them.",
    )


def _char_span(doc: Doc, start: int, end: int, label: str, path: Union[str, Path], line: int) -> Span:
    """``doc.char_span`` in strict mode, or a DataError saying which token it cuts."""
    span = doc.char_span(start, end, label=label, alignment_mode="strict")
    if span is None:
        text = doc.text
        tokens = " | ".join(t.text for t in doc)
        raise DataError(
            path, line,
            f"span {text[start:end]!r} [{start}:{end}] ({label}) does not align with token "
            f"boundaries (tokens: {tokens}). Fix the offsets so the span starts and ends on "
            "token boundaries (no leading/trailing whitespace, no partial words).",
        )
    return span


def _set_ents(
    doc: Doc, spans: List[Tuple[int, int, str]], text: str, path: Path, line: int
) -> None:
    """Attach character-offset spans as entities, strictly aligned, no overlaps."""
    ents = []
    prev: Optional[Tuple[int, int, str]] = None
    for start, end, label in sorted(spans, key=lambda s: (s[0], s[1])):
        if prev is not None and start < prev[1]:
            raise _overlap_error(text, prev, (start, end, label), path, line)
        ents.append(_char_span(doc, start, end, label, path, line))
        prev = (start, end, label)
    doc.ents = ents


def _warn_repairs(stats: ConvertStats, n_before: int, path_hint: str) -> None:
    n = stats.repaired_tags - n_before
    if n:
        locs = stats.repaired_locations[n_before: n_before + MAX_LOCATIONS_SHOWN]
        more = " ..." if n > len(locs) else ""
        stats.warnings.append(
            f"Repaired {n} stray I- tag(s) to B- in {path_hint} (I-X not preceded by B-X/I-X), "
            f"e.g. at {', '.join(locs)}{more}"
        )


# ---------------------------------------------------------------------------
# readers


def read_bio(
    folder: Union[str, Path],
    vocab: Vocab,
    intent_labels: Optional[Iterable[str]] = None,
    stats: Optional[ConvertStats] = None,
    log_every: int = 0,
) -> List[Doc]:
    """Read a BIO folder (``seq.in``, ``seq.out``, ``label``) into Docs.

    Tokens are exactly the words of ``seq.in`` (text = words joined by single
    spaces). ``intent_labels`` are extra labels to include in every doc's cats.
    """
    folder = Path(folder)
    stats = stats if stats is not None else ConvertStats()
    p_in, p_out, p_label = folder / "seq.in", folder / "seq.out", folder / "label"
    if not folder.is_dir():
        raise DataError(folder, 0, "not a folder. The bio format expects a folder with seq.in, seq.out and label.")
    l_in, l_out, l_label = _read_lines(p_in), _read_lines(p_out), _read_lines(p_label)
    n = min(len(l_in), len(l_out), len(l_label))
    if not len(l_in) == len(l_out) == len(l_label):
        shortest = min(((len(l_in), p_in), (len(l_out), p_out), (len(l_label), p_label)))[1]
        raise DataError(
            shortest, n + 1,
            f"line counts differ (seq.in: {len(l_in)}, seq.out: {len(l_out)}, label: {len(l_label)}); "
            f"{shortest.name} ends before line {n + 1}. The three files must be line-aligned.",
        )
    n_repaired_before = stats.repaired_tags
    records: List[Tuple[Doc, List[str]]] = []
    locations = [(f"{p_label}:{i + 1}", f"{p_out}:{i + 1}") for i in range(n)]
    for i in range(n):
        line = i + 1
        _progress(log_every, folder, line)
        words = l_in[i].split()
        tags = l_out[i].split()
        if len(words) != len(tags):
            raise DataError(
                p_out, line,
                f"{len(tags)} tags but seq.in line {line} has {len(words)} words. "
                "Give exactly one tag per whitespace-separated word.",
            )
        intents = _split_intents(l_label[i], p_label, line)
        spans: List[Tuple[int, int, str]] = []  # token offsets
        start: Optional[int] = None
        cur: Optional[str] = None
        for j, tag in enumerate(tags):
            m = _TAG_RE.match(tag)
            if m is None:
                raise DataError(
                    p_out, line, f"invalid tag {tag!r} (word {j + 1}, {words[j]!r}). Use O, B-TYPE or I-TYPE."
                )
            if tag == "O":
                if cur is not None:
                    spans.append((start, j, cur))  # type: ignore[arg-type]
                start, cur = None, None
                continue
            prefix, label = m.group(2), m.group(3)
            if prefix == "I" and cur != label:
                stats.repaired_tags += 1
                stats.repaired_locations.append(f"{p_out}:{line}")
                prefix = "B"
            if prefix == "B":
                if cur is not None:
                    spans.append((start, j, cur))  # type: ignore[arg-type]
                start, cur = j, label
        if cur is not None:
            spans.append((start, len(tags), cur))  # type: ignore[arg-type]
        spaces = [True] * (len(words) - 1) + [False]
        doc = Doc(vocab, words=words, spaces=spaces)
        doc.ents = [Span(doc, s, e, label=lab) for s, e, lab in spans]
        records.append((doc, intents))
    _warn_repairs(stats, n_repaired_before, str(p_out))
    return _finish(records, intent_labels, stats, locations)


def _iter_json_lines(path: Path, log_every: int = 0):
    for i, line in enumerate(_read_lines(path), 1):
        _progress(log_every, path, i)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(path, i, f"invalid JSON ({err.msg} at column {err.colno}). Write one JSON object per line.")
        if not isinstance(obj, dict):
            raise DataError(path, i, f"expected a JSON object, got {type(obj).__name__}. Write one object per line.")
        yield i, obj


def read_jsonl(
    path: Union[str, Path],
    nlp: Optional[Language] = None,
    intent_labels: Optional[Iterable[str]] = None,
    stats: Optional[ConvertStats] = None,
    log_every: int = 0,
) -> List[Doc]:
    """Read JSONL with ``text``, ``spans`` (char offsets) and ``intents``.

    Text is tokenised with ``nlp.make_doc`` (default: ``spacy.blank("en")``).
    ``intents`` may be a list of strings or a single string (``a#b`` allowed).
    """
    path = Path(path)
    nlp = nlp if nlp is not None else _blank_nlp()
    stats = stats if stats is not None else ConvertStats()
    records: List[Tuple[Doc, List[str]]] = []
    locations: List[str] = []
    for line, obj in _iter_json_lines(path, log_every):
        locations.append(f"{path}:{line}")
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise DataError(path, line, "missing or empty 'text'. Each line needs a non-empty \"text\" string.")
        if "intents" not in obj and "intent" not in obj:
            raise DataError(path, line, "missing 'intents'. Add \"intents\": [...] (use [] for no intent).")
        raw_intents = obj.get("intents", obj.get("intent"))
        if isinstance(raw_intents, str):
            intents = _split_intents(raw_intents, path, line)
        elif isinstance(raw_intents, list) and all(isinstance(x, str) and x.strip() for x in raw_intents):
            intents = list(dict.fromkeys(x.strip() for x in raw_intents))
        else:
            raise DataError(path, line, f"'intents' must be a list of non-empty strings, got {raw_intents!r}.")
        raw_spans = obj.get("spans", [])
        if not isinstance(raw_spans, list):
            raise DataError(path, line, f"'spans' must be a list, got {type(raw_spans).__name__}.")
        spans = []
        for k, sp in enumerate(raw_spans):
            ok = isinstance(sp, dict) and all(
                isinstance(sp.get(key), int) and not isinstance(sp.get(key), bool) for key in ("start", "end")
            ) and isinstance(sp.get("label"), str) and sp["label"].strip()
            if not ok:
                raise DataError(
                    path, line, f"span {k} {sp!r} is malformed. Use {{\"start\": int, \"end\": int, \"label\": str}}."
                )
            start, end = sp["start"], sp["end"]
            if not 0 <= start < end <= len(text):
                raise DataError(
                    path, line, f"span {k} offsets [{start}:{end}] ({sp['label']}) are out of range for a text of "
                    f"{len(text)} characters. Need 0 <= start < end <= len(text).",
                )
            spans.append((start, end, sp["label"].strip()))
        doc = nlp.make_doc(text)
        _set_ents(doc, spans, text, path, line)
        records.append((doc, intents))
    return _finish(records, intent_labels, stats, locations)


def parse_brackets(annot: str, path: Union[str, Path] = "<string>", line: int = 0) -> Tuple[str, List[Tuple[int, int, str]]]:
    """Parse ``"wake me up at [time : five am]"`` into text + char spans."""
    pieces: List[str] = []
    spans: List[Tuple[int, int, str]] = []
    pos = 0  # length of text built so far
    i = 0
    while i < len(annot):
        ch = annot[i]
        if ch == "]":
            raise DataError(path, line, f"unbalanced ']' at column {i + 1} of {annot!r}. Remove it or add the '['.")
        if ch != "[":
            pieces.append(ch)
            pos += 1
            i += 1
            continue
        close = annot.find("]", i + 1)
        nested = annot.find("[", i + 1)
        if close == -1:
            raise DataError(path, line, f"unbalanced '[' at column {i + 1} of {annot!r}. Close it with ']'.")
        if nested != -1 and nested < close:
            raise DataError(
                path, line, f"nested '[' at column {nested + 1} of {annot!r}. Brackets may not nest; close the "
                "first one before opening another.",
            )
        inner = annot[i + 1: close]
        if " : " not in inner:
            raise DataError(
                path, line, f"bracket [{inner}] at column {i + 1} has no ' : ' separator. Write [label : words]."
            )
        label, value = inner.split(" : ", 1)
        label, value = label.strip(), value.strip()
        if not label or not value:
            raise DataError(path, line, f"bracket [{inner}] at column {i + 1} has an empty label or value. "
                            "Write [label : words].")
        spans.append((pos, pos + len(value), label))
        pieces.append(value)
        pos += len(value)
        i = close + 1
    return "".join(pieces), spans


def read_brackets(
    path: Union[str, Path],
    nlp: Optional[Language] = None,
    intent_labels: Optional[Iterable[str]] = None,
    stats: Optional[ConvertStats] = None,
    log_every: int = 0,
) -> List[Doc]:
    """Read MASSIVE-style JSONL (``annot_utt`` with ``[label : words]`` and ``intent``)."""
    path = Path(path)
    nlp = nlp if nlp is not None else _blank_nlp()
    stats = stats if stats is not None else ConvertStats()
    records: List[Tuple[Doc, List[str]]] = []
    locations: List[str] = []
    for line, obj in _iter_json_lines(path, log_every):
        locations.append(f"{path}:{line}")
        annot = obj.get("annot_utt")
        if not isinstance(annot, str) or not annot.strip():
            raise DataError(path, line, "missing or empty 'annot_utt'. Each line needs an \"annot_utt\" string.")
        raw_intent = obj.get("intent")
        if isinstance(raw_intent, str) and raw_intent.strip():
            intents = _split_intents(raw_intent, path, line)
        elif isinstance(raw_intent, list) and raw_intent and all(isinstance(x, str) and x.strip() for x in raw_intent):
            intents = list(dict.fromkeys(x.strip() for x in raw_intent))
        else:
            raise DataError(path, line, f"missing or invalid 'intent' ({raw_intent!r}). Add \"intent\": \"name\".")
        text, spans = parse_brackets(annot, path, line)
        if not text.strip():
            raise DataError(path, line, "utterance is empty after removing brackets.")
        doc = nlp.make_doc(text)
        _set_ents(doc, spans, text, path, line)
        records.append((doc, intents))
    return _finish(records, intent_labels, stats, locations)


# ---------------------------------------------------------------------------
# convert


PathOrPaths = Union[str, Path, Sequence[Union[str, Path]]]


def _as_paths(paths: PathOrPaths) -> List[Path]:
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _show_paths(paths: PathOrPaths) -> str:
    return ", ".join(str(p) for p in _as_paths(paths))


def read_docs(
    fmt: str,
    input_path: PathOrPaths,
    nlp: Optional[Language] = None,
    intent_labels: Optional[Iterable[str]] = None,
    stats: Optional[ConvertStats] = None,
    log_every: int = 0,
) -> List[Doc]:
    """Dispatch to the reader for ``fmt`` (one of :data:`FORMATS`).

    ``input_path`` may be a list of paths for the formats in
    :data:`MULTI_INPUT_FORMATS` (read and merged); the others read one.
    """
    nlp = nlp if nlp is not None else _blank_nlp()
    paths = _as_paths(input_path)
    if fmt == "rasa":
        from .rasa import read_rasa

        return read_rasa(paths, nlp, intent_labels, stats, log_every)
    if fmt == "prodigy":
        from .prodigy import read_prodigy

        return read_prodigy(paths, nlp, intent_labels, stats, log_every)
    if fmt in FORMATS and len(paths) != 1:
        raise ValueError(
            f"The {fmt} format reads one input, got {len(paths)}: {_show_paths(paths)}. "
            f"Several inputs are merged only for {', '.join(MULTI_INPUT_FORMATS)}."
        )
    (path,) = paths
    if fmt == "bio":
        return read_bio(path, nlp.vocab, intent_labels, stats, log_every)
    if fmt == "jsonl":
        return read_jsonl(path, nlp, intent_labels, stats, log_every)
    if fmt == "brackets":
        return read_brackets(path, nlp, intent_labels, stats, log_every)
    raise ValueError(f"Unknown format {fmt!r}. Choose one of: {', '.join(FORMATS)}.")


def _first_locations(docs: List[Doc], stats: ConvertStats, unseen: Dict[str, int], kind: str) -> str:
    """Lines ``file:line: intent 'x' ...`` for the first doc of each unseen label."""
    if len(stats.doc_locations) != len(docs):
        return ""
    first: Dict[str, str] = {}
    for doc, (intent_loc, ent_loc) in zip(docs, stats.doc_locations):
        if kind == "intent":
            found = [label for label, value in doc.cats.items() if value == 1.0]
            loc = intent_loc
        else:
            found = [ent.label_ for ent in doc.ents]
            loc = ent_loc
        for label in found:
            if label in unseen and label not in first:
                first[label] = loc
    shown = list(first.items())[:MAX_LOCATIONS_SHOWN]
    lines = [f"\n  {loc}: {kind} {label!r} is not in train ({unseen[label]} in this input)" for label, loc in shown]
    if len(first) > len(shown):
        lines.append(f"\n  ... and {len(first) - len(shown)} more")
    return "".join(lines)


def convert(
    fmt: str,
    input_path: PathOrPaths,
    output_path: Union[str, Path],
    train: Optional[PathOrPaths] = None,
    log_every: int = 0,
) -> ConvertStats:
    """Convert ``input_path`` (format ``fmt``) to a DocBin at ``output_path``.

    ``train`` (same format) supplies the full intent label set for cats and is
    used to report intents / entity types that the training data never has.
    rasa and prodigy take a list of paths for either (read and merged).
    """
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}. Choose one of: {', '.join(FORMATS)}.")
    nlp = _blank_nlp()
    train_labels: List[str] = []
    train_ent_types: set = set()
    if train is not None:
        train_stats = ConvertStats()
        read_docs(fmt, train, nlp, None, train_stats, log_every)
        train_labels = list(train_stats.labels)
        train_ent_types = set(train_stats.entity_counts)
    stats = ConvertStats()
    docs = read_docs(fmt, input_path, nlp, train_labels, stats, log_every)
    if train is not None:
        shown_in, shown_train = _show_paths(input_path), _show_paths(train)
        known = set(train_labels)
        stats.unseen_intents = {k: v for k, v in stats.intent_counts.items() if k not in known}
        stats.unseen_entity_types = {k: v for k, v in stats.entity_counts.items() if k not in train_ent_types}
        if stats.unseen_intents:
            n = sum(stats.unseen_intents.values())
            stats.warnings.append(
                f"{len(stats.unseen_intents)} intent(s) in {shown_in} are absent from train {shown_train} "
                f"({n} doc(s); kept, a model will score them as errors): {', '.join(stats.unseen_intents)}"
                + _first_locations(docs, stats, stats.unseen_intents, "intent")
            )
        if stats.unseen_entity_types:
            n = sum(stats.unseen_entity_types.values())
            stats.warnings.append(
                f"{len(stats.unseen_entity_types)} entity type(s) in {shown_in} are absent from train {shown_train} "
                f"({n} entity/ies; kept): {', '.join(stats.unseen_entity_types)}"
                + _first_locations(docs, stats, stats.unseen_entity_types, "entity type")
            )
    if stats.n_no_intent:
        stats.warnings.append(f"{stats.n_no_intent} doc(s) have no intent (all cats 0.0).")
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    db = DocBin(docs=docs, store_user_data=False)
    db.to_disk(output_path)
    return stats


def print_summary(stats: ConvertStats, output_path: Union[str, Path]) -> None:
    for note in stats.notes:
        msg.info(note)
    for warning in stats.warnings:
        head, *lines = warning.split("\n")  # one line per location (wasabi would join them)
        msg.warn(head)
        for line in lines:
            msg.text(line)
    msg.good(f"Wrote {stats.n_docs} docs to {output_path}")
    msg.info(
        f"{stats.n_ents} entities ({len(stats.entity_counts)} types), {stats.n_intents} intents "
        f"({len(stats.labels)} labels in cats, {stats.n_multi_intent} multi-intent docs), "
        f"{stats.repaired_tags} repaired tags, {len(stats.warnings)} warnings"
    )
