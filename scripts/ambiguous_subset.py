"""NER-only against multitask on the test queries where the words alone are ambiguous.

Usage: python scripts/ambiguous_subset.py TRAIN.spacy TEST.spacy OUT.md NAME=MODEL [NAME=MODEL ...]

A test query is in the *ambiguous* subset when the text of one of its gold
entities (lower-cased) occurs in train with another label: as an entity of
another type, or as words outside any entity.  The *entity-or-nothing* subset
is the case the method is about ("orange" a STORE in one query and no entity
in another): the entity's text occurs in train outside any entity.  The
*word-level* subset is looser: one gold entity word occurs in train with
another label or outside any entity.
Each model is scored on the gold tokens of the whole test set and of each
subset (entity precision, recall and F1, spaCy's span scorer).
"""
import sys
from collections import defaultdict
from typing import Dict, List, Set

import spacy
from spacy.scorer import Scorer
from spacy.tokens import DocBin

from spacy_multitask_intent.corpus import read_examples


SUBSETS = ("all", "ambiguous", "entity-or-nothing", "word-level")


def word_labels(docs) -> Dict[str, Set[str]]:
    """For each lower-cased word: the entity labels it carries in `docs`, "O" outside any entity."""
    seen: Dict[str, Set[str]] = defaultdict(set)
    for doc in docs:
        for token in doc:
            seen[token.lower_].add(token.ent_type_ or "O")
    return seen


MAX_LEN = 6


def span_labels(docs) -> Dict[str, Set[str]]:
    """For each lower-cased word sequence of up to MAX_LEN words: the labels of
    the entities with exactly that text, and "O" where it occurs outside any entity."""
    seen: Dict[str, Set[str]] = defaultdict(set)
    for doc in docs:
        for ent in doc.ents:
            seen[ent.text.lower()].add(ent.label_)
        outside = [not t.ent_type_ for t in doc]
        for i in range(len(doc)):
            for j in range(i + 1, min(len(doc), i + MAX_LEN) + 1):
                if not outside[j - 1]:
                    break
                seen[doc[i:j].text.lower()].add("O")
    return seen


def subsets(train_words, train_spans, reference) -> Dict[str, bool]:
    word = ambiguous = nothing = False
    for ent in reference.ents:
        other = train_spans.get(ent.text.lower(), set()) - {ent.label_}
        ambiguous |= bool(other)
        nothing |= "O" in other
        for token in ent:
            word |= bool(train_words.get(token.lower_, set()) - {ent.label_})
    return {"all": True, "ambiguous": ambiguous, "entity-or-nothing": nothing, "word-level": word}


def main(train: str, test: str, out: str, *models: str) -> None:
    names = [m.split("=", 1) for m in models]
    nlp0 = spacy.blank("en")
    train_docs = list(DocBin().from_disk(train).get_docs(nlp0.vocab))
    train_words, train_spans = word_labels(train_docs), span_labels(train_docs)
    rows: List[str] = [
        "| subset | queries | model | Precision | Recall | F1 |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, path in names:
        nlp = spacy.load(path)
        examples = read_examples(nlp, test)
        docs = list(nlp.pipe([eg.predicted for eg in examples], batch_size=64))
        for eg, doc in zip(examples, docs):
            eg.predicted = doc
        member = [subsets(train_words, train_spans, eg.reference) for eg in examples]
        for subset in SUBSETS:
            chosen = [eg for eg, m in zip(examples, member) if m[subset]]
            s = Scorer.score_spans(chosen, "ents")
            rows.append(
                f"| {subset} | {len(chosen)} | {name} | {100 * s['ents_p']:.2f} | "
                f"{100 * s['ents_r']:.2f} | {100 * s['ents_f']:.2f} |"
            )
    head, body = rows[:2], rows[2:]
    body.sort(key=lambda r: SUBSETS.index(r.split("|")[1].strip()))  # stable: models keep their order
    rows = head + body
    text = "\n".join(rows) + "\n"
    with open(out, "w", encoding="utf8") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main(*sys.argv[1:])
