"""Read Prodigy JSONL (``db-out`` exports, or tasks written by
``records.record_to_prodigy``) into Docs.

One JSON object per line:

* ``text`` (required);
* ``spans``: ``[{"start", "end", "label"}]`` character offsets, the entities
  (``token_start`` / ``token_end``, when given with ``tokens``, must agree
  with them);
* the intents: ``accept`` (choice interface: the selected option ids) and/or a
  top-level ``label`` (binary textcat: the row says the text has that intent);
  every ``options`` id joins the intent label set (cats 0.0 when not chosen);
* ``answer``: ``accept`` rows are read; ``reject`` and ``ignore`` rows are
  skipped and counted (no ``answer``: read, as for tasks not yet reviewed);
* ``tokens`` (``text``/``start``/``end``): when present, the doc uses exactly
  these tokens (whitespace between them becomes spaces or whitespace tokens,
  as spaCy does); otherwise the text is tokenised with ``spacy.blank("en")``.

Rows for the same input, in one file or several (e.g. a ``ner_manual``
export and a ``textcat`` export), are merged into one doc: by
``_input_hash``, or by the text where a row has no hash. Their spans are
united (identical spans once) and must not overlap; their intents are united.
Spans of rows from the binary ``classification`` view only highlight pattern
matches: they are skipped and counted.

Errors are :class:`DataError` naming ``file:line``.
"""
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

from .convert import (
    ConvertStats,
    DataError,
    _blank_nlp,
    _char_span,
    _finish,
    _input_files,
    _iter_json_lines,
    _overlap_error,
)

ANSWERS = ("accept", "reject", "ignore")
HIGHLIGHT_VIEWS = ("classification",)

PathLike = Union[str, Path]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Group:
    """Every accepted row of one input."""

    def __init__(self, text: str, loc: Tuple[Path, int]) -> None:
        self.text = text
        self.loc = loc
        self.tokens: Optional[Tuple[List[Dict[str, Any]], Path, int]] = None
        self.spans: List[Tuple[int, int, str, Path, int]] = []
        self.intents: List[str] = []
        self.intent_loc: Optional[Tuple[Path, int]] = None
        self.span_loc: Optional[Tuple[Path, int]] = None


def _check_tokens(tokens: Any, text: str, path: Path, line: int) -> List[Dict[str, Any]]:
    if not isinstance(tokens, list):
        raise DataError(path, line, f"'tokens' must be a list, got {type(tokens).__name__}.")
    pos = 0
    for k, tok in enumerate(tokens):
        ok = isinstance(tok, dict) and _is_int(tok.get("start")) and _is_int(tok.get("end")) and isinstance(
            tok.get("text"), str
        )
        if not ok:
            raise DataError(path, line, f"token {k} {tok!r} is malformed. Use {{\"text\": str, \"start\": int, \"end\": int}}.")
        start, end = tok["start"], tok["end"]
        if not pos <= start < end <= len(text) or text[start:end] != tok["text"]:
            raise DataError(
                path, line,
                f"token {k} {tok['text']!r} [{start}:{end}] does not match the text there "
                f"({text[start:end]!r}) or overlaps the token before it. Tokens must be in order and "
                "match 'text' at their offsets.",
            )
        pos = end
    return tokens


def doc_from_tokens(vocab: Vocab, text: str, tokens: List[Dict[str, Any]], path: PathLike, line: int) -> Doc:
    """A Doc with exactly ``tokens`` (checked offsets); the whitespace between
    them becomes a token's trailing space or a whitespace token, as in spaCy."""
    words: List[str] = []
    spaces: List[bool] = []

    def gap(start: int, end: int) -> None:
        chunk = text[start:end]
        if not chunk:
            return
        if not chunk.isspace():
            raise DataError(
                path, line,
                f"text {chunk!r} at [{start}:{end}] is not covered by any token. "
                "Give a token for every non-whitespace character, or drop 'tokens'.",
            )
        if words and not spaces[-1] and chunk[0] == " ":
            spaces[-1] = True
            chunk = chunk[1:]
        if chunk:
            words.append(chunk)
            spaces.append(False)

    pos = 0
    for tok in tokens:
        gap(pos, tok["start"])
        words.append(tok["text"])
        spaces.append(False)
        pos = tok["end"]
    gap(pos, len(text))
    doc = Doc(vocab, words=words, spaces=spaces)
    assert doc.text == text, (doc.text, text)
    return doc


def _spans(
    obj: Dict[str, Any], text: str, tokens: Optional[List[Dict[str, Any]]], path: Path, line: int
) -> List[Tuple[int, int, str]]:
    raw = obj.get("spans", [])
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise DataError(path, line, f"'spans' must be a list, got {type(raw).__name__}.")
    out = []
    for k, sp in enumerate(raw):
        ok = isinstance(sp, dict) and _is_int(sp.get("start")) and _is_int(sp.get("end")) and isinstance(
            sp.get("label"), str
        ) and sp["label"].strip()
        if not ok:
            raise DataError(path, line, f"span {k} {sp!r} is malformed. Use {{\"start\": int, \"end\": int, \"label\": str}}.")
        start, end, label = sp["start"], sp["end"], sp["label"].strip()
        if not 0 <= start < end <= len(text):
            raise DataError(
                path, line, f"span {k} offsets [{start}:{end}] ({label}) are out of range for a text of "
                f"{len(text)} characters. Need 0 <= start < end <= len(text).",
            )
        if tokens is not None and ("token_start" in sp or "token_end" in sp):
            ts, te = sp.get("token_start"), sp.get("token_end")
            agree = (
                _is_int(ts) and _is_int(te) and 0 <= ts <= te < len(tokens)
                and tokens[ts]["start"] == start and tokens[te]["end"] == end
            )
            if not agree:
                raise DataError(
                    path, line,
                    f"span {k} {text[start:end]!r} [{start}:{end}] ({label}): token_start {ts} / token_end {te} "
                    "do not point at the tokens that start and end at these character offsets. "
                    "Fix them or drop token_start/token_end.",
                )
        out.append((start, end, label))
    return out


def _intents(obj: Dict[str, Any], path: Path, line: int) -> Tuple[List[str], List[str]]:
    """(intents this row asserts, option ids it offers)."""
    options: List[str] = []
    if "options" in obj:
        raw_options = obj["options"]
        if not isinstance(raw_options, list):
            raise DataError(path, line, f"'options' must be a list, got {type(raw_options).__name__}.")
        for k, opt in enumerate(raw_options):
            oid = opt.get("id") if isinstance(opt, dict) else None
            if not isinstance(oid, str) or not oid.strip():
                raise DataError(
                    path, line,
                    f"option {k} {opt!r} needs an \"id\" that is the intent name (a non-empty string).",
                )
            options.append(oid.strip())
    intents: List[str] = []
    if "accept" in obj:
        accept = obj["accept"]
        if not isinstance(accept, list) or not all(isinstance(x, str) and x.strip() for x in accept):
            raise DataError(path, line, f"'accept' must be a list of intent names (option ids), got {accept!r}.")
        for x in accept:
            if options and x.strip() not in options:
                raise DataError(
                    path, line, f"accepted {x!r} is not one of the options ({', '.join(options)})."
                )
            intents.append(x.strip())
    if "label" in obj:
        label = obj["label"]
        if not isinstance(label, str) or not label.strip():
            raise DataError(path, line, f"'label' must be an intent name (a non-empty string), got {label!r}.")
        intents.append(label.strip())
    return intents, options


def _prodigy_files(paths: Sequence[PathLike]) -> List[Path]:
    return [f for f, _ in _input_files(paths, lambda f: f.suffix == ".jsonl", "no .jsonl file in this folder.")]


def read_prodigy(
    paths: Union[PathLike, Sequence[PathLike]],
    nlp: Optional[Language] = None,
    intent_labels: Optional[Iterable[str]] = None,
    stats: Optional[ConvertStats] = None,
    log_every: int = 0,
) -> List[Doc]:
    """Read Prodigy JSONL files (or folders of ``*.jsonl``), merging rows of
    the same input (see the module docstring)."""
    nlp = nlp if nlp is not None else _blank_nlp()
    stats = stats if stats is not None else ConvertStats()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    counts: Counter = Counter()
    groups: List[_Group] = []
    by_hash: Dict[Any, _Group] = {}
    by_text: Dict[str, _Group] = {}
    all_options: List[str] = []
    n_rows = 0
    for path in _prodigy_files(paths):
        for line, obj in _iter_json_lines(path, log_every):
            text = obj.get("text")
            if not isinstance(text, str) or not text.strip():
                raise DataError(path, line, "missing or empty 'text'. Each row needs a non-empty \"text\" string.")
            answer = obj.get("answer", "accept")
            if answer not in ANSWERS:
                raise DataError(path, line, f"'answer' must be one of {', '.join(ANSWERS)}, got {answer!r}.")
            if answer != "accept":
                counts[answer] += 1
                continue
            n_rows += 1
            tokens = _check_tokens(obj["tokens"], text, path, line) if "tokens" in obj else None
            spans = _spans(obj, text, tokens, path, line)
            intents, options = _intents(obj, path, line)
            if obj.get("_view_id") in HIGHLIGHT_VIEWS and spans:
                counts["highlight spans"] += len(spans)
                spans = []
            # the input this row belongs to
            input_hash = obj.get("_input_hash")
            if input_hash is not None and not (_is_int(input_hash) or isinstance(input_hash, str)):
                raise DataError(path, line, f"'_input_hash' must be an integer, got {input_hash!r}.")
            group = by_hash.get(input_hash) if input_hash is not None else by_text.get(text)
            if group is not None and group.text != text:
                g_path, g_line = group.loc
                raise DataError(
                    path, line,
                    f"_input_hash {input_hash} was first seen at {g_path}:{g_line} with a different text "
                    f"({group.text!r}). Rows with one _input_hash must have the same text.",
                )
            if group is None:
                group = _Group(text, (path, line))
                groups.append(group)
                by_text.setdefault(text, group)
                if input_hash is not None:
                    by_hash[input_hash] = group
            if tokens is not None and group.tokens is None:
                group.tokens = (tokens, path, line)
            have = {(s, e, lab) for s, e, lab, _, _ in group.spans}
            for s, e, lab in spans:
                if (s, e, lab) not in have:
                    group.spans.append((s, e, lab, path, line))
                    have.add((s, e, lab))
            if spans and group.span_loc is None:
                group.span_loc = (path, line)
            for intent in intents:
                if intent not in group.intents:
                    group.intents.append(intent)
            if intents and group.intent_loc is None:
                group.intent_loc = (path, line)
            for oid in options:
                if oid not in all_options:
                    all_options.append(oid)
    records: List[Tuple[Doc, List[str]]] = []
    locations: List[Tuple[str, str]] = []
    for group in groups:
        text = group.text
        if group.tokens is not None:
            tokens, t_path, t_line = group.tokens
            doc = doc_from_tokens(nlp.vocab, text, tokens, t_path, t_line)
        else:
            doc = nlp.make_doc(text)
        ents = []
        prev: Optional[Tuple[int, int, str, Path, int]] = None
        for span in sorted(group.spans, key=lambda sp: (sp[0], sp[1])):
            start, end, label, s_path, s_line = span
            if prev is not None and start < prev[1]:
                where = f" from {prev[3]}:{prev[4]}" if (prev[3], prev[4]) != (s_path, s_line) else ""
                raise _overlap_error(text, prev[:3], span[:3], s_path, s_line, where)
            ents.append(_char_span(doc, start, end, label, s_path, s_line))
            prev = span
        doc.ents = ents
        records.append((doc, list(group.intents)))
        g_loc = f"{group.loc[0]}:{group.loc[1]}"
        i_loc = f"{group.intent_loc[0]}:{group.intent_loc[1]}" if group.intent_loc else g_loc
        s_loc = f"{group.span_loc[0]}:{group.span_loc[1]}" if group.span_loc else g_loc
        locations.append((i_loc, s_loc))
    if not records and not counts:
        raise DataError(", ".join(str(p) for p in paths), 0, "no rows. Provide at least one annotated example.")
    _notes(stats, counts, n_rows, len(records))
    labels = list(intent_labels or []) + all_options
    return _finish(records, labels, stats, locations)


def _notes(stats: ConvertStats, counts: Counter, n_rows: int, n_docs: int) -> None:
    for key in ("reject", "ignore", "highlight spans"):
        if counts[key]:
            stats.skipped[key] = stats.skipped.get(key, 0) + counts[key]
    if counts["reject"] or counts["ignore"]:
        stats.notes.append(
            f"Skipped {counts['reject']} rejected and {counts['ignore']} ignored row(s) (answer reject / ignore)."
        )
    if counts["highlight spans"]:
        stats.notes.append(
            f"Skipped {counts['highlight spans']} span(s) of binary classification rows (pattern highlights, not entities)."
        )
    if n_rows != n_docs:
        stats.notes.append(
            f"Merged {n_rows} accepted row(s) into {n_docs} doc(s) by _input_hash (by text where a row has none)."
        )
