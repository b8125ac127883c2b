# TLS for the MQTT connection (mqtt.tls = true), loaded at each connect only.
#
# The server's certificate is verified against the CA in "ca.der" on the
# board's flash (DER; `flash` installs it, docs/firmware.md, TLS) and its host
# name against mqtt.host. Without ca.der the connection is refused: an
# unverified TLS link would trust whoever answers. A wrong CA or host name
# fails the handshake with an OSError, which the one reconnect path reports
# in status (last_error) and retries with backoff.
import ssl


def wrap(sock, host):
    try:
        with open("ca.der", "rb") as f:
            ca = f.read()
    except OSError:
        raise OSError("tls: no ca.der on the board to verify the broker against")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined]  # absent from the stubs
    ctx.load_verify_locations(cadata=ca)
    try:
        return ctx.wrap_socket(sock, server_hostname=host)
    except (OSError, ValueError) as exc:
        raise OSError("tls: handshake with %s refused: %r" % (host, exc))
