"""IPFS adapters over the kubo RPC API (``/api/v0/...``): a ContentStore and a Transport.

Both speak plain HTTP through httpx to a local kubo daemon, in production and in the
tests (kubo v0.43.1, built by ``tools/kubo/install.sh``). What kubo answers, and what
this module relies on:

- ``block/put?cid-codec=raw&mhtype=sha2-256&cid-base=base32&pin=false`` answers
  ``{"Key": CID, "Size": N}``; the key must equal the CID computed locally.
- ``block/get`` streams the block (chunked, no length) or, when kubo gives up
  (its ``timeout`` parameter, or ``ipld: could not find``), answers 500 with
  ``{"Message": ..., "Type": "error"}``. The body is read only up to the size bound.
- ``pin/add``, ``pin/rm`` (500 ``not pinned or pinned indirectly`` when not pinned),
  ``pin/ls?type=all&stream=true`` (JSON lines ``{"Cid", "Type"}``), ``pin/update``,
  ``dag/put?store-codec=dag-cbor&input-codec=dag-json`` (``{"Cid": {"/": CID}}``),
  ``refs/local`` (JSON lines ``{"Ref": CID}``), ``repo/gc`` (JSON lines
  ``{"Key": {"/": CID}}``), ``repo/stat?size-only=true`` (``{"RepoSize": bytes}``).
- Pubsub needs ``Pubsub.Enabled``; topics and message data are multibase (``u`` +
  base64url); a topic that is not multibase is refused with 500. ``pubsub/sub`` is a
  long-lived stream of JSON lines ``{"from", "data", "seqno", "topicIDs"}``; it is
  re-opened after any failure until unsubscribed.

Errors are translated here, ``from`` the httpx error, into the peer layer's tree
(``errors.py``), and every message names the CID or topic concerned.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from gateway.errors import (
    BlockNotFound,
    BlockTooLarge,
    ContentStoreUnavailable,
    PeerRejected,
    TransportError,
)
from gateway.peer.cid import check_cid, cid_of, verify_block
from gateway.peer.store import DEFAULT_MAX_BLOCK, check_size
from gateway.peer.transport import MAX_MESSAGE_BYTES, Handler

log = logging.getLogger(__name__)

# kubo's messages when a block cannot be had: its own deadline, or not in the blockstore
PINSET_NAME = "learnae-retention"
_NOT_FOUND_HINTS = ("deadline exceeded", "could not find", "not found")


def multibase_encode(data: bytes) -> str:
    return "u" + base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def multibase_decode(text: str) -> bytes:
    if not text:
        raise ValueError("empty multibase string")
    prefix, body = text[0], text[1:]
    pad = "=" * (-len(body) % 4)
    if prefix == "u":
        return base64.urlsafe_b64decode(body + pad)
    if prefix == "m":
        return base64.b64decode(body + pad)
    if prefix == "b":
        return base64.b32decode(body.upper() + "=" * (-len(body) % 8))
    raise ValueError(f"unsupported multibase prefix {prefix!r}")


class IpfsRpc:
    """A small client for the RPC API: POST only, errors translated, bounded retries.

    ``what`` (default: the ``arg`` parameter) names the CID or topic in every error.
    """

    def __init__(
        self, api_url: str = "http://127.0.0.1:5001", *, timeout: float = 10.0, retries: int = 2
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.closed = False
        self._client = httpx.Client(base_url=self.api_url + "/api/v0", timeout=timeout)

    def _label(self, command: str, params: dict[str, Any], what: str | None) -> str:
        subject = what if what is not None else params.get("arg", "")
        return f"IPFS {command} {subject}".rstrip() + f" at {self.api_url}"

    @contextlib.contextmanager
    def _open(
        self,
        command: str,
        params: dict[str, Any],
        data: bytes | None,
        timeout: float | None,
        retry_errors: bool,
        what: str | None,
    ) -> Iterator[httpx.Response]:
        """A streamed 200 response; connection failures retried, errors translated."""
        if self.closed:
            raise ContentStoreUnavailable(
                f"{self._label(command, params, what)}: the client is closed")
        files = {"file": ("data", data, "application/octet-stream")} if data is not None else None
        wait = timeout if timeout is not None else self.timeout
        attempt = 0
        while True:
            try:
                request = self._client.build_request(
                    "POST", command, params=params, files=files, timeout=wait
                )
                response = self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                if attempt < self.retries and not isinstance(exc, httpx.TimeoutException):
                    attempt += 1
                    time.sleep(0.2 * attempt)
                    continue
                raise _unavailable(self._label(command, params, what), exc, wait) from exc
            except RuntimeError as exc:  # httpx: the client was closed meanwhile
                raise ContentStoreUnavailable(
                    f"{self._label(command, params, what)}: {exc}") from exc
            try:
                if response.status_code == 200:
                    yield response
                    return
                message = _error_message(response)
            except httpx.HTTPError as exc:
                raise _unavailable(self._label(command, params, what), exc, wait) from exc
            finally:
                response.close()
            label = self._label(command, params, what)
            if any(hint in message.lower() for hint in _NOT_FOUND_HINTS):
                raise BlockNotFound(f"{label}: {message}")
            if response.status_code >= 500 and retry_errors and attempt < self.retries:
                attempt += 1
                time.sleep(0.2 * attempt)
                continue
            raise ContentStoreUnavailable(f"{label} answered {response.status_code}: {message}")

    def call(
        self,
        command: str,
        params: dict[str, Any],
        *,
        data: bytes | None = None,
        timeout: float | None = None,
        retry_errors: bool = True,
        what: str | None = None,
    ) -> httpx.Response:
        """POST ``command`` and read the whole (small) answer."""
        with self._open(command, params, data, timeout, retry_errors, what) as response:
            try:
                response.read()
            except httpx.HTTPError as exc:
                label = self._label(command, params, what)
                raise _unavailable(label, exc, timeout or self.timeout) from exc
            return response

    def read(
        self,
        command: str,
        params: dict[str, Any],
        *,
        limit: int,
        timeout: float | None = None,
        what: str | None = None,
    ) -> bytes:
        """POST ``command``; read its body, stopping (BlockTooLarge) past ``limit`` bytes."""
        with self._open(command, params, None, timeout, True, what) as response:
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise BlockTooLarge(
                            f"{self._label(command, params, what)}: more than {limit} bytes"
                            f" (stopped reading after {size})"
                        )
                    chunks.append(chunk)
            except httpx.HTTPError as exc:
                label = self._label(command, params, what)
                raise _unavailable(label, exc, timeout or self.timeout) from exc
            return b"".join(chunks)

    def lines(
        self, command: str, params: dict[str, Any], *, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """POST ``command`` and parse its answer as JSON lines (kubo's streamed lists)."""
        response = self.call(command, params, timeout=timeout)
        out = []
        for line in response.text.splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    out.append(doc)
        return out

    def close(self) -> None:
        self.closed = True
        self._client.close()


def _unavailable(label: str, exc: httpx.HTTPError, timeout: float) -> ContentStoreUnavailable:
    if isinstance(exc, httpx.TimeoutException):
        return ContentStoreUnavailable(
            f"{label}: no answer within {timeout:.1f} s ({type(exc).__name__})")
    return ContentStoreUnavailable(f"{label} failed: {type(exc).__name__}: {exc}")


def _error_message(response: httpx.Response) -> str:
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > 4096:  # an error is a short JSON document; never read a long answer
            break
    try:
        doc = json.loads(body)
        return str(doc.get("Message", doc))
    except (json.JSONDecodeError, ValueError, AttributeError):
        return body[:200].decode("utf-8", errors="replace")


def directory_bytes(root: Path) -> int:
    """Sum of the sizes of the files under ``root`` (files removed meanwhile are skipped)."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


class IpfsStore:
    """ContentStore on a kubo daemon. Blocks are put unpinned: the caller pins what stays.

    Besides the port it offers what the retention policy needs (``PrunableStore``):
    ``unpin``, ``pinned``, ``gc`` (kubo's ``repo/gc``) and ``disk_bytes``.
    """

    def __init__(
        self,
        rpc: IpfsRpc,
        *,
        max_block_bytes: int = DEFAULT_MAX_BLOCK,
        get_timeout: float = 5.0,
        repo_path: Path | None = None,
    ) -> None:
        self.rpc = rpc
        self.max_block_bytes = max_block_bytes
        self.get_timeout = get_timeout
        self.repo_path = repo_path
        self._pinset: str | None = None  # root of the retention policy's pins (replace_pins)

    def put(self, data: bytes) -> str:
        check_size(data, self.max_block_bytes)
        expected = cid_of(data)
        # not pinned here: what stays is the retention policy's to say (``replace_pins``)
        params = {"cid-codec": "raw", "mhtype": "sha2-256", "cid-base": "base32", "pin": "false"}
        response = self.rpc.call("block/put", params, data=data, what=expected)
        try:
            key = response.json().get("Key")
        except (json.JSONDecodeError, ValueError, AttributeError) as exc:
            raise ContentStoreUnavailable(
                f"IPFS block/put {expected}: answer is not JSON: {response.text[:200]!r}"
            ) from exc
        if key != expected:
            raise ContentStoreUnavailable(f"IPFS stored a block as {key!r}, expected {expected}")
        return expected

    def get(self, cid: str, *, timeout: float | None = None) -> bytes:
        try:
            check_cid(cid)
        except PeerRejected as exc:
            raise BlockNotFound(str(exc)) from exc
        wait = self.get_timeout if timeout is None else timeout
        data = self.rpc.read(
            "block/get",
            {"arg": cid, "timeout": f"{max(wait, 0.1):.1f}s"},
            limit=self.max_block_bytes,
            timeout=wait + 2.0,
        )
        verify_block(cid, data)
        return data

    def pin(self, cid: str) -> None:
        self.rpc.call(
            "pin/add", {"arg": check_cid(cid), "cid-base": "base32"}, timeout=self.get_timeout + 2.0
        )

    def unpin(self, cid: str) -> None:
        """Unpin ``cid``; a CID that is not pinned is not an error."""
        try:
            self.rpc.call("pin/rm", {"arg": check_cid(cid)}, retry_errors=False)
        except ContentStoreUnavailable as exc:
            if "not pinned" not in str(exc):
                raise

    def pinned(self) -> set[str]:
        """Every pinned CID: direct, recursive, and the blocks a pinset root keeps."""
        params = {"type": "all", "stream": "true", "cid-base": "base32"}
        return {str(doc["Cid"]) for doc in self.rpc.lines("pin/ls", params) if "Cid" in doc}

    def replace_pins(self, keep: set[str]) -> None:
        """Keep exactly ``keep`` pinned, with one recursive pin on a pinset root.

        Pinning and unpinning block by block costs kubo a datastore write each, even for a
        block already pinned (about 0.5 KB of leveldb log per call, measured), and a gateway
        changes a dozen pins per round. So the policy's set is one dag-cbor node linking
        every kept block (``{"keep": [CID, ...]}``), pinned recursively under the name
        ``PINSET_NAME`` and moved with ``pin/update`` (a handful of writes per round). Only
        blocks present in the repository are linked: a recursive pin would otherwise try to
        fetch a block lost with a wiped repository, and wait.
        """
        refs = self.rpc.lines("refs/local", {"cid-base": "base32"})
        local = {str(doc.get("Ref")) for doc in refs}
        links = [{"/": cid} for cid in sorted(keep & local)]
        body = json.dumps({"keep": links}).encode()
        params = {"store-codec": "dag-cbor", "input-codec": "dag-json", "pin": "false"}
        answer = self.rpc.call("dag/put", params, data=body, what=f"pinset of {len(links)}")
        try:
            root = str(answer.json()["Cid"]["/"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ContentStoreUnavailable(
                f"IPFS dag/put of the pinset: {answer.text[:200]!r}") from exc
        if self._pinset is None:
            self._pinset = self._find_pinset()
        if self._pinset == root:
            return
        if self._pinset is not None:
            try:
                self.rpc.call(
                    "pin/update", {"arg": [self._pinset, root], "unpin": "true"},
                    retry_errors=False, timeout=max(self.rpc.timeout, 30.0),
                )
                self._pinset = root
                return
            except ContentStoreUnavailable as exc:  # the old root is gone (a wiped repository)
                log.info("pin/update from %s failed (%s): pinning %s", self._pinset, exc, root)
        self.rpc.call("pin/add", {"arg": root, "name": PINSET_NAME},
                      timeout=max(self.rpc.timeout, 30.0))
        self._pinset = root

    def _find_pinset(self) -> str | None:
        """The pinset root a previous run of this gateway left pinned, if any."""
        params = {"type": "recursive", "stream": "true", "names": "true", "cid-base": "base32"}
        roots = [str(d["Cid"]) for d in self.rpc.lines("pin/ls", params)
                 if d.get("Name") == PINSET_NAME and "Cid" in d]
        for extra in roots[1:]:  # only one is ever meant to exist
            self.unpin(extra)
        return roots[0] if roots else None

    def gc(self) -> int:
        """kubo's ``repo/gc``: delete every unpinned block; return how many went."""
        docs = self.rpc.lines("repo/gc", {"quiet": "false"}, timeout=max(self.rpc.timeout, 60.0))
        errors = [str(doc["Error"]) for doc in docs if doc.get("Error")]
        if errors:
            raise ContentStoreUnavailable(f"IPFS repo/gc at {self.rpc.api_url}: {errors[0]}")
        return sum(1 for doc in docs if doc.get("Key"))

    def disk_bytes(self) -> int:
        """Bytes on disk: the repository's files when its path is known, else ``RepoSize``.

        kubo 0.43.1's ``RepoSize`` (flatfs' running count) adds about 6 KB per 2 KB block
        put and takes back about 2 KB when ``repo/gc`` deletes it, so it drifts upwards
        on a store that forgets: with ``peer.ipfs_repo`` set the files are measured.
        """
        if self.repo_path is not None:
            try:
                return directory_bytes(self.repo_path)
            except OSError as exc:
                raise ContentStoreUnavailable(f"cannot measure {self.repo_path}: {exc}") from exc
        return self.repo_size()

    def repo_size(self) -> int:
        """kubo's own ``repo/stat`` ``RepoSize``."""
        doc = self.rpc.call("repo/stat", {"size-only": "true"}).json()
        return int(doc.get("RepoSize", 0))

    def node_id(self) -> str:
        return str(self.rpc.call("id", {}).json()["ID"])

    def close(self) -> None:
        self.rpc.close()


class IpfsPubsubTransport:
    """Transport on IPFS pubsub. One reader thread per subscribed topic, reconnecting."""

    def __init__(
        self,
        api_url: str = "http://127.0.0.1:5001",
        *,
        timeout: float = 5.0,
        reconnect_s: float = 0.5,
        registry: Any = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.rpc = IpfsRpc(api_url, timeout=timeout, retries=1)
        self.reconnect_s = reconnect_s
        self._subs: dict[str, _Subscription] = {}
        self._lock = threading.Lock()
        self._faults: Any = None
        if registry is not None:  # only when asked: tests build many transports per process
            from prometheus_client import Counter

            self._faults = Counter(
                "learnae_peer_pubsub_faults_total",
                "kubo pubsub stream lines dropped and streams re-opened, by reason",
                ["reason"],
                registry=registry,
            )

    def _fault(self, reason: str) -> None:
        if self._faults is not None:
            self._faults.labels(reason).inc()

    def publish(self, topic: str, data: bytes) -> None:
        if len(data) > MAX_MESSAGE_BYTES:
            raise TransportError(f"gossip message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
        try:
            self.rpc.call(
                "pubsub/pub", {"arg": multibase_encode(topic.encode())}, data=data, what=repr(topic)
            )
        except (ContentStoreUnavailable, BlockNotFound) as exc:
            raise TransportError(f"cannot publish on {topic!r}: {exc}") from exc

    def subscribe(self, topic: str, handler: Handler) -> None:
        with self._lock:
            if topic in self._subs:
                self._subs[topic].handlers.append(handler)
                return
            sub = _Subscription(self.api_url, topic, handler, self.reconnect_s, self._fault)
            self._subs[topic] = sub
        sub.start()

    def unsubscribe(self, topic: str) -> None:
        with self._lock:
            sub = self._subs.pop(topic, None)
        if sub is not None:
            sub.stop()

    def connected(self, topic: str) -> bool:
        """Whether the topic's stream is open now (tests wait on this before publishing)."""
        sub = self._subs.get(topic)
        return sub is not None and sub.open.is_set()

    def close(self) -> None:
        for topic in list(self._subs):
            self.unsubscribe(topic)
        self.rpc.close()


class _Subscription:
    def __init__(
        self,
        api_url: str,
        topic: str,
        handler: Handler,
        reconnect_s: float,
        on_fault: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.api_url = api_url
        self.on_fault = on_fault
        self.topic = topic
        self.handlers: list[Callable[[bytes], None]] = [handler]
        self.reconnect_s = reconnect_s
        self.open = threading.Event()
        self.reconnects = 0
        self.malformed = 0  # stream lines that were not a message for this topic
        self.last_error = ""  # why the stream last failed (empty while open)
        self._stop = threading.Event()
        self._client: httpx.Client | None = None
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, name=f"pubsub-{topic}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:  # wake the reader blocked in recv()
            stream = response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=3)

    def _run(self) -> None:
        arg = multibase_encode(self.topic.encode())
        while not self._stop.is_set():
            self._client = httpx.Client(
                base_url=self.api_url + "/api/v0", timeout=httpx.Timeout(5.0, read=None)
            )
            try:
                with self._client.stream("POST", "pubsub/sub", params={"arg": arg}) as response:
                    if response.status_code != 200:
                        raise TransportError(
                            f"IPFS pubsub/sub {self.topic!r} at {self.api_url} answered "
                            f"{response.status_code}: {_error_message(response)}"
                        )
                    self._response = response
                    self.open.set()
                    self.last_error = ""
                    for line in response.iter_lines():
                        if self._stop.is_set():
                            return
                        self._deliver(line, arg)
            except Exception as exc:  # any failure: drop the stream and open a new one
                if not self._stop.is_set():
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self.on_fault("stream_failed")
                    log.debug("pubsub stream for %r failed: %s", self.topic, exc)
            finally:
                self.open.clear()
                self._response = None
                self._client.close()
            if not self._stop.wait(self.reconnect_s):
                self.reconnects += 1

    def _deliver(self, line: str, arg: str) -> None:
        """One JSON line of kubo's stream: ``{"from", "data", "seqno", "topicIDs"}``."""
        line = line.strip()
        if not line:
            return
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            self.malformed += 1
            self.on_fault("not_json")
            log.debug("pubsub line on %r is not JSON: %.80r", self.topic, line)
            return
        if not isinstance(doc, dict) or "data" not in doc:
            self.malformed += 1
            self.on_fault("not_message")
            return
        topics = doc.get("topicIDs")
        if isinstance(topics, list) and topics and arg not in topics:
            self.malformed += 1  # kubo delivers only the topic asked for: not ours is a fault
            self.on_fault("other_topic")
            return
        try:
            data = multibase_decode(str(doc["data"]))
        except (ValueError, TypeError):
            self.malformed += 1
            self.on_fault("not_multibase")
            log.debug("pubsub data on %r is not multibase", self.topic)
            return
        for handler in list(self.handlers):
            try:
                handler(data)
            except Exception:
                log.exception("gossip handler for %r failed", self.topic)
