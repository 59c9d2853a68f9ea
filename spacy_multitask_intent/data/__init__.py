"""Data converters (BIO folders, JSONL, MASSIVE-style brackets, Rasa NLU YAML,
Prodigy JSONL) and the embedded default "store lookup" dataset generator.

Import the submodules directly, e.g.
``from spacy_multitask_intent.data.convert import convert``.
"""
