"""The TLS listener of the broker template, and the gateway's mqtt.tls_* settings."""

from __future__ import annotations

import datetime
import getpass
import ipaddress
import shutil
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from gateway.rigs.broker import free_port, wait_for_port
from gateway.system import render_acl, render_broker_config, write_password_file
from shared.codec import Batch, encode_binary

from .helpers import status, wait_for, write_config


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
          signer: ec.EllipticCurvePrivateKey, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def test_gateway_ingests_over_tls(tmp_path: Path, prefix: str, gateway_process: type) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "learnae test CA")])
    ca = _cert("learnae test CA", ca_key, ca_name, ca_key, ca=True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = _cert("localhost", srv_key, ca_name, ca_key, ca=False)
    d = tmp_path / "broker"
    d.mkdir()
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "server.pem").write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    (d / "server.key").write_bytes(_pem_key(srv_key))
    write_password_file(d / "passwd", {"gateway": "gw-pw", "dev1": "d1-pw"})
    (d / "acl").write_text(render_acl(prefix, "gateway"))
    plain, tls = free_port(), free_port()
    (d / "mosquitto.conf").write_text(render_broker_config(
        directory=d, port=plain, tls_port=tls, tls_bind="127.0.0.1", cafile=d / "ca.pem",
        certfile=d / "server.pem", keyfile=d / "server.key", run_as=getpass.getuser()))
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                             str(d / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(tls)

        class TlsBroker:
            host, port = "127.0.0.1", tls

        config = write_config(tmp_path, TlsBroker, prefix,  # type: ignore[arg-type]
                              mqtt={"username": "gateway", "password": "gw-pw",
                                          "tls_ca": str(d / "ca.pem")})
        gateway_process(config).start()

        dev = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        dev.tls_set(ca_certs=str(d / "ca.pem"))
        dev.username_pw_set("dev1", "d1-pw")
        dev.connect("127.0.0.1", tls)
        dev.loop_start()
        for seq in range(3):
            dev.publish(f"{prefix}/dev1/data",
                        encode_binary(Batch(1, seq * 4, 0, ["temp"], [[19.5]] * 4)),
                        qos=1).wait_for_publish(10)
        doc = wait_for(lambda: (s := status(config))["devices"].get("dev1", {}).get("stored")
                       == 12 and s, 30, "12 readings over TLS")
        assert doc["devices"]["dev1"]["stored"] == 12
        dev.loop_stop()
        dev.disconnect()
    finally:
        proc.terminate()
        proc.wait(10)
