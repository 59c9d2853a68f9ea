"""A corpus reader that keeps the gold tokenization of pre-tokenised data."""
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import registry


def gold_token_example(nlp: Language, reference: Doc) -> Example:
    """Predicted doc with the reference's own words and spaces."""
    words = [t.text for t in reference]
    spaces = [bool(t.whitespace_) for t in reference]
    return Example(Doc(nlp.vocab, words=words, spaces=spaces), reference)


def raw_text_example(nlp: Language, reference: Doc) -> Example:
    """Predicted doc tokenized by the pipeline's own tokenizer."""
    return Example(nlp.make_doc(reference.text), reference)


def read_examples(
    nlp: Language, path: Union[str, Path], gold_tokens: bool = True, limit: int = 0
) -> List[Example]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"Corpus file not found: {path}. Convert your data first: "
            "python -m spacy_multitask_intent convert FORMAT INPUT OUTPUT.spacy"
        )
    make = gold_token_example if gold_tokens else raw_text_example
    docs = DocBin().from_disk(path).get_docs(nlp.vocab)
    out = []
    for i, doc in enumerate(docs):
        if limit and i >= limit:
            break
        out.append(make(nlp, doc))
    return out


@registry.readers("spacy_multitask_intent.Corpus.v1")
def create_corpus(
    path: Optional[Path], gold_tokens: bool = True, limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """Like spacy.Corpus.v1, but by default the predicted docs keep the gold
    tokens (as JointBERT trains and scores ATIS/SNIPS)."""

    def read(nlp: Language) -> Iterator[Example]:
        if path is None:
            return iter(())
        return iter(read_examples(nlp, path, gold_tokens, limit))

    return read
