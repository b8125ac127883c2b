"""TLS between the gateway and Mosquitto with client certificates, for real.

The test makes its own CA (the ``cryptography`` package); Mosquitto's TLS
listener (the project's template, ``require_certificate true``) asks every
client for a certificate signed by it. The gateway connects with its own and
ingests; a broker certificate from another CA, an expired one or one for
another host, and a gateway certificate the broker does not accept, are refused
with an error that names the cause, and ``/healthz`` answers 503 with it.
"""

from __future__ import annotations

import datetime
import getpass
import ipaddress
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from gateway_rig import GatewayProcess, status, wait_for, write_config
from paho.mqtt.enums import CallbackAPIVersion

from gateway.rigs.broker import free_port, wait_for_port
from gateway.system import render_acl, render_broker_config, write_password_file
from shared.codec import Batch, encode_binary

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


class TestCA:
    """A certificate authority that lives for one test."""

    __test__ = False  # not a test class

    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = self._build(self.name, self.key.public_key(), ca=True,
                                start=NOW - DAY, end=NOW + 30 * DAY).sign(self.key, hashes.SHA256())

    def _build(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey, *, ca: bool,
               start: datetime.datetime, end: datetime.datetime) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(self.name)
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))

    def issue(self, directory: Path, stem: str, *, hosts: tuple[str, ...] = (),
              client: bool = False, expired: bool = False) -> tuple[Path, Path]:
        """``stem.pem`` and ``stem.key`` in ``directory``: a server certificate for
        ``hosts`` (DNS names or IP addresses), or a client one."""
        key = ec.generate_private_key(ec.SECP256R1())
        start, end = (NOW - 10 * DAY, NOW - DAY) if expired else (NOW - DAY, NOW + DAY)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)])
        builder = self._build(subject, key.public_key(), ca=False, start=start, end=end)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        pem, pem_key = directory / f"{stem}.pem", directory / f"{stem}.key"
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pem_key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        return pem, pem_key

    def write(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path


@dataclass
class TlsBroker:
    """Mosquitto with a TLS listener that requires client certificates."""

    host: str
    port: int
    ca: TestCA
    directory: Path


BrokerFactory = Callable[[tuple[Path, Path], "TestCA", Path], "TlsBroker"]


@pytest.fixture
def tls_broker_factory(tmp_path: Path, prefix: str) -> Iterator[BrokerFactory]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(server_cert: tuple[Path, Path], ca: TestCA, directory: Path) -> TlsBroker:
        write_password_file(directory / "passwd", {"gateway": "gw-pw", "dev1": "d1-pw"})
        (directory / "acl").write_text(render_acl(prefix, "gateway"))
        plain, tls = free_port(), free_port()
        conf = directory / "mosquitto.conf"
        conf.write_text(render_broker_config(
            directory=directory, port=plain, tls_port=tls, tls_bind="127.0.0.1",
            cafile=ca.write(directory / "broker-ca.pem"), certfile=server_cert[0],
            keyfile=server_cert[1], require_certificate=True, run_as=getpass.getuser()))
        proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                                 str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_for_port(tls)
        return TlsBroker("127.0.0.1", tls, ca, directory)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


class NotWaitingGateway(GatewayProcess):
    """Ready is enough: a gateway whose TLS is refused never subscribes."""

    def wait_subscribed(self, timeout: float = 30.0) -> None:
        return None


def gateway_config(tmp_path: Path, broker: TlsBroker, prefix: str, *, trust: Path,
                   cert: tuple[Path, Path]) -> Path:
    return write_config(tmp_path, broker, prefix,  # type: ignore[arg-type]
                        mqtt={"username": "gateway", "password": "gw-pw",
                              "tls_ca": str(trust), "tls_cert": str(cert[0]),
                              "tls_key": str(cert[1])})


def test_gateway_ingests_with_its_client_certificate(
        tmp_path: Path, prefix: str, tls_broker_factory: BrokerFactory,
        gateway_process: type[GatewayProcess]) -> None:
    ca = TestCA("learnae test CA")
    d = tmp_path / "pki"
    d.mkdir()
    broker = tls_broker_factory(ca.issue(d, "broker", hosts=("127.0.0.1", "localhost")), ca, d)
    trust = ca.write(d / "ca.pem")
    config = gateway_config(tmp_path, broker, prefix, trust=trust,
                            cert=ca.issue(d, "gateway", client=True))
    gateway = gateway_process(config).start()
    assert gateway.url is not None
    health = httpx.get(f"{gateway.url}/healthz", timeout=10)
    assert (health.status_code, health.json()["status"]) == (200, "ok")

    dev_cert = ca.issue(d, "dev1", client=True)
    dev = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    dev.tls_set(ca_certs=str(trust), certfile=str(dev_cert[0]), keyfile=str(dev_cert[1]))
    dev.username_pw_set("dev1", "d1-pw")
    dev.connect("127.0.0.1", broker.port)
    dev.loop_start()
    try:
        for seq in range(3):
            dev.publish(f"{prefix}/dev1/data",
                        encode_binary(Batch(1, seq * 4, 0, ["temp"], [[19.5]] * 4)),
                        qos=1).wait_for_publish(10)
        wait_for(lambda: status(config)["devices"].get("dev1", {}).get("stored") == 12, 30,
                 "12 readings over TLS with client certificates")
    finally:
        dev.loop_stop()
        dev.disconnect()


def _no_cert_client_refused(broker: TlsBroker, trust: Path) -> None:
    """The listener really requires a client certificate."""
    bare = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    bare.tls_set(ca_certs=str(trust))
    bare.username_pw_set("dev1", "d1-pw")
    with pytest.raises(OSError):
        bare.connect("127.0.0.1", broker.port)
        for _ in range(50):  # TLS 1.3 reports a missing certificate at the first read
            if bare.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                raise OSError("connection closed by the broker")


@pytest.mark.parametrize("case", ["wrong_ca", "expired", "wrong_host", "client_not_trusted",
                                  "client_expired"])
def test_refused_certificates_name_the_cause_and_degrade_healthz(
        tmp_path: Path, prefix: str, tls_broker_factory: BrokerFactory, case: str) -> None:
    ca, other = TestCA("learnae test CA"), TestCA("another CA")
    d = tmp_path / "pki"
    d.mkdir()
    server = ca.issue(d, "broker", hosts=("127.0.0.1", "localhost"))
    if case == "expired":
        server = ca.issue(d, "broker-expired", hosts=("127.0.0.1",), expired=True)
    elif case == "wrong_host":
        server = ca.issue(d, "broker-elsewhere", hosts=("broker.example", "192.0.2.7"))
    broker = tls_broker_factory(server, ca, d)
    trust = (other if case == "wrong_ca" else ca).write(d / "ca.pem")
    if case == "client_not_trusted":
        cert = other.issue(d, "gateway", client=True)
    else:
        cert = ca.issue(d, "gateway", client=True, expired=case == "client_expired")
    expected = {
        "wrong_ca": "was refused (self-signed certificate in certificate chain",
        "expired": "was refused (certificate has expired",
        "wrong_host": "was refused (IP address mismatch, certificate is not valid for "
                      "'127.0.0.1'.",
        "client_not_trusted": "refused this gateway's certificate (",
        "client_expired": "refused this gateway's certificate (",
    }[case]
    config = gateway_config(tmp_path, broker, prefix, trust=trust, cert=cert)
    gateway = NotWaitingGateway(config).start()
    try:
        assert gateway.url is not None
        where = f"MQTT broker 127.0.0.1:{broker.port}"

        last: list[object] = []

        def refused() -> dict[str, object] | None:
            answer = httpx.get(f"{gateway.url}/healthz", timeout=10)
            last[:] = [answer.status_code, answer.json()]
            reason = str(answer.json().get("reason") or "")
            return answer.json() if answer.status_code == 503 and expected in reason else None

        try:
            health = wait_for(refused, 30, f"/healthz to report {expected!r}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last answer {last}; log {gateway.lines[-5:]}") from None
        assert health["status"] == "degraded"
        assert "TLS: " in str(health["reason"]) and where in str(health["reason"])
        if case.startswith("client_"):
            assert f"mqtt.tls_cert = {str(cert[0])!r}" in str(health["reason"])
        else:
            assert f"mqtt.tls_ca = {str(trust)!r}" in str(health["reason"])
        assert any("TLS: " in line and where in line for line in gateway.lines)
        assert gateway.proc is not None and gateway.proc.poll() is None  # keeps retrying
        if case == "wrong_ca":
            _no_cert_client_refused(broker, ca.write(d / "right-ca.pem"))
    finally:
        gateway.stop()
