"""Where the firmware's RAM goes: a census under the MicroPython unix port.

Runs the config of ``learnae-gateway bench firmware`` (3 replay channels,
batches of 20, a 1 KB receive buffer, 2 RAM batch slots, watchdog on) from
``mpy-cross`` modules against a private Mosquitto: one run at 64 KB validates
the config (boot stage 1), then a census script (compiled too, so it costs
little) boots stage 2 as main.py does at ``--heap`` and prints the live heap
(``gc.mem_alloc()`` after a collection) after each step: the boot, the agent's
modules, the Agent built, the first connect, a status, and what each part of
the Agent holds (freed one by one at the end). The interned strings come from
``micropython.qstr_info()``. The last stdout line is one JSON object.

    .venv/bin/python tools/heap_census.py [--heap 32k]
    .venv/bin/python tools/heap_census.py --sweep 256    # smallest heaps, 256-byte steps

Not counted: main.py's own code (compiled on the board, about 0.7 KB).
``--sweep STEP`` instead runs the config (400 readings) at the cap, the cap
minus STEP bytes, ... until a run fails, three ways: both boot stages (as the
margin search of ``bench firmware`` does, in finer steps), stage 1 alone (the
validation), stage 2 alone (a later boot: stage 1 ran at 64 KB first); it
reports the smallest heap that worked and the failing run's last line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CENSUS = r'''
import gc
import sys
import micropython


def at(label):
    gc.collect()
    print("census", label, gc.mem_alloc())


def qstrs(label):
    gc.collect()
    micropython.qstr_info()
    print("qstrs", label)


at("interpreter")
import startup
args = startup.boot()
startup = None
sys.modules.pop("startup", None)
at("boot")
from agent import Agent
at("modules")
a = Agent(*args)
args = None
at("built")
qstrs("built")
a.connect()
at("connected")
a.publish_status()
at("status")
qstrs("status")
c = a.client
c.cb = None
for obj, names in ((a, ("conf",)), (a, ("sensors",)), (a, ("topics",)), (a, ("vals",)),
                   (c, ("_rbuf", "_rmv")), (c, ("_obuf", "_onemv", "conn")),
                   (a.buf, ("mv", "lens"))):
    gc.collect()
    before = gc.mem_alloc()
    for n in names:
        setattr(obj, n, None)
    gc.collect()
    print("holds", "+".join(names), before - gc.mem_alloc())
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heap", default="32k")
    parser.add_argument("--sweep", type=int, default=0, metavar="STEP",
                        help="find the smallest working heaps in STEP-byte steps instead")
    args = parser.parse_args()
    if args.sweep:
        print(json.dumps(sweep(int(args.heap[:-1]) * 1024, args.sweep)))
        return 0
    from gateway import micropython_host
    from gateway.bench.firmware import COLUMNS
    from gateway.broker import PrivateBroker
    from gateway.commands.flash import build_firmware, mpy_cross
    from gateway.commands.sim import extract_airquality, run_firmware
    from gateway.devices import make_device_config

    work = Path(tempfile.mkdtemp(prefix="learnae-census-"))
    build = build_firmware(work / "build", host=True)
    (work / "census.py").write_text(CENSUS)
    subprocess.run([mpy_cross(), "-O3", "-s", "", "-o", str(build / "census.mpy"),
                    str(work / "census.py")], check=True)
    state = work / "dev"
    state.mkdir()
    columns = list(COLUMNS[:3])
    extract_airquality(state / "replay.csv", columns)
    result: dict = {"heap": args.heap, "steps": {}, "holds": {}, "qstrs": {}}
    with PrivateBroker(work / "broker") as broker:
        doc = make_device_config("census1", mqtt_host="127.0.0.1", mqtt_port=broker.port,
                                 topic_prefix="census", period_ms=0, batch_size=20,
                                 sensors=[{"type": "replay", "columns": columns}])
        doc["mqtt"]["max_incoming"] = 1024
        doc["buffer"] = {"ram_batches": 2}
        (state / "config.json").write_text(json.dumps(doc))
        with (state / "first.txt").open("w") as handle:  # stage 1, then a short stage 2
            code = run_firmware(state, count=20, heap="64k", build_dir=build, stdout=handle,
                                stderr=handle)
        if code:
            print((state / "first.txt").read_text(), file=sys.stderr)
            return 1
        rel = Path(os.path.relpath(build, state))
        done = micropython_host.run("-m census", heap=args.heap, extra_path=[rel / "host"],
                                    build_dir=rel, cwd=state)
    if done.returncode:
        print(done.stdout + done.stderr, file=sys.stderr)
        return 1
    pending: list[str] = []
    for line in done.stdout.splitlines():
        words = line.split()
        if line.startswith("census "):
            result["steps"][" ".join(words[1:-1])] = int(words[-1])
        elif line.startswith("holds "):
            result["holds"][words[1]] = int(words[2])
        elif line.startswith("qstr pool:"):
            pending = words[2:]
        elif line.startswith("qstrs "):
            result["qstrs"][words[1]] = dict(w.rstrip(",").split("=") for w in pending)
        else:
            print(line, file=sys.stderr)
    print(json.dumps(result))
    return 0


def sweep(cap: int, step: int) -> dict:
    """The smallest heap (bytes) that runs the bench's config, three ways."""
    from gateway import micropython_host
    from gateway.bench.firmware import COLUMNS
    from gateway.broker import PrivateBroker
    from gateway.commands.flash import build_firmware
    from gateway.commands.sim import extract_airquality, run_firmware
    from gateway.devices import make_device_config

    work = Path(tempfile.mkdtemp(prefix="learnae-sweep-"))
    build = build_firmware(work / "build", host=True)
    columns = list(COLUMNS[:3])
    extract_airquality(work / "replay.csv", columns)
    out: dict = {"cap": cap, "step": step}
    with PrivateBroker(work / "broker") as broker:
        doc = make_device_config("sweep1", mqtt_host="127.0.0.1", mqtt_port=broker.port,
                                 topic_prefix="sweep", period_ms=0, batch_size=20,
                                 sensors=[{"type": "replay", "columns": columns}])
        doc["mqtt"]["max_incoming"] = 1024
        doc["buffer"] = {"ram_batches": 2}
        for mode in ("both", "stage1", "stage2"):
            smallest, failure = None, None
            for heap in range(cap, 8192, -step):
                state = work / f"{mode}{heap}"
                state.mkdir()
                (state / "config.json").write_text(json.dumps(doc))
                (state / "replay.csv").write_bytes((work / "replay.csv").read_bytes())
                log = state / "out.txt"
                if mode == "stage2":
                    with (state / "first.txt").open("w") as handle:
                        run_firmware(state, count=20, heap="64k", build_dir=build,
                                     stdout=handle, stderr=handle)
                with log.open("w") as handle:
                    if mode == "stage1":  # one lifetime: it exits 5 once valid.json is saved
                        rel = Path(os.path.relpath(build, state))
                        proc = micropython_host.spawn("-m main", "--count", "20", heap=str(heap),
                                                      extra_path=[rel / "host"], build_dir=rel,
                                                      cwd=state, stdout=handle, stderr=handle)
                        code = 0 if proc.wait() == 5 else 1
                    else:
                        code = run_firmware(state, count=400, heap=str(heap), build_dir=build,
                                            stdout=handle, stderr=handle)
                if code:
                    lines = log.read_text().strip().splitlines()
                    failure = {"heap": heap, "error": lines[-1] if lines else ""}
                    break
                smallest = heap
            out[mode] = {"smallest": smallest, "fails": failure}
            print(f"heap census: {mode}: {out[mode]}", file=sys.stderr)
    return out


if __name__ == "__main__":
    sys.exit(main())
