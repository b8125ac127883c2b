# Runs under MicroPython and CPython alike: encode and decode every golden vector.
# Prints one line per vector, "<name> ok" or "<name> FAIL <why>".
import json
import sys

from shared.codec import Batch, decode_payload, encode_binary, encode_json

folder = sys.argv[1]
with open(folder + "/manifest.json") as f:
    manifest = json.load(f)
for name in sorted(manifest):
    spec = manifest[name]
    batch = Batch(spec["boot"], spec["seq"], spec["t"], spec["channels"], spec["values"],
                  spec["period_ms"], tuple(spec["anomalies"]))
    with open(folder + "/" + name + ".bin", "rb") as f:
        binary = f.read()
    with open(folder + "/" + name + ".json", "rb") as f:
        text = f.read()
    problems = []
    if encode_binary(batch, spec["scales"]) != binary:
        problems.append("binary encode differs")
    if decode_payload(binary) != batch:
        problems.append("binary decode differs")
    if encode_json(batch) != text:
        problems.append("json encode differs: %r" % encode_json(batch))
    if decode_payload(text) != batch:
        problems.append("json decode differs")
    print(name, "FAIL " + "; ".join(problems) if problems else "ok")
