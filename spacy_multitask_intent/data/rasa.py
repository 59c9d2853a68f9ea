"""Read Rasa 3.x NLU training data (YAML) into Docs.

What is read::

    nlu:
    - intent: check_balance
      examples: |
        - what is my balance
        - balance of my [savings](account) account
        - show [NYC]{"entity": "city", "value": "New York City"} branches
        - fly from [Berlin]{"entity": "city", "role": "departure"} to [SF]{"entity": "city", "role": "destination"}
    - intent: greet
      examples:
      - text: |
          hi there
        metadata: {sentiment: neutral}

* ``[text](type)``, ``[text](type:value)`` and ``[text]{"entity": "type", ...}``
  mark entities. The span is the text as written; a ``value`` (Rasa's synonym
  mapping) is not kept. A ``role`` is kept in the label as ``type.role``
  (``city.departure``), since the model predicts one label per span; a
  ``group`` is not kept. Each is counted in a note.
* ``synonym``, ``regex`` and ``lookup`` entries are Rasa's entity
  post-processing and featurizer inputs, not examples: they are skipped and
  counted in a note, as are ``metadata`` blocks and sections other than
  ``nlu`` (e.g. ``responses``) in the same file.
* Several files, or a folder (every ``*.yml`` / ``*.yaml`` under it, sorted),
  are read and merged; in a folder, files without an ``nlu:`` section
  (stories, rules, domain) are skipped and named in a note.

Errors are :class:`DataError` with the ``file:line`` of the example: the line
of each example inside an ``examples: |`` block is computed from the YAML node
marks. Malformed markup (a stray ``[`` or ``]``, ``[text]`` with no type, bad
JSON in ``{...}``, a dict without ``"entity"``) and spans that cut a token are
errors, never left in the text.
"""
import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import yaml
from spacy.language import Language
from spacy.tokens import Doc

from .convert import ConvertStats, DataError, _blank_nlp, _finish, _input_files, _progress, _read_text, _set_ents

# Rasa's own entity pattern (rasa/shared/nlu/training_data/entities_parser.py):
# [entity_text]((entity_type(:entity_synonym)?)|{entity_dict})
ENTITY_RE = re.compile(
    r"\[(?P<text>[^\]]+?)\](?:\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)|\{(?P<dict>[^}]+?)\})"
)
ENTITY_DICT_KEYS = ("entity", "value", "role", "group")
IGNORED_ITEMS = ("synonym", "regex", "lookup")
INTENT_KEYS = ("intent", "examples", "metadata")
ROLE_SEPARATOR = "."

PathLike = Union[str, Path]


def _kept(value) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip() != ""


def parse_rasa_example(
    example: str, path: PathLike = "<string>", line: int = 0, counts: Optional[Counter] = None
) -> Tuple[str, List[Tuple[int, int, str]]]:
    """Parse one example's markup into text + char spans ``(start, end, label)``.

    ``counts`` (if given) counts the ``value``, ``role`` and ``group``
    attributes met.
    """
    counts = counts if counts is not None else Counter()
    pieces: List[str] = []
    spans: List[Tuple[int, int, str]] = []
    pos = 0  # length of plain text so far
    last = 0  # end of the previous match in the markup

    def literal(upto: int) -> None:
        nonlocal pos
        chunk = example[last:upto]
        for k, ch in enumerate(chunk):
            if ch in "[]":
                col = last + k + 1
                raise DataError(
                    path, line,
                    f"stray {ch!r} at column {col} of {example!r}: not part of an entity annotation. "
                    "Write [text](type) or [text]{\"entity\": \"type\"}, or remove the bracket.",
                )
        pieces.append(chunk)
        pos += len(chunk)

    for m in ENTITY_RE.finditer(example):
        literal(m.start())
        col = m.start() + 1
        text = m.group("text")
        if not text.strip():
            raise DataError(path, line, f"empty entity text in {m.group(0)!r} at column {col} of {example!r}.")
        if m.group("dict") is not None:
            raw = "{" + m.group("dict") + "}"
            try:
                attrs = json.loads(raw)
            except json.JSONDecodeError as err:
                raise DataError(
                    path, line,
                    f"entity attributes {raw} at column {col} are not valid JSON ({err.msg}). "
                    "Write [text]{\"entity\": \"type\", \"role\": \"...\"} with double quotes.",
                )
            unknown = sorted(set(attrs) - set(ENTITY_DICT_KEYS))
            if unknown:
                raise DataError(
                    path, line,
                    f"entity attributes {raw} at column {col} have unknown key(s) {', '.join(unknown)}. "
                    f"Allowed: {', '.join(ENTITY_DICT_KEYS)}.",
                )
            entity = attrs.get("entity")
            if not isinstance(entity, str) or not entity.strip():
                raise DataError(
                    path, line,
                    f"entity attributes {raw} at column {col} have no \"entity\" type. "
                    "Write [text]{\"entity\": \"type\"}.",
                )
            for key in ("role", "group"):
                if key in attrs and not _kept(attrs[key]):
                    raise DataError(path, line, f"entity {key} {attrs[key]!r} at column {col} must be a non-empty string.")
            label = entity.strip()
            if "value" in attrs:
                counts["value"] += 1
            if "group" in attrs:
                counts["group"] += 1
            if "role" in attrs:
                counts["role"] += 1
                label = f"{label}{ROLE_SEPARATOR}{str(attrs['role']).strip()}"
        else:
            label = m.group("entity").strip()
            if not label:
                raise DataError(path, line, f"empty entity type in {m.group(0)!r} at column {col} of {example!r}.")
            if m.group("value") is not None:
                counts["value"] += 1
        if any(ch.isspace() for ch in label):
            suggestion = "_".join(label.split())
            raise DataError(
                path, line, f"entity type {label!r} at column {col} contains whitespace. Use e.g. {suggestion!r}."
            )
        spans.append((pos, pos + len(text), label))
        pieces.append(text)
        pos += len(text)
        last = m.end()
    literal(len(example))
    return "".join(pieces), spans


# ---------------------------------------------------------------------------
# YAML


def _load_yaml(path: Path):
    text = _read_text(path)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        n_lines = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
        line = min(mark.line + 1, n_lines) if mark is not None else 0  # a problem at the end: the last line
        context = ""
        if err.context:
            at = f" (line {err.context_mark.line + 1})" if err.context_mark is not None else ""
            context = f"{err.context}{at}: "
        raise DataError(path, line, f"invalid YAML: {context}{err.problem}.")
    except yaml.YAMLError as err:
        raise DataError(path, 0, f"invalid YAML: {err}.")


def _line(node) -> int:
    return node.start_mark.line + 1


def _mapping(node, path: Path, what: str) -> dict:
    if not isinstance(node, yaml.MappingNode):
        raise DataError(path, _line(node), f"{what} must be a mapping (key: value).")
    out = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise DataError(path, _line(key), f"{what}: keys must be plain strings.")
        out[key.value] = value
    return out


def _scalar(node, path: Path, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise DataError(path, _line(node), f"{what} must be a string.")
    return node.value


def _examples(node, path: Path, counts: Counter) -> Iterator[Tuple[int, str]]:
    """(line, markup) for each example of an intent's ``examples``."""
    if isinstance(node, yaml.ScalarNode):
        # a literal block: its content starts on the line after the '|'
        exact = node.style == "|"
        for i, raw in enumerate(node.value.split("\n")):
            line = node.start_mark.line + 2 + i if exact else _line(node)
            stripped = raw.strip()
            if not stripped:
                continue
            if not stripped.startswith("-"):  # as Rasa: '- text' (or '-text')
                raise DataError(
                    path, line,
                    f"example {stripped!r} does not start with '-'. Write each example as '- text' on its own line.",
                )
            yield line, stripped[1:].strip()
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            fields = _mapping(item, path, "an example in an examples list")
            unknown = sorted(set(fields) - {"text", "metadata"})
            if unknown or "text" not in fields:
                raise DataError(
                    path, _line(item),
                    f"an examples list item needs 'text' (and optionally 'metadata'), got {', '.join(fields) or 'nothing'}.",
                )
            text_node = fields["text"]
            text = _scalar(text_node, path, "'text'")
            line = _line(text_node) + (1 if getattr(text_node, "style", None) in ("|", ">") else 0)
            if "metadata" in fields:
                counts["metadata"] += 1
            yield line, text.strip()
    else:
        raise DataError(path, _line(node), "'examples' must be a '|' block of '- text' lines or a list of {text: ...}.")


def _rasa_files(paths: Sequence[PathLike]) -> List[Tuple[Path, bool]]:
    """(file, explicit) pairs: a folder expands to its YAML files."""
    return _input_files(
        paths,
        lambda f: f.suffix in (".yml", ".yaml"),
        "no .yml / .yaml file in this folder. Point at Rasa NLU files or their data/ folder.",
        recursive=True,
    )


def read_rasa(
    paths: Union[PathLike, Sequence[PathLike]],
    nlp: Optional[Language] = None,
    intent_labels: Optional[Iterable[str]] = None,
    stats: Optional[ConvertStats] = None,
    log_every: int = 0,
) -> List[Doc]:
    """Read Rasa NLU YAML files (or folders of them) into Docs, merged in order."""
    nlp = nlp if nlp is not None else _blank_nlp()
    stats = stats if stats is not None else ConvertStats()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    counts: Counter = Counter()
    skipped_files: List[str] = []
    other_sections: Counter = Counter()  # e.g. responses next to nlu in one file
    records: List[Tuple[Doc, List[str]]] = []
    locations: List[str] = []
    n_nlu_files = 0
    for path, explicit in _rasa_files(paths):
        root = _load_yaml(path)
        top = _mapping(root, path, "the file") if root is not None else {}
        if "nlu" not in top:
            if explicit:
                raise DataError(
                    path, 1, "no 'nlu:' section. A Rasa NLU file has 'nlu:' with '- intent: name' and 'examples: |'."
                )
            skipped_files.append(str(path))
            continue
        n_nlu_files += 1
        for key in top:
            if key not in ("version", "nlu"):
                other_sections[key] += 1
        nlu = top["nlu"]
        if isinstance(nlu, yaml.ScalarNode) and nlu.value == "":
            continue  # "nlu:" with nothing under it
        if not isinstance(nlu, yaml.SequenceNode):
            raise DataError(path, _line(nlu), "'nlu' must be a list of '- intent: ...' items.")
        for item in nlu.value:
            fields = _mapping(item, path, "an nlu item")
            kinds = [k for k in ("intent",) + IGNORED_ITEMS if k in fields]
            if len(kinds) != 1:
                raise DataError(
                    path, _line(item),
                    f"an nlu item needs exactly one of intent, synonym, regex, lookup; got {', '.join(fields) or 'nothing'}.",
                )
            kind = kinds[0]
            if kind != "intent":
                counts[kind] += 1
                continue
            unknown = sorted(set(fields) - set(INTENT_KEYS))
            if unknown:
                raise DataError(
                    path, _line(item), f"unknown key(s) {', '.join(unknown)} in an intent. Allowed: {', '.join(INTENT_KEYS)}."
                )
            intent = _scalar(fields["intent"], path, "'intent'").strip()
            if not intent:
                raise DataError(path, _line(fields["intent"]), "empty intent name.")
            if "examples" not in fields:
                raise DataError(path, _line(item), f"intent {intent!r} has no 'examples'. Add 'examples: |' with '- text' lines.")
            if "metadata" in fields:
                counts["metadata"] += 1
            n_before = len(records)
            for line, markup in _examples(fields["examples"], path, counts):
                if not markup:
                    raise DataError(path, line, f"empty example in intent {intent!r}.")
                text, spans = parse_rasa_example(markup, path, line, counts)
                if not text.strip():
                    raise DataError(path, line, f"example {markup!r} is empty once the markup is removed.")
                doc = nlp.make_doc(text)
                _set_ents(doc, spans, text, path, line)
                records.append((doc, [intent]))
                locations.append(f"{path}:{line}")
                _progress(log_every, path, len(records))
            if len(records) == n_before:
                raise DataError(path, _line(item), f"intent {intent!r} has no examples.")
    if not n_nlu_files:
        raise DataError(_show(paths), 0, "no file with an 'nlu:' section. Point at Rasa NLU files or their data/ folder.")
    _notes(stats, counts, skipped_files, other_sections)
    return _finish(records, intent_labels, stats, locations)


def _show(paths: Sequence[PathLike]) -> str:
    return ", ".join(str(p) for p in paths)


def _notes(stats: ConvertStats, counts: Counter, skipped_files: List[str], other_sections: Counter) -> None:
    for key in ("synonym", "regex", "lookup", "value", "group", "metadata"):
        if counts[key]:
            stats.skipped[key] = stats.skipped.get(key, 0) + counts[key]
    names = {"synonym": "synonym(s)", "regex": "regex(es)", "lookup": "lookup table(s)"}
    ignored = [f"{counts[k]} {names[k]}" for k in IGNORED_ITEMS if counts[k]]
    if ignored:
        stats.notes.append(
            f"Ignored {', '.join(ignored)}: Rasa's entity post-processing and featurizer inputs, not examples."
        )
    if counts["value"]:
        stats.notes.append(f"{counts['value']} entity value(s) (synonym mappings) not kept: spans keep the text as written.")
    if counts["role"]:
        stats.notes.append(f"{counts['role']} entity role(s) kept in the label as type{ROLE_SEPARATOR}role.")
    if counts["group"]:
        stats.notes.append(f"{counts['group']} entity group(s) not kept.")
    if counts["metadata"]:
        stats.notes.append(f"{counts['metadata']} metadata block(s) not kept.")
    if other_sections:
        stats.skipped["section"] = stats.skipped.get("section", 0) + sum(other_sections.values())
        shown = ", ".join(f"{key} ({n} file(s))" for key, n in sorted(other_sections.items()))
        stats.notes.append(f"Skipped sections other than nlu in NLU files: {shown}.")
    if skipped_files:
        stats.skipped["file without nlu"] = stats.skipped.get("file without nlu", 0) + len(skipped_files)
        stats.notes.append(f"Skipped {len(skipped_files)} file(s) without an 'nlu:' section: {', '.join(skipped_files)}.")
