"""`serve`: the HTTP service (FastAPI + uvicorn, the `[serve]` extra)."""
import json
import os
import tempfile
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg


def serve_cli(
    model: Path = typer.Argument(..., help="Pipeline directory (spacy.load path)"),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind"),
    port: int = typer.Option(8080, "--port", help="TCP port"),
    max_batch: int = typer.Option(32, "--max-batch", help="Texts per model call"),
    max_wait_ms: float = typer.Option(5.0, "--max-wait-ms", help="Longest wait for a batch to fill"),
    max_queue: int = typer.Option(256, "--max-queue", help="Texts allowed to wait; more get 503 + Retry-After"),
    max_delay_ms: float = typer.Option(500.0, "--max-delay-ms", help="Estimated queue wait allowed (from recent batches); more get 503; 0: no limit"),
    timeout_ms: float = typer.Option(10000.0, "--timeout-ms", help="Per-request deadline; past it 504"),
    max_chars: int = typer.Option(2000, "--max-chars", help="Characters per text; more get 413"),
    max_texts: int = typer.Option(256, "--max-texts", help="Texts per request; more get 413"),
    workers: int = typer.Option(1, "--workers", help="Worker processes (each loads the model once)"),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level"),
    access_log: bool = typer.Option(False, "--access-log/--no-access-log", help="Log every request"),
):
    """Serve MODEL over HTTP: POST /parse, POST /model/parse (Rasa), /health, /ready, /metrics, / (demo)."""
    try:
        import uvicorn

        from ..service.app import ENV_CONFIG, Settings, create_app
    except ImportError as err:
        msg.fail(f"serve needs the [serve] extra ({err.name} is missing)", "pip install 'spacy-multitask-intent[serve]'", exits=1)
    if not (model / "config.cfg").is_file():
        msg.fail(f"{model}: not a pipeline directory (no config.cfg)", "give the path spacy.load takes, e.g. training/store_lookup/multitask/model-best", exits=1)
    if workers < 1:
        msg.fail(f"--workers must be >= 1 (got {workers})", exits=1)
    settings = Settings(
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
        max_delay_ms=max_delay_ms or None,
        timeout_ms=timeout_ms,
        max_chars=max_chars,
        max_texts=min(max_texts, max_queue),
        torch_threads=max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None,
    )
    try:
        settings.check()
    except ValueError as err:
        msg.fail(str(err), exits=1)
    # in-flight requests are bounded by their deadline; give them that long to finish on SIGTERM
    graceful = timeout_ms / 1000.0 + 5.0
    common = dict(host=host, port=port, log_level=log_level, access_log=access_log, timeout_graceful_shutdown=graceful)
    if workers == 1:
        uvicorn.run(create_app(str(model), settings), **common)
        return
    # several processes: each imports the app factory and loads the model once
    os.environ[ENV_CONFIG] = json.dumps({"model": str(model), "settings": settings.__dict__})
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="smi-prometheus-")
    uvicorn.run("spacy_multitask_intent.service.app:app_from_env", factory=True, workers=workers, **common)
