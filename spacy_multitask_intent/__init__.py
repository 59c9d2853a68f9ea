"""spacy-multitask-intent: joint query intent + task-specific NER for spaCy."""
from .extensions import install_extensions
from .model import build_encoder, build_intent_ner_model  # registers architectures
from .scoring import make_intent_ner_scorer, score_intent_ner  # registers the scorer
from .component import IntentNER, make_intent_ner  # registers the factory
from .corpus import create_corpus  # registers the reader
from .logger import loss_logger  # registers the logger
from .onnx import build_onnx_intent_ner  # registers OnnxIntentNER.v1 (onnxruntime imported lazily)

__version__ = "0.1.0"

__all__ = [
    "IntentNER",
    "install_extensions",
    "make_intent_ner",
    "build_encoder",
    "build_intent_ner_model",
    "score_intent_ner",
]
