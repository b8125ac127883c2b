"""The group-commit writer: many messages per transaction, acked only after COMMIT.

The MQTT network thread only appends to a deque; this thread takes up to
``max_messages`` (waiting at most ``max_ms`` after the first one arrived for
more), validates them, commits them in one SQLite transaction, then acks them
in arrival order. It blocks on nothing but SQLite: when the database cannot be
written it keeps the messages unacknowledged (the broker keeps them too),
reports the fault, and retries with backoff until it succeeds or is stopped.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from gateway.ingest.metrics import IngestMetrics
from gateway.ingest.validate import ReadingRejected, Validator
from gateway.store import Changes, Reject, Store, StoreUnavailable, write_health

log = logging.getLogger("gateway.ingest")

# (mid, qos, topic, payload, receive time, connection generation, retained)
Incoming = tuple[int, int, str, bytes, float, int, bool]
AckFn = Callable[[int, int, int], None]

BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 5.0
LATENCY_WINDOW = 100_000
REJECT_LOG_INTERVAL_S = 10.0


class GroupWriter:
    def __init__(self, store: Store, validator: Validator, ack: AckFn, metrics: IngestMetrics,
                 *, max_messages: int = 1000, max_ms: float = 5.0,
                 retention: Callable[[], None] | None = None,
                 retention_interval_s: float = 60.0) -> None:
        self.store = store
        self.validator = validator
        self.ack = ack
        self.metrics = metrics
        self.max_messages = max(1, max_messages)
        self.max_s = max_ms / 1000.0
        self.retention = retention
        self.retention_interval_s = retention_interval_s
        self.queue: collections.deque[Incoming] = collections.deque()
        self._wake = threading.Event()
        self._full = threading.Event()
        self._stop = threading.Event()
        self._abandon = threading.Event()
        self._thread: threading.Thread | None = None
        self.latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self.totals: dict[str, int] = collections.defaultdict(int)
        self.rejected_by_reason: dict[str, int] = collections.defaultdict(int)
        self.implausible_by_channel: dict[str, int] = collections.defaultdict(int)
        self.store_ok = True
        self.last_error: str | None = None
        self.unavailable_since: float | None = None
        self.health_extra: dict[str, Any] = {}
        self.last_commit_at = 0.0
        self._next_reject_log = 0.0
        metrics.queue_depth.set_function(lambda: len(self.queue))
        metrics.store_available.set(1)

    # ------------------------------------------------------------ producer side (MQTT thread)
    def offer(self, item: Incoming) -> None:
        queue = self.queue
        queue.append(item)
        n = len(queue)
        if n == 1:
            self._wake.set()
        elif n >= self.max_messages:
            self._full.set()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._thread.start()
        self._report_health()

    def stop(self, timeout: float = 5.0) -> bool:
        """Commit what is in hand, then stop; give up (unacked) after ``timeout``."""
        self._stop.set()
        self._wake.set()
        self._full.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandon.set()
            self._thread.join(1.0)
        return not self._thread.is_alive()

    # ------------------------------------------------------------ consumer side
    def _run(self) -> None:
        queue = self.queue
        next_retention = time.monotonic() + self.retention_interval_s
        while True:
            if self.retention and time.monotonic() >= next_retention:
                next_retention = time.monotonic() + self.retention_interval_s
                self._run_retention()
            if not queue:
                if self._stop.is_set():
                    return
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            if len(queue) < self.max_messages and self.max_s > 0 and not self._stop.is_set():
                wait = queue[0][4] + self.max_s - time.time()
                if wait > 0:
                    self._full.wait(min(wait, self.max_s))
                self._full.clear()
            take = min(len(queue), self.max_messages)
            group = [queue.popleft() for _ in range(take)]
            if not self._commit(group):
                return  # abandoned while the store was unavailable: nothing acked

    def _prepare(self, group: list[Incoming]) -> tuple[Changes, dict[str, int]]:
        changes = Changes()
        kinds: dict[str, int] = collections.defaultdict(int)
        add = self.validator.add
        for _mid, _qos, topic, payload, recv, _gen, retained in group:
            try:
                try:
                    kinds[add(topic, payload, recv, changes, retained).kind] += 1
                except (ReadingRejected, StoreUnavailable):
                    raise
                except Exception as exc:
                    # a bug must not turn one message into a poison pill that stalls ingest
                    log.exception("validating a message on %s failed", topic)
                    raise ReadingRejected("internal", f"{type(exc).__name__}: {exc}") from exc
            except ReadingRejected as rej:
                kinds["rejected"] += 1
                changes.rejects.append(Reject(time=recv, topic=topic, device=rej.device,
                                              reason=rej.reason, detail=rej.detail,
                                              payload=payload))
                if rej.device is not None:
                    key = self.store.device_key(rej.device)
                    if key is not None:
                        changes.device_rejects[key] = changes.device_rejects.get(key, 0) + 1
        return changes, kinds

    def _commit(self, group: list[Incoming]) -> bool:
        backoff = BACKOFF_MIN_S
        while True:
            try:
                changes, kinds = self._prepare(group)
                result = self.store.commit(changes)
                break
            except StoreUnavailable as exc:
                self._fault(str(exc))
                if self._abandon.wait(backoff):
                    return False
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            except Exception as exc:  # not expected to pass, but never ack what is not stored
                log.exception("commit failed unexpectedly")
                self._fault(f"{type(exc).__name__}: {exc}")
                if self._abandon.wait(backoff):
                    return False
                backoff = min(backoff * 2, BACKOFF_MAX_S)
        now = time.time()
        if not self.store_ok:
            log.warning("store writable again after %.1f s; acknowledging resumes",
                        now - (self.unavailable_since or now))
            self.last_error = None
            self.unavailable_since = None
            self.metrics.store_available.set(1)
            self._report_health(ok=True)
            self.store_ok = True
        ack = self.ack
        self.last_commit_at = now
        for mid, qos, _topic, _payload, _recv, gen, _retained in group:
            if qos:
                ack(mid, qos, gen)
        # bookkeeping after the acks, so they leave as early as possible
        lat = [now - item[4] for item in group]
        self.latencies.extend(lat)
        m = self.metrics
        for value in lat:
            m.latency.observe(value)
        m.commit_batch.observe(len(group))
        for kind, count in kinds.items():
            if kind != "rejected":
                m.received.labels(kind).inc(count)
        stored, dup = result.total_inserted, result.total_duplicates
        m.stored.inc(stored)
        m.duplicates.inc(dup)
        t = self.totals
        for rej in changes.rejects:
            m.rejected.labels(rej.reason).inc()
            m.received.labels("rejected").inc()
            self.rejected_by_reason[rej.reason] += 1
            t["rejected"] += 1
            log.debug("rejected message on %s: %s: %s", rej.topic, rej.reason, rej.detail)
        for channel, count in changes.implausible.items():
            m.implausible.labels(channel).inc(count)
            self.implausible_by_channel[channel] += count
            t["implausible"] += count
        t["stored"] += stored
        t["duplicates"] += dup
        t["commits"] += 1
        t["messages"] += len(group)  # last: a reader that sees it sees everything above
        if (changes.rejects or changes.flagged) and now >= self._next_reject_log:
            # a flood of garbage must not become a flood of log lines: one line per interval
            rej = (changes.rejects or changes.flagged)[-1]
            log.warning("rejected %d messages so far %s, %d implausible values stored as"
                        " missing; latest on %s: %s: %s (see the quarantine)", t["rejected"],
                        dict(self.rejected_by_reason), t["implausible"], rej.topic, rej.reason,
                        rej.detail)
            self._next_reject_log = now + REJECT_LOG_INTERVAL_S
        return True

    def _fault(self, error: str) -> None:
        self.metrics.store_errors.inc()
        if self.store_ok or error != self.last_error:
            log.error("cannot write the store, not acknowledging (broker keeps the messages),"
                      " retrying: %s", error)
        # metric, error and side file first, the flag stats() reads last: whoever sees the
        # flag sees the rest too
        self.metrics.store_available.set(0)
        self.last_error = error
        if self.unavailable_since is None:
            self.unavailable_since = time.time()
        self._report_health(ok=False)
        self.store_ok = False

    def _run_retention(self) -> None:
        assert self.retention is not None
        try:
            self.retention()
        except StoreUnavailable as exc:
            log.warning("retention skipped, store unavailable: %s", exc)

    def _report_health(self, ok: bool | None = None) -> None:
        ok = self.store_ok if ok is None else ok
        doc: dict[str, Any] = {
            "state": "ok" if ok else "store_unavailable",
            "since": self.unavailable_since,
            "error": self.last_error,
            "updated": time.time(),
        }
        doc.update(self.health_extra)
        write_health(self.store.path, doc)

    def set_health(self, **fields: Any) -> None:
        self.health_extra.update(fields)
        self._report_health()
