"""The HTTP service (`serve`): the app through an in-process client, and one
real uvicorn subprocess on a free loopback port (SIGTERM drains).

The model is the tiny BERT pipeline trained a few steps; a planted
`smi_test_fault` component (tests/serve_helpers.py) makes marked texts fail,
stall or block, so the error paths run through a real pipeline.
"""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="serve needs the [serve] extra: pip install -e '.[serve]'")
import httpx  # noqa: E402
import spacy  # noqa: E402

import serve_helpers  # noqa: E402
from conftest import ROOT_DIR, TOY  # noqa: E402
from spacy_multitask_intent.records import parse_texts  # noqa: E402
from spacy_multitask_intent.service.app import Settings, create_app, default_loader  # noqa: E402

TEXTS = [t for t, _, _ in TOY]


@pytest.fixture(scope="module")
def models(tiny_bert, tmp_path_factory):
    return serve_helpers.save_models(tiny_bert, tmp_path_factory.mktemp("serve_models"))


@pytest.fixture(scope="module")
def plain(models):
    return models[0]


@pytest.fixture(scope="module")
def faulty(models):
    return models[1]


@pytest.fixture(scope="module")
def expected(plain):
    """The records parse_texts gives outside the service (the service must match them)."""
    nlp = spacy.load(plain)
    return {r["text"]: r for r in parse_texts(nlp, TEXTS + ["   "], tokens=True)}


@asynccontextmanager
async def serving(app, wait_ready=True):
    """The app with its lifespan running, and an httpx client talking to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
            if wait_ready:
                for _ in range(600):
                    if (await client.get("/ready")).status_code == 200:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the service never became ready")
            yield client


def run(coro):
    return asyncio.run(coro)


def approx_record(got, want):
    assert got["text"] == want["text"]
    assert [(e["start"], e["end"], e["label"], e["text"]) for e in got["entities"]] == [
        (e["start"], e["end"], e["label"], e["text"]) for e in want["entities"]
    ]
    assert got["intents"] == want["intents"]
    assert got["intent_scores"] == pytest.approx(want["intent_scores"], abs=1e-4)


# ------------------------------------------------------------------ answers
def test_parse_one_and_many_match_parse_texts(plain, expected):
    async def go():
        async with serving(create_app(str(plain))) as c:
            r = await c.post("/parse", json={"text": TEXTS[0]})
            assert r.status_code == 200
            approx_record(r.json(), expected[TEXTS[0]])
            assert "tokens" not in r.json()
            r = await c.post("/parse", json={"texts": TEXTS, "tokens": True})
            assert r.status_code == 200
            results = r.json()["results"]
            assert [x["text"] for x in results] == TEXTS
            for got in results:
                approx_record(got, expected[got["text"]])
                assert [t["text"] for t in got["tokens"]] == [t["text"] for t in expected[got["text"]]["tokens"]]
                assert got["tokens"][0]["intent"] == pytest.approx(expected[got["text"]]["tokens"][0]["intent"], abs=1e-4)

    run(go())


def test_the_trained_toy_model_finds_the_store(expected):
    # the browser test relies on this query being understood
    record = expected["pickup my order at orange store"]
    assert [(e["text"], e["label"]) for e in record["entities"]] == [("orange", "STORE")]
    assert record["intents"] == ["store_lookup"]


def test_concurrent_requests_are_batched_and_each_gets_its_own(plain, expected):
    settings = Settings(max_batch=16, max_wait_ms=50, max_delay_ms=None)

    async def go():
        app = create_app(str(plain), settings)
        async with serving(app) as c:
            jobs = []
            for i in range(48):
                text = TEXTS[i % len(TEXTS)]
                if i % 3 == 0:
                    jobs.append(c.post("/parse", json={"texts": [text, TEXTS[(i + 1) % len(TEXTS)]]}))
                else:
                    jobs.append(c.post("/parse", json={"text": text, "tokens": i % 2 == 0}))
            answers = await asyncio.gather(*jobs)
            for i, r in enumerate(answers):
                assert r.status_code == 200, r.text
                body = r.json()
                if i % 3 == 0:
                    want = [TEXTS[i % len(TEXTS)], TEXTS[(i + 1) % len(TEXTS)]]
                    assert [x["text"] for x in body["results"]] == want
                    for got in body["results"]:
                        approx_record(got, expected[got["text"]])
                else:
                    approx_record(body, expected[TEXTS[i % len(TEXTS)]])
                    assert ("tokens" in body) == (i % 2 == 0)
            metrics = (await c.get("/metrics")).text
        # 64 texts went through fewer model calls than requests: they were batched
        calls = _metric(metrics, "smi_batch_size_texts_count")
        texts = _metric(metrics, "smi_batch_size_texts_sum")
        assert texts == 64  # the warm-up call does not go through the batcher
        assert calls < 48

    run(go())


def _metric(text, name, labels=""):
    for line in text.splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not in /metrics")


def test_rasa_parse_shape(plain, expected):
    async def go():
        async with serving(create_app(str(plain))) as c:
            r = await c.post("/model/parse", json={"text": "pickup my order at orange store", "message_id": "x"})
            assert r.status_code == 200
            body = r.json()
            want = expected["pickup my order at orange store"]
            assert set(body) == {"text", "intent", "entities", "intent_ranking"}
            assert body["text"] == want["text"]
            assert body["intent"]["name"] == "store_lookup"
            assert body["intent"]["confidence"] == pytest.approx(want["intent_scores"]["store_lookup"], abs=1e-4)
            assert [x["name"] for x in body["intent_ranking"]] == list(want["intent_scores"])
            confs = [x["confidence"] for x in body["intent_ranking"]]
            assert confs == sorted(confs, reverse=True)
            (ent,) = body["entities"]
            assert {k: ent[k] for k in ("entity", "start", "end", "value")} == {
                "entity": "STORE", "start": 19, "end": 25, "value": "orange"
            }
            assert 0 < ent["confidence_entity"] <= 1
            r = await c.post("/model/parse", json={"txt": "hello"})
            assert r.status_code == 422 and '"text"' in r.json()["error"]

    run(go())


def test_whitespace_only_text_gets_no_entities_and_no_intents(plain):
    async def go():
        async with serving(create_app(str(plain))) as c:
            r = await c.post("/parse", json={"texts": ["   ", "\n\t", ""], "tokens": True})
            assert r.status_code == 200
            for record in r.json()["results"]:
                assert record["entities"] == [] and record["intents"] == [] and record["intent_scores"] == {}
            r = await c.post("/model/parse", json={"text": "  "})
            assert r.json()["intent"] == {"name": None, "confidence": 0.0}
            assert r.json()["entities"] == [] and r.json()["intent_ranking"] == []

    run(go())


# ------------------------------------------------------------------ bad input
BAD = [
    (b'{"text": "unterminated', "not valid JSON"),
    (b"", "body is empty"),
    (b'["a list"]', "not an object"),
    (b"{}", 'neither of "text" and "texts"'),
    (b'{"text": "a", "texts": ["b"]}', 'both of "text" and "texts"'),
    (b'{"text": 5}', '"text" must be a string, not number'),
    (b'{"text": null}', '"text" must be a string, not null'),
    (b'{"texts": []}', "empty array"),
    (b'{"texts": "abc"}', '"texts" must be an array'),
    (b'{"texts": ["ok", 3]}', '"texts"[1] must be a string'),
    (b'{"txt": "typo"}', "unknown field(s) 'txt'"),
    (b'{"text": "a", "tokens": "yes"}', '"tokens" must be true or false'),
]


def test_bad_input_gets_422_saying_what_to_fix(plain):
    async def go():
        async with serving(create_app(str(plain))) as c:
            for raw, message in BAD:
                r = await c.post("/parse", content=raw, headers={"content-type": "application/json"})
                assert r.status_code == 422, (raw, r.text)
                body = r.json()
                assert message in body["error"], (raw, body)
                assert body["status"] == 422
            # the service still answers afterwards
            assert (await c.post("/parse", json={"text": "hello"})).status_code == 200

    run(go())


def test_too_long_text_and_too_many_texts_get_413(plain):
    settings = Settings(max_chars=50, max_texts=4)

    async def go():
        async with serving(create_app(str(plain), settings)) as c:
            r = await c.post("/parse", json={"text": "a" * 51})
            assert r.status_code == 413 and "51 characters; the limit is 50" in r.json()["error"]
            r = await c.post("/parse", json={"texts": ["ok", "b" * 60]})
            assert r.status_code == 413 and '"texts"[1] has 60 characters' in r.json()["error"]
            r = await c.post("/parse", json={"texts": ["x"] * 5})
            assert r.status_code == 413 and "5 texts; the limit is 4" in r.json()["error"]
            r = await c.post("/model/parse", json={"text": "a" * 51})
            assert r.status_code == 413
            r = await c.post("/parse", content=b"x" * 10_000, headers={"content-type": "application/json"})
            assert r.status_code == 413 and "bytes" in r.json()["error"]
            assert (await c.post("/parse", json={"text": "a" * 50})).status_code == 200

    run(go())


# ------------------------------------------------------------------ overload and failures
def test_full_queue_gets_503_with_retry_after(faulty):
    settings = Settings(max_batch=1, max_wait_ms=0, max_queue=2, max_texts=2, max_delay_ms=None)
    serve_helpers.GATE.clear()

    async def go():
        async with serving(create_app(str(faulty), settings)) as c:
            blocked = asyncio.ensure_future(c.post("/parse", json={"text": "GATEQ one"}))
            await _until(lambda: c.get("/metrics"), "smi_batch_in_flight_texts 1.0")
            queued = asyncio.ensure_future(c.post("/parse", json={"texts": ["two", "three"]}))
            await _until(lambda: c.get("/metrics"), "smi_queue_depth_texts 2.0")
            r = await c.post("/parse", json={"text": "four"})
            assert r.status_code == 503
            assert r.headers["retry-after"] == "1"
            assert "overloaded" in r.json()["error"]
            metrics = (await c.get("/metrics")).text
            assert 'smi_requests_total{endpoint="/parse",status="503"} 1.0' in metrics
            serve_helpers.GATE.set()
            a, b = await asyncio.gather(blocked, queued)
            assert a.status_code == 200 and a.json()["text"] == "GATEQ one"
            assert b.status_code == 200 and [x["text"] for x in b.json()["results"]] == ["two", "three"]
            assert (await c.post("/parse", json={"text": "four"})).status_code == 200

    try:
        run(go())
    finally:
        serve_helpers.GATE.set()


def test_estimated_wait_over_max_delay_gets_503(faulty):
    # a batch of 4 texts taking SLOW_S measures about SLOW_S / 4 seconds per text
    settings = Settings(max_batch=4, max_wait_ms=50, max_delay_ms=3000)

    async def go():
        async with serving(create_app(str(faulty), settings)) as c:
            r = await c.post("/parse", json={"texts": ["SLOWQ a", "b", "c", "d"]})
            assert r.status_code == 200
            running = asyncio.ensure_future(c.post("/parse", json={"texts": ["SLOWQ e", "f", "g", "h"]}))
            await _until(lambda: c.get("/metrics"), "smi_batch_in_flight_texts 4.0")
            # (4 texts ahead + 12) x about SLOW_S / 4 = 6 s > 3 s
            r = await c.post("/parse", json={"texts": ["x"] * 12})
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert "estimated wait" in r.json()["error"]
            assert (await running).status_code == 200

    run(go())


async def _until(get, needle, tries=400):
    for _ in range(tries):
        if needle in (await get()).text:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{needle!r} never appeared")


def test_request_past_its_deadline_gets_504_and_the_service_recovers(faulty):
    settings = Settings(timeout_ms=300, max_wait_ms=0)

    async def go():
        async with serving(create_app(str(faulty), settings)) as c:
            r = await c.post("/parse", json={"text": "SLOWQ query"})
            assert r.status_code == 504
            assert "deadline" in r.json()["error"]
            # once the stalled batch is over, the service answers in time again
            await asyncio.sleep(serve_helpers.SLOW_S)
            r = await c.post("/parse", json={"text": "pickup my order at orange store"})
            assert r.status_code == 200
            metrics = (await c.get("/metrics")).text
            assert 'smi_requests_total{endpoint="/parse",status="504"} 1.0' in metrics

    run(go())


def test_model_exception_fails_only_that_request(faulty, expected):
    settings = Settings(max_batch=32, max_wait_ms=100)

    async def go():
        async with serving(create_app(str(faulty), settings)) as c:
            jobs = [c.post("/parse", json={"text": t}) for t in TEXTS[:3]]
            jobs.insert(1, c.post("/parse", json={"text": "EXPLODE now"}))
            answers = await asyncio.gather(*jobs)
            assert answers[1].status_code == 500
            assert "ValueError: planted failure for EXPLODE" in answers[1].json()["error"]
            for r in answers[:1] + answers[2:]:
                assert r.status_code == 200
                approx_record(r.json(), expected[r.json()["text"]])
            metrics = (await c.get("/metrics")).text
            # the four requests went into one batch, which failed and was rerun one by one
            assert _metric(metrics, "smi_batch_size_texts_count") >= 2
            r = await c.post("/parse", json={"texts": TEXTS})
            assert r.status_code == 200 and len(r.json()["results"]) == len(TEXTS)

    run(go())


def test_health_ready_and_metrics(plain):
    import threading

    release = threading.Event()

    def slow_loader(path, settings):
        release.wait(30)
        return default_loader(path, settings)

    async def go():
        app = create_app(str(plain), loader=slow_loader)
        async with serving(app, wait_ready=False) as c:
            assert (await c.get("/health")).status_code == 200
            r = await c.get("/ready")
            assert r.status_code == 503 and r.json()["ready"] is False
            r = await c.post("/parse", json={"text": "hello"})
            assert r.status_code == 503 and r.headers["retry-after"] == "1" and "loading" in r.json()["error"]
            release.set()
            await _until(lambda: c.get("/ready"), '"ready":true')
            assert (await c.post("/parse", json={"text": "hello"})).status_code == 200
            await c.post("/parse", json={"text": 1})
            r = await c.get("/metrics")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            text = r.text
            for needle in (
                'smi_requests_total{endpoint="/parse",status="200"} 1.0',
                'smi_requests_total{endpoint="/parse",status="422"} 1.0',
                'smi_requests_total{endpoint="/parse",status="503"} 1.0',
                'smi_request_latency_seconds_bucket{endpoint="/parse",le="0.1"}',
                "smi_batch_size_texts_bucket",
                "smi_queue_depth_texts 0.0",
            ):
                assert needle in text, needle
            page = await c.get("/")
            assert page.status_code == 200 and 'id="query"' in page.text and "<script>" in page.text
            assert "http://" not in page.text and "https://" not in page.text  # no CDN

    run(go())


def test_a_model_that_fails_to_load_is_reported_not_ready(tmp_path):
    (tmp_path / "config.cfg").write_text("[nlp]\nlang = \"xx_no_such_language\"\n")

    async def go():
        async with serving(create_app(str(tmp_path)), wait_ready=False) as c:
            await _until(lambda: c.get("/ready"), '"error"')
            r = await c.get("/ready")
            assert r.status_code == 503 and r.json()["ready"] is False
            r = await c.post("/parse", json={"text": "hi"})
            assert r.status_code == 503 and "failed to load" in r.json()["error"]
            assert (await c.get("/health")).status_code == 200

    run(go())


def test_serve_cli_refuses_a_path_that_is_not_a_pipeline(tmp_path):
    from typer.testing import CliRunner

    from spacy_multitask_intent.__main__ import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "not a pipeline directory" in result.output


# ------------------------------------------------------------------ a real server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, *args: str) -> subprocess.Popen:
    """`python -m spacy_multitask_intent serve` in a subprocess (with the test's
    fault component registered first)."""
    code = (
        "import sys; sys.path.insert(0, {tests!r}); import serve_helpers; "
        "from spacy_multitask_intent.__main__ import app; "
        "sys.argv = ['spacy_multitask_intent'] + {argv!r}; app()"
    ).format(tests=str(ROOT_DIR / "tests"), argv=["serve", str(model), "--port", str(port), *args])
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_real_uvicorn_server_serves_and_drains_on_sigterm(faulty, expected):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(faulty, port, "--max-wait-ms", "5")
    try:
        serve_helpers.wait_ready(base, proc)
        r = httpx.post(base + "/parse", json={"text": "pickup my order at orange store"}, timeout=30)
        assert r.status_code == 200
        approx_record(r.json(), expected["pickup my order at orange store"])
        assert httpx.post(base + "/model/parse", json={"text": "hi"}, timeout=30).status_code == 200
        assert "smi_requests_total" in httpx.get(base + "/metrics", timeout=5).text

        async def in_flight():
            async with httpx.AsyncClient(base_url=base, timeout=60) as c:
                # slow requests (SLOW_S each, run one batch after another) are in flight when SIGTERM lands
                jobs = [asyncio.ensure_future(c.post("/parse", json={"text": f"SLOWQ {i}"})) for i in range(3)]
                jobs.append(asyncio.ensure_future(c.post("/parse", json={"texts": TEXTS})))
                await asyncio.sleep(0.5)
                sent = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                answers = await asyncio.gather(*jobs)
                return answers, time.monotonic() - sent

        answers, _ = asyncio.run(in_flight())
        for r in answers:
            assert r.status_code == 200, r.text
        assert [r.json()["text"] for r in answers[:3]] == [f"SLOWQ {i}" for i in range(3)]
        assert [x["text"] for x in answers[3].json()["results"]] == TEXTS
        # uvicorn re-raises SIGTERM once it has shut down cleanly, so the exit status is -SIGTERM (or 0)
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        with pytest.raises(httpx.TransportError):
            httpx.get(base + "/health", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stdout.read().decode()
    assert "Finished server process" in log, log
    assert "Traceback" not in log, log
