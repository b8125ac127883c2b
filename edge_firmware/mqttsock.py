# The MQTT client's socket, opened at each (re)connect: TCP, TCP_NODELAY,
# optional TLS (tlsconn.py), the poller. Loaded by Agent.connect() (or
# mqttrare.connect) before mqttconn.py, and dropped right after.
import select
import socket


def open(c):  # (the builtin open is not used here; "open" is interned already)
    """The socket, connected (and wrapped in TLS when configured)."""
    c.close()
    server, port, tls = c.conn[1], c.conn[2], c.conn[4]  # (mqttinit.settings)
    addr = socket.getaddrinfo(server, port, 0, socket.SOCK_STREAM)[0][-1]
    sock = socket.socket()
    c.sock = sock
    # one blocking call never outlasts a quarter of the watchdog's timeout
    # (slice_ms, else timeout_ms); the CONNACK wait feeds it and keeps
    # timeout_ms
    sock.settimeout(c.slice_ms / 1000)
    # TCP_NODELAY (IPPROTO_TCP is 6 everywhere): no 40 ms Nagle stall per ack.
    # The option is the port's own (64 on rp2's lwIP, whose setsockopt ignores
    # an option it does not know); only the unix port lacks the name: Linux's 1
    try:
        sock.setsockopt(6, getattr(socket, "TCP_NODELAY", 1), 1)
        c.nodelay = True
    except Exception as exc:
        c.nodelay = repr(exc)
    sock.connect(addr)
    if tls:
        c.sock = __import__("tlsconn").wrap(sock, server)
    c._poller = select.poll()
    c._poller.register(c.sock, select.POLLIN)
