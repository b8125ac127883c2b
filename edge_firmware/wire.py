# Binary batch v1 writer for the board: no Batch object, no buffer allocated per batch.
#
# Writes exactly what shared.codec.encode_binary(batch, scales) writes (tests
# compare the two byte for byte); the layout is in docs/protocol.md. Each
# channel name is preceded by a descriptor byte (code << 4) | (length - 1):
# code 0 = float32 values, code k = int16 counts of 10**(k - 8) units.
# The channel-name block is the same for every batch of a device, so it is
# built once (agentinit.setup) with code 0; encode() ORs in this batch's codes.
# ``codes`` holds 2 bytes per channel: this batch's codes, then each channel's
# own code (0 when it has no resolution). Each reading is packed as it is
# sampled (put) into one preallocated bytearray ``vals``: its first two thirds
# hold big-endian f32, the last third the int16 counts of the channels with a
# resolution, computed from the reading exactly as shared.codec does. A value
# that does not fit int16 clears that channel's code for the batch, so the
# batch sends the channel's f32 values instead: nothing is clipped.
import struct

_NAN = float("nan")


def put(vals, i, row, codes):
    """Pack reading ``i`` of the open batch (floats, None = missing) into ``vals``."""
    nch = len(row)
    if not i:
        for j in range(nch):
            codes[j] = codes[nch + j]
    k = nch * i
    h = len(vals) // 3 * 2  # the int16 counts
    for j in range(nch):
        x = row[j]
        if x is not None and x != x:
            x = None  # NaN: missing, as on the codec's side
        struct.pack_into(">f", vals, 4 * k, _NAN if x is None else x)
        s = codes[j] - 8
        if s > -8:
            c = -32768
            if x is not None:
                # shared.codec._to_int16: round half to even; fits when |count| <= 32767
                y = x * 10 ** -s if s < 0 else x / 10 ** s
                if -32767.5 < y < 32767.5:
                    c = round(y)
                else:
                    codes[j] = 0  # this channel goes out as float32 in this batch
            struct.pack_into(">h", vals, h + 2 * k, c)
        k += 1


def encode(buf, boot, seq, t, names, nch, vals, n, period, anoms, codes):
    """Write one batch of the ``n`` readings packed by put() into ``buf``; return its length."""
    flags = (1 if period is not None else 0) | (2 if anoms else 0)
    struct.pack_into(">BBBBIII", buf, 0, 1, flags, nch, n, boot, seq, t)
    off = 16
    if period is not None:
        struct.pack_into(">I", buf, off, period)
        off += 4
    buf[off:off + len(names)] = names
    for j in range(nch):
        buf[off] |= codes[j] << 4
        off += 2 + (buf[off] & 0x0F)
    if anoms:
        nb = (n + 7) >> 3
        for i in range(nb):
            buf[off + i] = 0
        for i in anoms:
            buf[off + (i >> 3)] |= 1 << (i & 7)
        off += nb
    h = len(vals) // 3 * 2
    for k in range(n * nch):  # record-major: each value 2 (int16) or 4 (float32) bytes
        src = h + 2 * k if codes[k % nch] else 4 * k
        for b in range(2 if codes[k % nch] else 4):
            buf[off] = vals[src + b]
            off += 1
    return off
