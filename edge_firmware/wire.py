# Binary batch v1 writer for the board: no Batch object, no allocation per batch.
#
# Writes exactly what shared.codec.encode_binary writes (tests compare the two
# byte for byte); the layout is in docs/protocol.md. The channel-name block is
# the same for every batch of a device, so it is built once (names_block).
# Readings are packed as big-endian f32 into one preallocated bytearray as they
# are sampled (put), so a batch in the making holds no float objects; encode()
# then writes the header and copies the packed values behind it.
import struct

_NAN = float("nan")


def names_block(channels):
    out = bytearray()
    for name in channels:
        out.append(len(name))
        out.extend(name.encode())
    return bytes(out)


def size(nch, names, n):
    """Largest encoded size of a batch of ``n`` records (period and anomaly bitmap present)."""
    return 20 + len(names) + (n + 7) // 8 + 4 * nch * n


def put(vals, off, row):
    """Pack one reading (floats, None = missing) into ``vals`` at ``off``."""
    for x in row:
        struct.pack_into(">f", vals, off, _NAN if x is None else x)
        off += 4


def encode(buf, boot, seq, t, names, nch, vals, n, period, anoms):
    """Write one batch of the ``n`` readings packed in ``vals`` into ``buf``; return its length."""
    flags = (1 if period is not None else 0) | (2 if anoms else 0)
    struct.pack_into(">BBBBIII", buf, 0, 1, flags, nch, n, boot, seq, t)
    off = 16
    if period is not None:
        struct.pack_into(">I", buf, off, period)
        off += 4
    k = len(names)
    buf[off:off + k] = names
    off += k
    if anoms:
        nb = (n + 7) >> 3
        for i in range(nb):
            buf[off + i] = 0
        for i in anoms:
            buf[off + (i >> 3)] |= 1 << (i & 7)
        off += nb
    k = 4 * nch * n
    buf[off:off + k] = memoryview(vals)[:k]
    return off + k
