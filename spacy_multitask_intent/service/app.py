"""The FastAPI app: `create_app(model_path, settings)`.

Endpoints: POST /parse, POST /model/parse (Rasa NLU's parse shape), GET /health,
GET /ready, GET /metrics (Prometheus text), GET / (the demo page).

The pipeline is loaded once per worker process, in a background thread started
by the app's lifespan, and warmed with one small batch; /ready answers 200 after
that (and /parse answers 503 + Retry-After before). Every text goes through the
micro-batcher (`batcher.py`) and `records.parse_texts`, so the thresholds and
gating saved in the pipeline apply.
"""
import asyncio
import json
import logging
import os
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from .batcher import Batcher, DeadlineExceeded, QueueFull, ShuttingDown
from .metrics import Metrics

logger = logging.getLogger("spacy_multitask_intent.service")

STATIC = Path(__file__).parent / "static"
WARMUP_TEXTS = ["pickup my order at the store", "hello"]
ENDPOINTS = {"/parse", "/model/parse", "/health", "/ready", "/metrics", "/settings", "/"}


@dataclass
class Settings:
    max_batch: int = 32  # texts per model call
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for company
    max_queue: int = 256  # texts allowed to wait; beyond: 503 + Retry-After
    max_delay_ms: Optional[float] = 500.0  # estimated queue wait allowed; beyond: 503 (None: no limit)
    timeout_ms: float = 10000.0  # per-request deadline; beyond: 504
    max_chars: int = 2000  # per text; beyond: 413
    max_texts: int = 256  # per request; beyond: 413
    retry_after_s: int = 1
    torch_threads: Optional[int] = None  # None: torch's default

    def check(self) -> None:
        problems = []
        for name in ("max_batch", "max_queue", "max_chars", "max_texts", "retry_after_s"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.max_wait_ms < 0:
            problems.append(f"max_wait_ms must be >= 0 (got {self.max_wait_ms})")
        if self.max_delay_ms is not None and self.max_delay_ms <= 0:
            problems.append(f"max_delay_ms must be > 0 (got {self.max_delay_ms})")
        if self.timeout_ms <= 0:
            problems.append(f"timeout_ms must be > 0 (got {self.timeout_ms})")
        if self.max_texts > self.max_queue:
            problems.append(f"max_texts ({self.max_texts}) must not exceed max_queue ({self.max_queue})")
        if problems:
            raise ValueError("; ".join(problems))


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


# ------------------------------------------------------------------ input
PARSE_HINT = 'send {"text": "..."} or {"texts": ["...", ...]}, optionally with "tokens": true'


def _json_body(raw: bytes, hint: str) -> Dict[str, Any]:
    if not raw.strip():
        raise BadRequest(422, f"the request body is empty; {hint}")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(422, f"the request body is not valid JSON ({err}); {hint}") from None
    if not isinstance(body, dict):
        raise BadRequest(422, f"the request body is a JSON {type(body).__name__}, not an object; {hint}")
    return body


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", bool: "boolean", type(None): "null", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def validate_parse(body: Dict[str, Any], settings: Settings) -> Tuple[List[str], bool, bool]:
    """(texts, tokens, single) from a /parse body, or BadRequest saying what to fix."""
    unknown = sorted(set(body) - {"text", "texts", "tokens"})
    if unknown:
        raise BadRequest(422, f"unknown field(s) {', '.join(map(repr, unknown))}; {PARSE_HINT}")
    if ("text" in body) == ("texts" in body):
        which = "both" if "text" in body else "neither"
        raise BadRequest(422, f'the body has {which} of "text" and "texts"; {PARSE_HINT}')
    tokens = body.get("tokens", False)
    if not isinstance(tokens, bool):
        raise BadRequest(422, f'"tokens" must be true or false, not {_type_name(tokens)}')
    if "text" in body:
        texts, single = [body["text"]], True
        names = ['"text"']
    else:
        texts, single = body["texts"], False
        if not isinstance(texts, list):
            raise BadRequest(422, f'"texts" must be an array of strings, not {_type_name(texts)}; {PARSE_HINT}')
        if not texts:
            raise BadRequest(422, f'"texts" is an empty array; give at least one text; {PARSE_HINT}')
        if len(texts) > settings.max_texts:
            raise BadRequest(
                413, f'"texts" has {len(texts)} texts; the limit is {settings.max_texts} per request: split it'
            )
        names = [f'"texts"[{i}]' for i in range(len(texts))]
    for name, text in zip(names, texts):
        if not isinstance(text, str):
            raise BadRequest(422, f"{name} must be a string, not {_type_name(text)}")
        if len(text) > settings.max_chars:
            raise BadRequest(
                413, f"{name} has {len(text)} characters; the limit is {settings.max_chars}: shorten or split it"
            )
    return texts, tokens, single


# ------------------------------------------------------------------ output
def to_rasa(record: Dict[str, Any]) -> Dict[str, Any]:
    """A record in Rasa NLU's parse shape (what Rasa's POST /model/parse returns)."""
    scores = record["intent_scores"]  # ranked high to low
    ranking = [{"name": name, "confidence": conf} for name, conf in scores.items()]
    decided = [name for name in scores if name in set(record["intents"])]
    if decided:
        intent = {"name": decided[0], "confidence": scores[decided[0]]}
    else:
        intent = {"name": None, "confidence": 0.0}
    entities = [
        {
            "entity": e["label"],
            "start": e["start"],
            "end": e["end"],
            "value": e["text"],
            "confidence_entity": e["confidence"],
            "extractor": "intent_ner",
        }
        for e in record["entities"]
    ]
    return {"text": record["text"], "intent": intent, "entities": entities, "intent_ranking": ranking}


# ------------------------------------------------------------------ metrics middleware
class MetricsMiddleware:
    """Counts every answered request by endpoint and status and times it (pure ASGI)."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        endpoint = path if path in ENDPOINTS else "other"
        status = {"code": 500}
        start = time.perf_counter()

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(endpoint, str(status["code"])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


# ------------------------------------------------------------------ the app
def default_loader(model_path: str, settings: Settings) -> Callable:
    """Load the pipeline (once, in this process) and return parse(texts, tokens)."""
    import spacy

    import spacy_multitask_intent  # noqa: F401  (registrations)
    from ..records import parse_texts

    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    nlp = spacy.load(model_path)
    batch_size = settings.max_batch

    def parse(texts, tokens):
        return parse_texts(nlp, texts, batch_size=batch_size, tokens=tokens)

    return parse


class State:
    def __init__(self) -> None:
        self.ready = False
        self.load_error: Optional[str] = None
        self.batcher: Optional[Batcher] = None
        self.loaded_in: Optional[float] = None


def create_app(model_path: str, settings: Optional[Settings] = None, loader: Callable = default_loader) -> FastAPI:
    """The service for the pipeline at `model_path`. `loader(model_path, settings)`
    runs once per process, in a thread, and returns parse(texts, tokens)."""
    settings = settings or Settings()
    settings.check()
    metrics = Metrics()
    state = State()

    async def load() -> None:
        start = time.perf_counter()
        try:
            parse = await asyncio.to_thread(loader, str(model_path), settings)
            await asyncio.to_thread(parse, WARMUP_TEXTS, True)  # warm: first call pays lazy inits
        except Exception as err:  # the process stays up and says why it is not ready
            logger.exception("loading %s failed", model_path)
            state.load_error = f"{type(err).__name__}: {err}"
            return
        batcher = Batcher(
            parse,
            max_batch=settings.max_batch,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue,
            max_delay_ms=settings.max_delay_ms,
            metrics=metrics,
        )
        batcher.start()
        state.batcher = batcher
        state.loaded_in = time.perf_counter() - start
        state.ready = True
        logger.info("model %s loaded and warmed in %.1f s (pid %d)", model_path, state.loaded_in, os.getpid())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loading = asyncio.get_running_loop().create_task(load())
        try:
            yield
        finally:
            # uvicorn has stopped taking connections and finished the requests in
            # flight; finish whatever the batcher still holds, then stop it
            state.ready = False
            if not loading.done():
                loading.cancel()
            if state.batcher is not None:
                await state.batcher.close()

    app = FastAPI(
        title="spacy-multitask-intent",
        description="Query intent + task-specific entities (intent_ner), micro-batched",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = state
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    retry = {"Retry-After": str(settings.retry_after_s)}

    async def run(texts: List[str], tokens: bool):
        """Records of `texts`, or an error response."""
        if not state.ready or state.batcher is None:
            if state.load_error:
                return error(503, f"the model failed to load: {state.load_error}", retry)
            return error(503, "the model is still loading; retry shortly", retry)
        try:
            return await state.batcher.submit(texts, tokens, timeout=settings.timeout_ms / 1000.0)
        except QueueFull as err:
            return error(503, f"the service is overloaded ({err}); retry after {settings.retry_after_s} s", retry)
        except ShuttingDown as err:
            return error(503, str(err), retry)
        except DeadlineExceeded as err:
            return error(504, f"deadline exceeded: {err} (--timeout-ms {settings.timeout_ms:g})")
        except Exception as err:
            logger.exception("the model failed on a request")
            return error(500, f"the model failed on this request: {type(err).__name__}: {err}")

    async def read_body(request: Request, hint: str) -> Dict[str, Any]:
        limit = settings.max_texts * settings.max_chars * 4 + 4096
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise BadRequest(413, f"the request body has {length} bytes; the limit is {limit}")
        return _json_body(await request.body(), hint)

    @app.post("/parse", summary="Entities, decided intents and intent scores of each text")
    async def parse_endpoint(request: Request):
        try:
            texts, tokens, single = validate_parse(await read_body(request, PARSE_HINT), settings)
        except BadRequest as err:
            return error(err.status, err.message)
        result = await run(texts, tokens)
        if isinstance(result, Response):
            return result
        return result[0] if single else {"results": result}

    @app.post("/model/parse", summary="Rasa NLU's parse shape: text, intent, intent_ranking, entities")
    async def rasa_parse_endpoint(request: Request):
        hint = 'send {"text": "..."} (Rasa\'s /model/parse body)'
        try:
            body = await read_body(request, hint)
            if "text" not in body:
                raise BadRequest(422, f'the body has no "text"; {hint}')
            texts, _, _ = validate_parse({"text": body["text"]}, settings)
        except BadRequest as err:
            return error(err.status, err.message)
        result = await run(texts, False)
        if isinstance(result, Response):
            return result
        return to_rasa(result[0])

    @app.get("/health", summary="The process is alive")
    async def health():
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/ready", summary="The model is loaded and warmed")
    async def ready():
        if state.ready:
            return {"ready": True, "model": str(model_path), "loaded_in_s": round(state.loaded_in or 0.0, 3)}
        body = {"ready": False, "model": str(model_path)}
        if state.load_error:
            body["error"] = state.load_error
        return JSONResponse(body, status_code=503, headers=retry)

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics_endpoint():
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    @app.get("/", response_class=HTMLResponse, summary="The demo page")
    async def index():
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf8"))

    @app.get("/settings", summary="The service's limits")
    async def settings_endpoint():
        return asdict(settings)

    return app


# -------------------------------------------------------- multi-worker entry point
ENV_CONFIG = "SPACY_MULTITASK_INTENT_SERVE"


def app_from_env() -> FastAPI:
    """uvicorn factory for `--workers N`: model path and settings from the environment."""
    config = json.loads(os.environ[ENV_CONFIG])
    return create_app(config["model"], Settings(**config["settings"]))
