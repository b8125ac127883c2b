"""What the IPFS adapters do with answers a healthy kubo never gives: a daemon that keys a
block under another CID, answers garbage, or streams pubsub lines for another topic.

These cannot be provoked from a real kubo, so a small HTTP server on 127.0.0.1 plays a
faulty daemon; everything kubo does answer is tested against kubo in test_ipfs.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry

from gateway.peer import ContentStoreUnavailable, IpfsPubsubTransport, IpfsRpc, IpfsStore, cid_of
from gateway.peer.ipfs import multibase_encode

WRONG = cid_of(b"something else")


class FaultyDaemon(BaseHTTPRequestHandler):
    mode = "wrong_cid"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.startswith("/api/v0/block/put"):
            body = json.dumps({"Key": WRONG}).encode() if self.mode == "wrong_cid" else b"<html>"
            self._answer(body)
        elif self.path.startswith("/api/v0/pubsub/sub"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            t1, t2 = multibase_encode(b"t1"), multibase_encode(b"t2")
            lines = [
                {"from": "x", "data": multibase_encode(b"other"), "topicIDs": [t2]},
                {"from": "x", "data": "!not multibase"},
                "not json",
                {"from": "x", "data": multibase_encode(b"ours"), "topicIDs": [t1]},
            ]
            for line in lines:
                text = line if isinstance(line, str) else json.dumps(line)
                self.wfile.write(text.encode() + b"\n")
                self.wfile.flush()
            time.sleep(1.0)
        else:
            self.send_response(404)
            self.end_headers()

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def daemon() -> Iterator[tuple[str, type[FaultyDaemon]]]:
    handler = type("Handler", (FaultyDaemon,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_a_block_keyed_under_another_cid_is_refused(daemon: tuple[str, type]) -> None:
    url, _ = daemon
    store = IpfsStore(IpfsRpc(url, retries=0))
    try:
        with pytest.raises(ContentStoreUnavailable,
                           match=rf"as '{WRONG}', expected {cid_of(b'x')}"):
            store.put(b"x")
    finally:
        store.close()


def test_an_answer_that_is_not_json_is_named(daemon: tuple[str, type]) -> None:
    url, handler = daemon
    handler.mode = "garbage"
    store = IpfsStore(IpfsRpc(url, retries=0))
    try:
        with pytest.raises(ContentStoreUnavailable, match=rf"block/put {cid_of(b'x')}.*not JSON"):
            store.put(b"x")
    finally:
        store.close()


def test_pubsub_lines_not_for_the_topic_are_counted_and_dropped(
    daemon: tuple[str, type]
) -> None:
    url, _ = daemon
    registry = CollectorRegistry()
    transport = IpfsPubsubTransport(url, reconnect_s=5.0, registry=registry)
    got: list[bytes] = []
    try:
        transport.subscribe("t1", got.append)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not got:
            time.sleep(0.05)
        assert got == [b"ours"]
        sub = transport._subs["t1"]
        assert sub.malformed == 3  # another topic, data not multibase, a line not JSON
        for reason in ("other_topic", "not_multibase", "not_json"):
            labels = {"reason": reason}
            assert registry.get_sample_value("learnae_peer_pubsub_faults_total", labels) == 1.0
    finally:
        transport.close()
