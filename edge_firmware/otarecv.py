# Receiving an update (docs/protocol.md, OTA), in an interpreter lifetime of
# its own: {"cmd": "ota"} wrote ota/go.json and reset the board, and
# otaboot.py runs this (otafs.receive) instead of the agent, so the agent's RAM is not shared.
#
# The gateway sends one byte stream in chunks on <prefix>/<id>/ota (QoS 1):
#   [u32 L][manifest: L bytes of JSON][HMAC-SHA256 of the manifest, 32 bytes]
#   [each file of the manifest, in its order]
# each chunk "O" 0x01 [8-byte transfer id][u32 offset][data]. The board writes
# what arrives straight to flash (ota/<id>/: the head, then each file; RAM
# holds one chunk), and answers on <prefix>/<id>/status/ota with the offset it
# needs next, so a transfer resumes after a disconnect or a reset from what
# flash holds. The manifest's HMAC (the device's own key, ota.key) is checked
# as soon as the head is in, every file's size and sha256 at the end; then the
# pointer ota/fw.json names the new directory (one rename) and the board
# resets into it, on trial (otafs.py, otaguard.py). A refusal (reason in
# status) removes the staged files and the board resets into its current version.
import binascii
import gc
import hashlib
import json
import os
import struct
import sys
import time

import otafs

_HEAD = "/.head"  # the stream's first 4 + L + 32 bytes, in the transfer's directory
_IDLE_MS = 60000  # no progress for this long: give up (the staged bytes stay)


class Refused(Exception):
    pass


def hmac_sha256(key, msg):
    """HMAC-SHA256 (RFC 2104); MicroPython has no hmac module."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def _same(a, b):
    # constant-time comparison of two digests
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


def read_key():
    try:
        with open("ota.key") as f:
            return binascii.unhexlify(f.read().strip())
    except (OSError, ValueError):
        return None


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


def _safe_name(name):
    if not name or name[0] in "/." or ".." in name or len(name) > 48:
        return False
    for ch in name:  # noqa: SIM110  (no generator: MicroPython allocates one)
        if not (ch.isalpha() or ch.isdigit() or ch in "_.-/"):
            return False
    return True


class Receiver:
    def __init__(self, tid):
        self.tid = tid
        self.tid_raw = binascii.unhexlify(tid)
        self.dir = "ota/" + tid
        self.manifest = None
        self.files_at = 0  # where the file lines start in the staged head
        self.head_len = None  # 4 + L + 32 once L is known
        self.total = None
        self.next = 0
        self.f = None  # the file being written
        self.f_end = 0  # stream offset where it ends
        self.dirty = True  # an acknowledgement is due
        self.error = None
        self.last_progress = time.ticks_ms()
        try:  # noqa: SIM105
            os.mkdir(self.dir)
        except OSError:
            pass
        self._resume()

    # -- where the stream stands on flash --------------------------------
    def _resume(self):
        head = _size(self.dir + _HEAD)
        self.next = head
        if head >= 4:
            with open(self.dir + _HEAD, "rb") as f:
                n = struct.unpack(">I", f.read(4))[0]
            self.head_len = 4 + n + 32
            if head > self.head_len:  # cannot happen by construction: start again
                otafs.remove(self.dir + _HEAD)
                self.next = 0
                self.head_len = None
            elif head == self.head_len:
                self._check_head()
                off = self.head_len
                for name, size, _ in self.entries():
                    have = _size(self.dir + "/" + name)
                    if have > size:
                        raise Refused("file %s: %d bytes staged, manifest says %d"
                                      % (name, have, size))
                    off += have
                    if have < size:
                        break
                self.next = off

    def _check_head(self):
        # The manifest is a JSON line, then one line per file: "<sha256> <size>
        # <name>". Neither it nor its parsed entries are held in RAM: the HMAC
        # is computed in pieces, and files() reads the entries from flash.
        key = read_key()
        if key is None:
            raise Refused("no ota.key on the board")
        n = self.head_len - 36
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key + bytes(64 - len(key))
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        buf = bytearray(256)
        with open(self.dir + _HEAD, "rb") as f:
            f.seek(4)
            left = n
            while left:
                k = f.readinto(memoryview(buf)[:min(left, 256)])
                if not k:
                    raise Refused("manifest truncated")
                inner.update(memoryview(buf)[:k])
                left -= k
            mac = f.read(32)
            outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
            outer.update(inner.digest())
            if not _same(outer.digest(), mac):
                raise Refused("manifest HMAC does not match this device's key")
            f.seek(4)
            try:
                m = json.loads(f.readline())
                version = str(m["version"])
                count = int(m["files"])
            except (ValueError, KeyError, TypeError) as exc:
                raise Refused("manifest unreadable: %r" % (exc,))
            self.files_at = f.tell()
        if m.get("id") != self.tid:
            raise Refused("manifest is for transfer %r, not %r" % (m.get("id"), self.tid))
        if m.get("v") != 1:
            raise Refused("manifest version %r is not 1" % (m.get("v"),))
        need = 0
        k = 0
        for name, size, digest in self.entries():
            if not _safe_name(name) or size < 0 or len(digest) != 64:
                raise Refused("manifest entry %r is not a safe name, size and sha256" % (name,))
            need += size
            k += 1
        if k != count:
            raise Refused("manifest lists %d files, says %d" % (k, count))
        st = os.statvfs(".")
        free = st[0] * st[4]
        if need + 4096 > free:
            raise Refused("too large: %d bytes of files, %d bytes of flash free" % (need, free))
        self.manifest = m
        self.version = version
        self.total = self.head_len + need
        print("ota: manifest of", version, "accepted,", need, "bytes in", k, "files")

    def entries(self):
        """(name, size, sha256 hex) of each file, read from the staged manifest."""
        end = self.head_len - 32
        with open(self.dir + _HEAD, "rb") as f:
            f.seek(self.files_at)
            while f.tell() < end:
                line = f.readline()
                if not line:
                    return
                try:
                    digest, size, name = line.decode().rstrip("\n").split(" ", 2)
                    size = int(size)
                except ValueError:
                    raise Refused("manifest line %r unreadable" % (line[:60],))
                yield name, size, digest

    # -- chunks -------------------------------------------------------------
    def on_message(self, topic, msg, retained):
        # inside the client's read loop: write, never publish
        if topic is None or len(msg) < 14 or msg[0] != 0x4F or msg[1] != 1:
            return
        if bytes(msg[2:10]) != self.tid_raw:
            return  # a chunk of an earlier transfer
        off = struct.unpack(">I", msg[10:14])[0]
        self.dirty = True
        if off != self.next or self.error is not None:
            return  # out of order (a resend after a resume): the ack says where we are
        try:
            self._write(memoryview(msg)[14:])
        except Refused as exc:
            self.error = str(exc)
        except OSError as exc:
            self.error = "flash write failed: %s" % (exc,)
        self.last_progress = time.ticks_ms()

    def _write(self, data):
        while len(data):
            if self.head_len is None or self.next < self.head_len:
                # the head: u32 length, manifest, HMAC
                want = 4 - self.next if self.head_len is None else self.head_len - self.next
                k = min(want, len(data))
                with open(self.dir + _HEAD, "ab") as f:
                    f.write(data[:k])
                self.next += k
                data = data[k:]
                if self.head_len is None and self.next == 4:
                    with open(self.dir + _HEAD, "rb") as f:
                        n = struct.unpack(">I", f.read(4))[0]
                    if n > 8192:
                        raise Refused("manifest of %d bytes is too large" % n)
                    self.head_len = 4 + n + 32
                elif self.next == self.head_len:
                    self._check_head()
                continue
            if self.total is not None and self.next >= self.total:
                raise Refused("more bytes than the manifest announces")
            if self.f is None:
                off = self.head_len
                for name, size, _ in self.entries():
                    if self.next < off + size:
                        path = self.dir + "/" + name
                        i = name.rfind("/")
                        if i > 0:
                            try:  # noqa: SIM105
                                os.mkdir(self.dir + "/" + name[:i])
                            except OSError:
                                pass
                        self.f = open(path, "ab")  # noqa: SIM115  (kept open across chunks)
                        self.f_end = off + size
                        break
                    off += size
            k = min(self.f_end - self.next, len(data))
            self.f.write(data[:k])
            self.next += k
            data = data[k:]
            if self.next == self.f_end:
                self.f.close()
                self.f = None

    def flush(self):
        if self.f is not None:
            self.f.close()
            self.f = None

    # -- the end ------------------------------------------------------------
    def verify(self):
        buf = bytearray(256)
        mv = memoryview(buf)
        for name, size, digest in self.entries():
            h = hashlib.sha256()
            n = 0
            if not size:
                open(self.dir + "/" + name, "ab").close()  # never written: empty
            with open(self.dir + "/" + name, "rb") as f:
                while True:
                    k = f.readinto(buf)
                    if not k:
                        break
                    h.update(mv[:k])
                    n += k
            if n != size:
                raise Refused("file %s: %d bytes, manifest says %d" % (name, n, size))
            if binascii.hexlify(h.digest()).decode() != digest:
                raise Refused("hash mismatch: %s" % name)

    def switch(self):
        """The atomic step: the pointer names the new directory (one rename)."""
        cur = otafs.load(otafs.PTR)
        prev = None
        if cur is not None and cur.get("dir") != self.dir:
            prev = {"dir": cur.get("dir"), "version": cur.get("version"), "id": cur.get("id")}
        otafs.save(otafs.PTR, {
            "dir": self.dir, "version": self.version, "id": self.tid, "state": "trial",
            "tries": 0, "confirm_s": self.manifest.get("ota_confirm_s") or 120,
            "previous": prev or {"dir": None, "version": _factory()}})


def _factory():
    import status

    v = status.FACTORY
    sys.modules.pop("status", None)
    return v


_peak = [0]  # the most heap in use after a collection, over the acknowledgements


def _ack(client, topic, r, state, reason=None):
    # heap_peak: the receiver's live heap (after a collection) at its largest,
    # a chunk in the receive buffer and the file being written open
    gc.collect()
    used = gc.mem_alloc()
    if used > _peak[0]:
        _peak[0] = used
    doc = {"id": r.tid, "state": state, "next": r.next, "total": r.total, "heap_peak": _peak[0]}
    if reason is not None:
        doc["reason"] = reason
    client.publish(topic, json.dumps(doc), qos=1)


def _rotate(r, client, topic):
    # a key rotation rides the same stream: a manifest with "rotate", no files
    key = read_key()
    pad = hmac_sha256(key, b"rotate:" + r.tid.encode())
    new = binascii.unhexlify(r.manifest["rotate"])
    if len(new) != 32:
        raise Refused("rotated key must be 32 bytes")
    fresh = bytes(new[i] ^ pad[i] for i in range(32))
    with open("ota.key.tmp", "w") as f:
        f.write(binascii.hexlify(fresh).decode())
    os.rename("ota.key.tmp", "ota.key")
    _ack(client, topic, r, "rotated")


def _finish(go_state, tid, reason=None, version=None):
    otafs.save(otafs.LAST, {"id": tid, "state": go_state, "reason": reason,
                                "version": version})
    otafs.remove(otafs.GO)


def _clean(tid):
    # staged files of other transfers go; the active and previous versions stay
    cur = otafs.load(otafs.PTR) or {}
    keep = ["fw.json", "go.json", "last.json", tid]
    for d in (cur.get("dir"), (cur.get("previous") or {}).get("dir")):
        if d:
            keep.append(d.split("/")[-1])
    for name in os.listdir("ota"):
        if name not in keep:
            otafs.remove("ota/" + name)
    return cur


def run(rbuf=None):
    """Receive, verify and switch (or refuse); reset the board either way
    (``rbuf``: the receive buffer, made by otafs.receive before this module loaded)."""
    go = otafs.load(otafs.GO) or {}
    tid = str(go.get("id", ""))
    chunk = go.get("chunk") if isinstance(go.get("chunk"), int) else 0
    v = otafs.load("valid.json") or {}
    conf = v.get("conf") or {}
    mq = conf.get("mqtt") or {}
    base = "%s/%s/" % (mq.get("topic_prefix"), conf.get("device_id"))
    t_ack = base + "status/ota"
    deep = conf.get("power_mode") == "deep_sleep"
    # the client's settings first (as the agent does, before mqtt.py loads),
    # then the config document is dropped: its ~3 KB of objects are not kept
    # through the transfer (measured at a 32 KB heap)
    settings = __import__("mqttinit").settings(
        (mq.get("client_id") or conf.get("device_id") or "") + "-ota", mq.get("host"),
        mq.get("port", 1883), mq.get("username"), mq.get("password"), mq.get("keepalive_s", 30),
        mq.get("tls"), mq.get("timeout_ms", 5000), max(chunk, 64) + 64, 2, None, rbuf)
    v = conf = mq = rbuf = None
    sys.modules.pop("mqttinit", None)
    gc.collect()
    refused = None
    r = None
    try:
        cur = _clean(tid)
        if cur.get("id") == tid:
            # switched already (a reset came between the pointer and go.json)
            otafs.remove(otafs.GO)
            return _reset()
        if cur.get("state") == "trial":
            refused = "busy: version %s is on trial" % cur.get("version")
        elif deep:
            refused = "busy: deep_sleep boards take updates over USB"
        elif len(tid) != 16 or not 64 <= chunk <= 4096:
            refused = "bad request: id %r, chunk %r" % (tid, chunk)
        else:
            r = Receiver(tid)
    except (Refused, OSError, ValueError) as exc:
        refused = str(exc)
    import mqtt

    client = mqtt.MQTTClient(settings)
    settings = None
    if r is not None:
        client.cb = r.on_message
    backoff = 250
    while True:
        try:
            __import__("mqttrare").connect(client, True, ((base + "ota").encode(),)
                                          if r is not None else None)
            sys.modules.pop("mqttrare", None)
            backoff = 250
            if refused is not None:
                raise Refused(refused)
            _ack(client, t_ack, r, "ready")  # the gateway resends from r.next
            while True:
                if r.error is not None:
                    raise Refused(r.error)
                if r.total is not None and r.next >= r.total:
                    r.flush()
                    if "rotate" in r.manifest:
                        _rotate(r, client, t_ack)
                        _finish("rotated", tid)
                        otafs.remove(r.dir)
                        break
                    r.verify()
                    r.switch()
                    _finish("switching", tid, version=r.version)
                    _ack(client, t_ack, r, "switching")
                    break
                if r.dirty:
                    r.dirty = False
                    _ack(client, t_ack, r, "receiving")
                client.poll(200)
                client.keepalive_check()
                if time.ticks_diff(time.ticks_ms(), r.last_progress) > _IDLE_MS:
                    r.flush()
                    _finish("interrupted", tid, "no chunk for %d s" % (_IDLE_MS // 1000))
                    break
            break
        except Refused as exc:
            refused = str(exc)
            if r is not None:
                r.flush()
                otafs.remove(r.dir)
            print("ota: refused:", refused)
            _finish("refused", tid, refused)
            try:  # noqa: SIM105
                client.publish(t_ack, json.dumps({"id": tid, "state": "refused",
                                                  "reason": refused}), qos=1)
            except OSError:
                pass
            break
        except OSError as exc:
            print("ota: link down:", exc)
            client.close()
            if r is None:
                _finish("refused", tid, refused)  # the gateway reads it in the status
                break
            if r is not None:
                r.flush()
                if time.ticks_diff(time.ticks_ms(), r.last_progress) > _IDLE_MS:
                    _finish("interrupted", tid, "link down for %d s" % (_IDLE_MS // 1000))
                    break
            time.sleep_ms(backoff)
            backoff = min(backoff * 2, 5000)
    __import__("mqttrare").disconnect(client)
    return _reset()


def _reset():
    return 4  # otafs.receive() resets the board
