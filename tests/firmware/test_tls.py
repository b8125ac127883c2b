"""The firmware's TLS path under the MicroPython unix port, against a Mosquitto TLS
listener with a CA this test makes: verified, and refused for a wrong CA or host name."""

from __future__ import annotations

import datetime
import getpass
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from gateway.broker import free_port, wait_for_port
from gateway.ota.hostboard import Board
from paho.mqtt.enums import CallbackAPIVersion

from gateway.system import render_broker_config
from tests.firmware.conftest import run_sim, write_config


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _server(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, dns: str
            ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    d = tmp_path_factory.mktemp("tls-broker")
    ca, ca_key = _ca("learnae test CA")
    srv, srv_key = _server(ca, ca_key, "localhost")
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "server.pem").write_bytes(srv.public_bytes(pem))
    (d / "server.key").write_bytes(srv_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    plain, tls = free_port(), free_port()
    (d / "mosquitto.conf").write_text(render_broker_config(
        directory=d, port=plain, tls_port=tls, tls_bind="127.0.0.1", cafile=d / "ca.pem",
        certfile=d / "server.pem", keyfile=d / "server.key", run_as=getpass.getuser())
        .replace("password_file", "#password_file").replace("acl_file", "#acl_file")
        + "\nallow_anonymous true\n")
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                             str(d / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(tls)
        yield {"port": tls, "plain": plain, "ca": ca, "dir": d}
    finally:
        proc.terminate()
        proc.wait(10)


def _board_dir(root: Path, port: int, prefix: str, ca: x509.Certificate, host: str) -> Path:
    write_config(root, port, prefix, mqtt={"tls": True, "host": host, "max_incoming": 1024},
                 buffer={"ram_batches": 2})
    (root / "ca.der").write_bytes(ca.public_bytes(serialization.Encoding.DER))
    return root


def test_board_publishes_over_verified_tls(tls_broker, prefix, tmp_path: Path) -> None:
    got: list[bytes] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.tls_set(ca_certs=str(tls_broker["dir"] / "ca.pem"))
    sub.on_message = lambda c, u, m: got.append(m.payload)
    sub.connect("localhost", tls_broker["port"])
    sub.subscribe(f"{prefix}/dev1/data", qos=1)
    sub.loop_start()
    try:
        time.sleep(0.3)
        d = _board_dir(tmp_path / "dev1", tls_broker["port"], prefix, tls_broker["ca"],
                       "localhost")
        code, out = run_sim(d, 100, heap="64k")
        assert code == 0, out
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["made"] == summary["acked"] == 100
        deadline = time.monotonic() + 10
        while len(got) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(got) == 5  # 100 readings in batches of 20
    finally:
        sub.loop_stop()
        sub.disconnect()


@pytest.mark.parametrize(("case", "reason"), [
    ("wrong CA", "not correctly signed by the trusted CA"),
    ("wrong host", "does not match with the expected CN")])
def test_wrong_ca_or_host_is_refused_and_reported(tls_broker, prefix, tmp_path: Path,
                                                  case: str, reason: str) -> None:
    ca = _ca("another CA")[0] if case == "wrong CA" else tls_broker["ca"]
    # 127.0.0.1 is the same listener, but the certificate names only "localhost"
    host = "localhost" if case == "wrong CA" else "127.0.0.1"
    d = _board_dir(tmp_path / "dev1", tls_broker["port"], prefix, ca, host)
    seen: list[dict] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.tls_set(ca_certs=str(tls_broker["dir"] / "ca.pem"))
    sub.on_message = lambda c, u, m: seen.append(json.loads(m.payload)) if m.payload else None
    sub.connect("localhost", tls_broker["port"])
    sub.subscribe(f"{prefix}/dev1/status", qos=1)
    sub.loop_start()
    board = Board(d, heap="128k").start()
    try:
        deadline = time.monotonic() + 30
        while "down: OSError: tls:" not in board.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = board.log()
        assert f"down: OSError: tls: handshake with {host} refused" in log, log[-2000:]
        assert reason in log
        time.sleep(0.5)
        assert not seen  # refused: nothing went out
        if case == "wrong CA":
            # the right CA on flash (ca.der is read at each connect): the next attempt
            # connects, and its birth status carries the refusal as last_error
            (d / "ca.der").write_bytes(
                tls_broker["ca"].public_bytes(serialization.Encoding.DER))
            deadline = time.monotonic() + 30
            while not seen and time.monotonic() < deadline:
                time.sleep(0.05)
            assert seen and seen[0]["state"] == "online", board.log()[-2000:]
            assert reason in seen[0]["last_error"], seen[0]
    finally:
        board.stop()
        sub.loop_stop()
        sub.disconnect()
