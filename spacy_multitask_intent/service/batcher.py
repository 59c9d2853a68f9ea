"""Dynamic micro-batching in front of one `records.parse_texts` call.

Requests put their texts on an asyncio queue. One loop takes the first waiting
request, then gathers more for at most `max_wait_ms` or until `max_batch`
texts, and runs them as one `parse_texts(nlp, texts)` call (one `nlp.pipe`)
in a worker thread, off the event loop. While that call runs, new requests
queue up and form the next batch. Each request's future gets exactly its own
slice of the records.

Overload and failure:
- more than `max_queue` texts waiting, or an estimated wait above `max_delay_ms`
  (texts ahead x the seconds per text measured on recent batches of at least
  half `max_batch`): `QueueFull` at once (the app answers 503 + Retry-After)
  instead of unbounded latency. Counting texts alone is not enough: when the
  machine slows down, a full queue outlives the requests' deadlines and every
  batch is spent on requests that time out (measured, docs/serve.md);
- a request whose deadline passes gets `DeadlineExceeded` (504); if it was
  still queued it is dropped from the queue, if its batch is running the
  result is discarded;
- an exception inside the model fails the batch; the batch's requests are then
  rerun one by one, so only the request whose text raises gets the error and
  the others get their records;
- `close()` stops taking new requests and finishes everything queued or
  running (graceful shutdown).
"""
import asyncio
import concurrent.futures
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

logger = logging.getLogger("spacy_multitask_intent.service")

Record = Dict[str, Any]
# parse(texts, tokens) -> one record per text, in order
ParseFn = Callable[[Sequence[str], bool], List[Record]]


class QueueFull(Exception):
    """More texts are waiting than the queue allows."""


class DeadlineExceeded(Exception):
    """The request's deadline passed before its records were ready."""


class ShuttingDown(Exception):
    """The batcher no longer takes requests."""


@dataclass
class _Item:
    texts: List[str]
    tokens: bool
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)
    taken: bool = False  # picked into a batch (no longer counted in the queue depth)


class Batcher:
    def __init__(
        self,
        parse: ParseFn,
        *,
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 256,
        max_delay_ms: Optional[float] = None,
        metrics=None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and max_wait_ms >= 0")
        self.parse = parse
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.max_delay = None if max_delay_ms is None else max_delay_ms / 1000.0
        self.metrics = metrics
        self._sec_per_text: Optional[float] = None  # EWMA over batches of >= max_batch / 2 texts
        self._in_flight = 0
        self._queue: "asyncio.Queue[_Item]" = asyncio.Queue()
        self._depth = 0  # texts waiting, not yet taken into a batch
        self._carry: Optional[_Item] = None  # taken from the queue but left for the next batch
        self._closing = False
        self._task: Optional[asyncio.Task] = None
        # one thread: batches run one after another; torch uses all cores inside each
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="smi-batch")

    # ------------------------------------------------------------ public
    @property
    def depth(self) -> int:
        return self._depth

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="smi-batcher")

    async def submit(self, texts: Sequence[str], tokens: bool = False, timeout: Optional[float] = None) -> List[Record]:
        """The records of `texts`, in order. Raises QueueFull, DeadlineExceeded,
        ShuttingDown, or the model's own exception."""
        if self._closing:
            raise ShuttingDown("the service is shutting down")
        texts = list(texts)
        if self._depth + len(texts) > self.max_queue:
            raise QueueFull(f"{self._depth} texts are waiting (limit {self.max_queue})")
        if self.max_delay is not None and self._sec_per_text is not None:
            wait = (self._depth + self._in_flight + len(texts)) * self._sec_per_text
            if wait > self.max_delay:
                raise QueueFull(
                    f"estimated wait {wait * 1000:.0f} ms for {self._depth + self._in_flight} texts ahead "
                    f"(limit {self.max_delay * 1000:.0f} ms)"
                )
        item = _Item(texts, bool(tokens), asyncio.get_running_loop().create_future())
        self._add_depth(len(texts))
        self._queue.put_nowait(item)
        try:
            if timeout is None:
                return await asyncio.shield(item.future)
            return await asyncio.wait_for(asyncio.shield(item.future), timeout)
        except asyncio.TimeoutError:
            self._abandon(item)
            raise DeadlineExceeded(f"no answer within {timeout * 1000:.0f} ms") from None
        except asyncio.CancelledError:  # the client went away
            self._abandon(item)
            raise

    async def close(self) -> None:
        """Stop taking requests; finish the queued and running ones."""
        self._closing = True
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._executor.shutdown(wait=True)

    # ----------------------------------------------------------- internals
    def _add_depth(self, n: int) -> None:
        self._depth += n
        if self.metrics is not None:
            self.metrics.queue_depth.set(self._depth)

    def _abandon(self, item: _Item) -> None:
        if not item.taken:
            item.taken = True
            self._add_depth(-len(item.texts))
        if not item.future.done():
            item.future.cancel()

    def _take(self, item: _Item) -> bool:
        """Count `item` out of the queue; False if it was abandoned already."""
        if item.taken:
            return False
        item.taken = True
        self._add_depth(-len(item.texts))
        return not item.future.done()

    async def _next_item(self, timeout: Optional[float]) -> Optional[_Item]:
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        if timeout is None:
            return await self._queue.get()
        if timeout <= 0:
            try:
                return self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next_item(None)
            batch: List[_Item] = []
            done_items: List[_Item] = [first]
            if self._take(first):
                batch.append(first)
            n = sum(len(i.texts) for i in batch)
            deadline = loop.time() + self.max_wait
            while n < self.max_batch:
                item = await self._next_item(deadline - loop.time())
                if item is None:
                    break
                if item.taken or item.future.done():
                    done_items.append(item)
                    continue
                if batch and n + len(item.texts) > self.max_batch:
                    self._carry = item  # starts the next batch
                    break
                self._take(item)
                done_items.append(item)
                batch.append(item)
                n += len(item.texts)
            try:
                if batch:
                    await self._run_batch(batch)
            except Exception:  # never let the loop die: every request must get an answer
                logger.exception("micro-batch failed outside the model")
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(RuntimeError("internal error in the batcher"))
            finally:
                for _ in done_items:
                    self._queue.task_done()

    async def _call(self, texts: List[str], tokens: bool) -> List[Record]:
        loop = asyncio.get_running_loop()
        if self.metrics is not None:
            self.metrics.batch_size.observe(len(texts))
            self.metrics.in_flight.set(len(texts))
        self._in_flight = len(texts)
        start = time.perf_counter()
        try:
            records = await loop.run_in_executor(self._executor, self.parse, texts, tokens)
        finally:
            self._in_flight = 0
            if self.metrics is not None:
                self.metrics.in_flight.set(0)
        if 2 * len(texts) >= self.max_batch:
            per_text = (time.perf_counter() - start) / len(texts)
            old = self._sec_per_text
            self._sec_per_text = per_text if old is None else 0.7 * old + 0.3 * per_text
        if len(records) != len(texts):
            raise RuntimeError(f"the model returned {len(records)} records for {len(texts)} texts")
        return records

    async def _run_batch(self, batch: List[_Item]) -> None:
        texts = [t for item in batch for t in item.texts]
        tokens = any(item.tokens for item in batch)
        try:
            records = await self._call(texts, tokens)
        except Exception as err:
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(err)
                return
            logger.warning("batch of %d requests failed (%r); rerunning them one by one", len(batch), err)
            for item in batch:
                if item.future.done():
                    continue
                try:
                    result = await self._call(item.texts, item.tokens)
                except Exception as one_err:
                    if not item.future.done():
                        item.future.set_exception(one_err)
                else:
                    if not item.future.done():
                        item.future.set_result(result)
            return
        start = 0
        for item in batch:
            mine = records[start : start + len(item.texts)]
            start += len(item.texts)
            if not item.tokens:
                mine = [{k: v for k, v in r.items() if k != "tokens"} for r in mine]
            if not item.future.done():
                item.future.set_result(mine)
