"""Load test of `serve` against a naive server and the in-process ceiling.

Loopback only, bounded in time. In one run, one after another on the same model
and the same queries:

1. the in-process ceiling: `nlp.pipe(texts, batch_size=32)` (and `parse_texts`, which
   also builds the records) in a subprocess, measured once per level;
2. this service: `python -m spacy_multitask_intent serve MODEL` (its defaults);
3. the naive server: a FastAPI app calling `nlp(text)` in each request handler.

All three processes are up together and each level runs them back to back, so a
change in a shared machine's load falls on all three alike.

Closed-loop clients (each sends a request, waits for the answer, sends the next)
at concurrency 1, 8, 32 and 128 for `--level-s` seconds each (after a warm-up);
then an overload run at concurrency 512, and a soak (`--soak-s`) at concurrency
32 that reads the server's RSS at its start and end. On 503 a client waits the
Retry-After the server sent, as a well-behaved client does.

The client is a small asyncio HTTP/1.1 keep-alive client (it costs the 2-core
machine far less CPU than a general-purpose client; its CPU time is reported).

    python benchmarks/load.py --model MODEL --data corpus/store_lookup/test.spacy --out bench_out/load
    python benchmarks/load.py --plot-only bench_out/load/load.json --png docs/serve_latency.png
"""
import argparse
import asyncio
import json
import os
import platform
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
LEVELS = [1, 8, 32, 128]


# ------------------------------------------------------------------ data
def read_texts(path: Path, limit: int = 2000) -> List[str]:
    if path.suffix == ".spacy":
        import spacy
        from spacy.tokens import DocBin

        docs = DocBin().from_disk(path).get_docs(spacy.blank("en").vocab)
        texts = [d.text for d in docs]
    elif path.suffix == ".jsonl":
        texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    else:
        texts = [line for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    if not texts:
        raise SystemExit(f"{path}: no texts")
    return texts[:limit]


# ------------------------------------------------------------------ servers
def naive_app(model: str):
    """What users write: one `nlp(text)` per request (FastAPI runs the sync
    handler in its thread pool)."""
    import spacy
    from fastapi import FastAPI
    from pydantic import BaseModel

    import spacy_multitask_intent  # noqa: F401
    from spacy_multitask_intent.records import _intent_pipe, doc_to_record

    nlp = spacy.load(model)
    pipe = _intent_pipe(nlp)
    nlp("warm up")
    app = FastAPI()

    class Query(BaseModel):
        text: str

    @app.post("/parse")
    def parse(query: Query):
        return doc_to_record(nlp(query.text), pipe)

    @app.get("/ready")
    def ready():
        return {"ready": True}

    return app


def run_naive(model: str, port: int) -> None:
    import uvicorn

    uvicorn.run(naive_app(model), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def run_ceiling(model: str, texts: List[str]) -> None:
    """The in-process ceiling as a process: each line N on stdin runs N texts, one JSON line out."""
    import spacy

    import spacy_multitask_intent  # noqa: F401

    nlp = spacy.load(model)
    ceiling(nlp, texts, 64)  # warm
    for line in sys.stdin:
        print(json.dumps(ceiling(nlp, texts, int(line))), flush=True)


def ceiling(nlp, texts: List[str], n: int) -> Dict[str, float]:
    """Queries/s of nlp.pipe(batch_size=32) and parse_texts over n texts, run in a worker
    thread as the service runs its model calls, and nlp.pipe once more in the main thread.

    The main-thread figure is kept because on the loaded 2-core machine torch ran
    several times slower in a process's main thread than in a worker thread (see
    docs/serve.md); the ceiling is the worker-thread figure.
    """
    import concurrent.futures

    from spacy_multitask_intent.records import parse_texts

    stream = [texts[i % len(texts)] for i in range(n)]

    def timed(fn):
        t = time.perf_counter()
        fn()
        return n / (time.perf_counter() - t)

    pipe = lambda: list(nlp.pipe(stream, batch_size=32))  # noqa: E731
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        out = {"n": n}
        out["pipe_qps"] = ex.submit(timed, pipe).result()
        out["parse_texts_qps"] = ex.submit(timed, lambda: parse_texts(nlp, stream, batch_size=32)).result()
    out["pipe_qps_main_thread"] = timed(pipe)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: List[str]) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(port: int, proc: subprocess.Popen, limit_s: float = 300) -> float:
    t = time.monotonic()
    while time.monotonic() - t < limit_s:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return time.monotonic() - t
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit("server not ready in time")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


# ------------------------------------------------------------------ client
class Conn:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader = self.writer = None

    async def request(self, path: str, body: bytes):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(
            b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), len(body), body)
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        payload = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def closed_loop(port: int, texts: List[str], concurrency: int, seconds: float, warmup_s: float = 2.0):
    """Latencies (s) of the 200s, status counts, and throughput of 200s over the measured window."""
    bodies = [json.dumps({"text": t}).encode() for t in texts]
    lat: List[float] = []
    statuses: Dict[int, int] = {}
    errors: Dict[str, int] = {}
    t0 = time.perf_counter()
    measure_from = t0 + warmup_s
    end = measure_from + seconds

    async def worker(i: int) -> None:
        conn = Conn(port)
        rnd = random.Random(i)
        await asyncio.sleep(rnd.random() * 0.05 * min(concurrency, 32) / 32)
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            body = bodies[rnd.randrange(len(bodies))]
            try:
                status, headers, _ = await conn.request("/parse", body)
            except (OSError, asyncio.IncompleteReadError, ValueError) as err:
                conn.close()
                if time.perf_counter() >= measure_from:
                    errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1
                await asyncio.sleep(0.05)
                continue
            done = time.perf_counter()
            if now >= measure_from:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    lat.append(done - now)
            if status == 503:
                await asyncio.sleep(float(headers.get("retry-after", "1")))
        conn.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    window = time.perf_counter() - measure_from
    return lat, statuses, errors, window


def pct(values: List[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def level(port: int, texts: List[str], concurrency: int, seconds: float) -> Dict:
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    lat, statuses, errors, window = asyncio.run(closed_loop(port, texts, concurrency, seconds))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    row = {
        "concurrency": concurrency,
        "seconds": round(window, 2),
        "ok": len(lat),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
        "qps": len(lat) / window,
        "p50_ms": 1000 * pct(lat, 50),
        "p95_ms": 1000 * pct(lat, 95),
        "p99_ms": 1000 * pct(lat, 99),
        "client_cpu_s": round(client_cpu, 2),
    }
    print(
        f"  c={concurrency:4d}  {row['qps']:7.1f} q/s  p50 {row['p50_ms']:7.1f}  p95 {row['p95_ms']:7.1f}  "
        f"p99 {row['p99_ms']:7.1f} ms  statuses {row['statuses']}  errors {errors}  client cpu {client_cpu:.1f}s",
        flush=True,
    )
    return row


def scrape_metrics(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode("utf8", "replace").split("\r\n\r\n", 1)[1]


def mean_batch(metrics_text: str) -> Optional[float]:
    vals = {}
    for line in metrics_text.splitlines():
        for name in ("smi_batch_size_texts_sum", "smi_batch_size_texts_count"):
            if line.startswith(name + " "):
                vals[name] = float(line.split()[1])
    if vals.get("smi_batch_size_texts_count"):
        return vals["smi_batch_size_texts_sum"] / vals["smi_batch_size_texts_count"]
    return None


# ------------------------------------------------------------------ plot
def plot(results: Dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, style in (("service", "o-"), ("naive", "s--")):
        rows = results.get(name, {}).get("levels", [])
        if not rows:
            continue
        cs = [r["concurrency"] for r in rows]
        for key, alpha in (("p50_ms", 1.0), ("p99_ms", 0.5)):
            ax1.plot(cs, [r[key] for r in rows], style, alpha=alpha, label=f"{name} {key[:3]}")
        ax2.plot(cs, [r["qps"] for r in rows], style, label=name)
    crow = results.get("ceiling", {}).get("levels", [])
    if crow:
        ax2.plot([r["concurrency"] for r in crow], [r["pipe_qps"] for r in crow], "k:", label="in-process nlp.pipe(batch_size=32)")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    ax1.set_yscale("log")
    ax1.set_ylabel("latency (ms)")
    ax2.set_ylabel("answered queries / s")
    fig.suptitle("serve vs nlp(text)-per-request (store-lookup model, 2 shared CPU cores)", fontsize=10)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


# ------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=str)
    ap.add_argument("--data", type=Path, help=".spacy, .jsonl ({'text':...}) or .txt (one per line)")
    ap.add_argument("--out", type=Path, default=Path("bench_out/load"))
    ap.add_argument("--levels", default=",".join(map(str, LEVELS)))
    ap.add_argument("--level-s", type=float, default=20.0, help="measured seconds per concurrency level")
    ap.add_argument("--overload", type=int, default=512)
    ap.add_argument("--overload-s", type=float, default=30.0)
    ap.add_argument("--soak-s", type=float, default=600.0, help="soak length (seconds) at concurrency 32")
    ap.add_argument("--soak-concurrency", type=int, default=32)
    ap.add_argument("--ceiling-n", type=int, default=1000, help="texts per ceiling measurement (one per level)")
    ap.add_argument("--servers", default="service,naive", help="which servers to run")
    ap.add_argument("--serve-args", default="", help="extra arguments for `serve`")
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--plot-only", type=Path, default=None, help="redraw the plot from a load.json")
    # internal: the naive server and the ceiling run in their own processes
    ap.add_argument("--naive-server", nargs=2, metavar=("MODEL", "PORT"))
    ap.add_argument("--ceiling", action="store_true")
    args = ap.parse_args()

    if args.naive_server:
        run_naive(args.naive_server[0], int(args.naive_server[1]))
        return
    if args.plot_only:
        plot(json.loads(args.plot_only.read_text()), args.png or args.plot_only.with_suffix(".png"))
        return
    if not args.model or not args.data:
        ap.error("--model and --data are required")
    texts = read_texts(args.data)
    if args.ceiling:
        run_ceiling(args.model, texts)
        return

    args.out.mkdir(parents=True, exist_ok=True)
    levels = [int(x) for x in args.levels.split(",") if x]
    names = [n for n in args.servers.split(",") if n]
    results: Dict = {
        "command": " ".join(["python", *sys.argv]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "load_average_start": os.getloadavg(),
        "model": args.model,
        "data": str(args.data),
        "n_texts": len(texts),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    save = lambda: (args.out / "load.json").write_text(json.dumps(results, indent=1))  # noqa: E731

    # all three processes are up at once (idle ones cost no CPU) and each level runs them
    # back to back, so a change in the shared machine's load hits all three alike
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    ceil = subprocess.Popen(
        [sys.executable, __file__, "--ceiling", "--model", args.model, "--data", str(args.data)],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )

    def ceiling_run() -> Dict[str, float]:
        ceil.stdin.write(f"{args.ceiling_n}\n")
        ceil.stdin.flush()
        line = ceil.stdout.readline()
        if not line:
            raise SystemExit("the ceiling process died")
        return json.loads(line)

    procs, ports = {}, {}
    for name in names:
        port = free_port()
        if name == "service":
            cmd = [sys.executable, "-m", "spacy_multitask_intent", "serve", args.model, "--port", str(port),
                   "--log-level", "warning", *args.serve_args.split()]
        elif name == "naive":
            cmd = [sys.executable, __file__, "--naive-server", args.model, str(port)]
        else:
            raise SystemExit(f"unknown server {name!r}")
        print(f"{name}: {' '.join(cmd[1:])}", flush=True)
        procs[name], ports[name] = start(cmd), port
        results[name] = {"command": " ".join(["python", *cmd[1:]]), "levels": []}
    for name in names:
        results[name]["ready_s"] = round(wait_ready(ports[name], procs[name]), 1)
    results["ceiling"] = {"levels": []}
    try:
        for c in levels:
            print(f"concurrency {c}", flush=True)
            row = ceiling_run()
            row["concurrency"] = c
            print(f"  ceiling  {row}", flush=True)
            results["ceiling"]["levels"].append(row)
            for name in names:
                print(f"  {name}", flush=True)
                results[name]["levels"].append(level(ports[name], texts, c, args.level_s))
            save()
        cl = results["ceiling"]["levels"]
        if cl:
            results["ceiling"]["pipe_qps"] = statistics.median(r["pipe_qps"] for r in cl)
            results["ceiling"]["parse_texts_qps"] = statistics.median(r["parse_texts_qps"] for r in cl)
        if "service" in names:
            results["service"]["mean_batch_after_levels"] = mean_batch(scrape_metrics(ports["service"]))
        if args.overload:
            for name in names:
                print(f"overload at {args.overload}: {name}", flush=True)
                row = level(ports[name], texts, args.overload, args.overload_s)
                row["alive_after"] = procs[name].poll() is None
                results[name]["overload"] = row
                save()
        if "service" in names and args.soak_s > 0:
            proc, port = procs["service"], ports["service"]
            print(f"soak {args.soak_s:.0f} s at {args.soak_concurrency}: service", flush=True)
            level(port, texts, args.soak_concurrency, 5)  # RSS at the start: after a short warm-up
            rss0 = rss_mb(proc.pid)
            soak = level(port, texts, args.soak_concurrency, args.soak_s)
            rss1 = rss_mb(proc.pid)
            soak.update(rss_start_mb=round(rss0, 1), rss_end_mb=round(rss1, 1), rss_change=round(rss1 / rss0 - 1, 4))
            print(f"  RSS {rss0:.1f} MB -> {rss1:.1f} MB ({100 * (rss1 / rss0 - 1):+.2f}%)", flush=True)
            results["service"]["soak"] = soak
    finally:
        for name in names:
            results[name]["exit_code"] = stop(procs[name])
        ceil.stdin.close()
        ceil.wait(timeout=60)
        results["load_average_end"] = os.getloadavg()
        results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        save()
    print(f"wrote {args.out / 'load.json'}")
    plot(results, args.png or args.out / "latency_vs_concurrency.png")


if __name__ == "__main__":
    main()
