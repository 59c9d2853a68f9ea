"""Build a full training config from the base file and a variant fragment."""
from pathlib import Path
from typing import Optional

from thinc.api import Config


def merge_config(base: Path, variant: Optional[Path] = None) -> Config:
    """The base config with the variant's settings laid over it.

    Variants hold only what differs (e.g. `update_mode = "ner_only"`), so the
    configurations cannot drift apart in anything else.
    """
    config = Config().from_disk(base, interpolate=False)
    if variant is not None:
        config = config.merge(Config().from_disk(variant, interpolate=False))
    return config


def corpus_is_multi_label(path: Path) -> bool:
    """Whether a training corpus (.spacy) is multi-label, decided as intent_ner
    decides it in initialize: some doc with intents (doc.cats) has a number of
    gold intents (cats >= 0.5) other than one."""
    import spacy
    from spacy.tokens import DocBin

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Training corpus not found: {path}")
    from .scoring import needs_multi_label

    vocab = spacy.blank("en").vocab
    return any(needs_multi_label(doc.cats) for doc in DocBin().from_disk(path).get_docs(vocab))


def exclusive_textcat(config: Config) -> Config:
    """The stock config with its `textcat_multilabel` (sigmoid, multi-label)
    swapped for spaCy's exclusive `textcat` (softmax, one intent per query):
    the same model, listener and place in the pipeline, for single-label data.
    A config without textcat_multilabel is returned unchanged."""
    config = config.copy()
    components = config.get("components", {})
    if "textcat_multilabel" not in components:
        return config
    block = components.pop("textcat_multilabel")
    block["factory"] = "textcat"
    block["scorer"] = {"@scorers": "spacy.textcat_scorer.v2"}
    block["threshold"] = 0.0  # textcat's own default; its decision is the argmax
    block["model"]["exclusive_classes"] = True
    components["textcat"] = block
    config["nlp"]["pipeline"] = [
        "textcat" if name == "textcat_multilabel" else name for name in config["nlp"]["pipeline"]
    ]
    frozen = config.get("training", {}).get("frozen_components", [])
    config["training"]["frozen_components"] = ["textcat" if n == "textcat_multilabel" else n for n in frozen]
    return config


def stock_config(base: Path, train: Optional[Path]) -> Config:
    """The stock peer's config for a training corpus: `textcat_multilabel` on
    multi-label data (or when `train` is None), exclusive `textcat` when every
    training query has exactly one intent."""
    config = merge_config(base)
    if train is not None and not corpus_is_multi_label(train):
        config = exclusive_textcat(config)
    return config
