"""Texts in, plain records out: the one batch function behind `serve`,
`annotate` and every other engine.

A record is JSON-ready (str, float, list, dict only)::

    {"text": "pickup my order at orange store",
     "entities": [{"start": 19, "end": 25, "label": "STORE", "text": "orange",
                   "confidence": 0.98}],
     "intents": ["store_lookup"],
     "intent_scores": {"store_lookup": 0.97, "product_search": 0.01, ...},
     "tokens": [{"text": "pickup", "start": 0, "end": 6,
                 "intent": {"store_lookup": 0.95, ...}}, ...]}   # tokens=True only

`intent_scores` is `doc.cats`, ranked high to low; `intents` are the decided
intents (the pipeline's saved thresholds apply, and its gating has already
removed the entities it vetoes). A text of whitespace only gets no entities
and no intents.
"""
from typing import Any, Dict, Iterable, List, Optional, Sequence

from spacy.language import Language
from spacy.tokens import Doc


COMPONENT = "intent_ner"


def _intent_pipe(nlp: Language):
    for name, pipe in nlp.pipeline:
        if hasattr(pipe, "intent_labels") and hasattr(pipe, "cfg"):
            return pipe
    return None


def doc_to_record(doc: Doc, pipe=None, tokens: bool = False) -> Dict[str, Any]:
    """One processed Doc as a plain record (see the module docstring)."""
    entities = []
    for ent in doc.ents:
        conf = ent._.confidence if ent.has_extension("confidence") else None
        entities.append(
            {
                "start": ent.start_char,
                "end": ent.end_char,
                "label": ent.label_,
                "text": ent.text,
                "confidence": None if conf is None else round(float(conf), 6),
            }
        )
    scores = {k: round(float(v), 6) for k, v in sorted(doc.cats.items(), key=lambda kv: -kv[1])}
    if pipe is not None and scores:
        intents = pipe.decide_intents(doc)
    else:
        intents = []
    record: Dict[str, Any] = {"text": doc.text, "entities": entities, "intents": intents, "intent_scores": scores}
    if tokens:
        record["tokens"] = [
            {
                "text": t.text,
                "start": t.idx,
                "end": t.idx + len(t.text),
                "intent": {k: round(float(v), 6) for k, v in t._.intent.items()} if t.has_extension("intent") else {},
            }
            for t in doc
            if not t.is_space
        ]
    return record


def parse_texts(
    nlp: Language,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    tokens: bool = False,
) -> List[Dict[str, Any]]:
    """Run `nlp.pipe` over `texts` and return one record per text, in order.

    Texts must be `str`; callers validate their own input (and say where a bad
    value came from) before calling this.
    """
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"parse_texts: text {i} is {type(text).__name__}, not str")
    pipe = _intent_pipe(nlp)
    return [doc_to_record(doc, pipe, tokens) for doc in nlp.pipe(texts, batch_size=batch_size)]


def iter_records(nlp: Language, texts: Iterable[str], *, batch_size: int = 32, tokens: bool = False):
    """Streaming form of parse_texts."""
    pipe = _intent_pipe(nlp)
    for doc in nlp.pipe(texts, batch_size=batch_size):
        yield doc_to_record(doc, pipe, tokens)


def record_to_prodigy(record: Dict[str, Any], labels: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """A record as a Prodigy task, for review in Prodigy (`ner_manual` spans,
    `choice` intents); `convert prodigy` reads it back.

    spans carry start/end/label; each span's confidence and the ranked intent
    scores go in `meta`; the decided intents are pre-selected in `accept`,
    and `options` lists every intent label (`labels`, else the scored ones).
    A record with `tokens` (parse_texts(..., tokens=True)) also gives the task
    its `tokens` and each span its `token_start`/`token_end`, so Prodigy shows
    the pipeline's own tokens and `convert prodigy` rebuilds the same ones.
    """
    options = list(labels) if labels is not None else list(record.get("intent_scores", {}))
    spans = [{"start": e["start"], "end": e["end"], "label": e["label"]} for e in record["entities"]]
    task: Dict[str, Any] = {"text": record["text"]}
    if record.get("tokens") is not None:
        text = record["text"]
        tokens = [
            {"text": t["text"], "start": t["start"], "end": t["end"], "id": i, "ws": text[t["end"]: t["end"] + 1] == " "}
            for i, t in enumerate(record["tokens"])
        ]
        first = {t["start"]: t["id"] for t in tokens}
        last = {t["end"]: t["id"] for t in tokens}
        for span in spans:
            if span["start"] in first and span["end"] in last:
                span["token_start"], span["token_end"] = first[span["start"]], last[span["end"]]
        task["tokens"] = tokens
    task.update(
        {
            "spans": spans,
            "options": [{"id": label, "text": label} for label in options],
            "accept": list(record["intents"]),
            "answer": "accept",
            "meta": {
                "entity_confidence": [e.get("confidence") for e in record["entities"]],
                "intent_scores": dict(record.get("intent_scores", {})),
            },
        }
    )
    return task
