# One-shot settings of an MQTTClient (mqtt.py), worked out before mqtt.py is
# loaded (Agent.__init__ drops this module first): the client's construction
# then assigns them in one step, and this code never shares the heap with the
# client's (measured: the construction was the tightest moment at the 32 KB cap).


def settings(client_id, server, port=1883, user=None, password=None,
             keepalive=30, tls=False, timeout_ms=5000, max_incoming=4096,
             retries=2, cb=None, rbuf=None, wdt=None, wdt_ms=0, backoff_max_ms=60000,
             will=None):
    """The client's attributes as a tuple, in the order MQTTClient.__init__ assigns them.

    ``rbuf``: a receive buffer of ``max_incoming`` bytes made earlier by the
    caller (allocated first at boot, it sits in one piece below everything
    else); ``will``: (topic, message, retain, qos), sent with every CONNECT;
    ``wdt``/``wdt_ms``: the watchdog to feed while waiting and its timeout.
    """
    client_id = client_id.encode() if isinstance(client_id, str) else client_id
    user = user.encode() if isinstance(user, str) else user
    password = password.encode() if isinstance(password, str) else password
    if will is not None:
        t = will[0]
        will = (t.encode() if isinstance(t, str) else t, will[1], will[2], will[3])
    # user name field and password length prefix, built once
    tail = bytearray((2 + len(user) if user is not None else 0)
                     + (2 if password is not None else 0))
    off = 0
    if user is not None:
        tail[0] = len(user) >> 8
        tail[1] = len(user) & 0xFF
        tail[2:2 + len(user)] = user
        off = 2 + len(user)
    if password is not None:
        tail[off] = len(password) >> 8
        tail[off + 1] = len(password) & 0xFF
    rbuf = rbuf if rbuf is not None and len(rbuf) == max_incoming else bytearray(max_incoming)
    return (
        # conn: what only connecting reads (mqttsock.open, mqttconn.connect)
        (client_id, server, port, password, tls, will, tail),
        keepalive, timeout_ms, retries, cb,
        None,  # sock
        None,  # _poller
        0,  # pid
        -1,  # _want: the packet id whose PUBACK/SUBACK we wait for
        False,  # _got
        0,  # _ping_sent: ticks of an unanswered PINGREQ, 0 = none
        0,  # _last_tx
        rbuf, memoryview(rbuf),
        # _obuf: fixed header + topic + packet id of one PUBLISH; CONNECT and
        # SUBSCRIBE headers (client id, will topic, topic filters) fit as well
        bytearray(160),
        memoryview(bytearray(1)),  # _onemv
        # the watchdog to feed while waiting, and the longest single wait
        # between feeds: a quarter of its timeout (watchdog.arm sets both later)
        wdt, timeout_ms if wdt is None else min(timeout_ms, max(wdt_ms // 4, 20)),
        None,  # nodelay: True once TCP_NODELAY is set, else why not (mqttsock.open)
        0,  # oversized: incoming messages too large for the buffer, discarded
        0,  # resent
        # the caller's reconnect backoff cap (extras.down), kept with the other
        # connection settings: one more attribute on the Agent would grow its
        # 47-slot attribute table to 59 slots (docs/firmware.md, Memory)
        backoff_max_ms)
