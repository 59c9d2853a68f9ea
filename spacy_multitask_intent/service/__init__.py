"""The HTTP service: FastAPI app (`app.py`), the micro-batcher (`batcher.py`),
Prometheus metrics (`metrics.py`) and the demo page (`static/index.html`).

Needs the `[serve]` extra; nothing here is imported by `import spacy_multitask_intent`.
"""
