# Board entry point: MicroPython runs main.py after boot.
# On a board an unexpected error resets the board after a pause (the boot
# counter moves on, so no reading key repeats); on a host it ends the process.
# Kept short: this file is compiled on the board, and every name in it is
# interned for good.
import gc
import sys

try:  # OTA state on flash (otaboot.py): the active version first on sys.path
    OTA = __import__("os").stat("ota") and __import__("otaboot").boot()
except OSError:
    OTA = 0  # no update ever: the files flashed over USB
sys.modules.pop("otaboot", None)
import startup  # noqa: E402

HOST = startup.HOST
try:
    args = startup.boot()
    # the boot-only module goes before the agent is built: its RAM is the buffer's
    del startup
    sys.modules.pop("startup", None)
    gc.collect()
    if isinstance(args, int):
        code = args
    elif isinstance(args, str):  # stage 1: validate the changed config, restart
        import confcheck

        code = confcheck.run(args)
    else:
        from agent import Agent

        agent = Agent(*args)
        args = None
        if OTA == 2:  # a new version: confirmed once online and published, or rolled back
            __import__("otafs").arm(agent)
        if agent.conf["power_mode"] == "deep_sleep":
            import sleepmode

            code = sleepmode.wake(agent)
        else:
            code = agent.run()
except KeyboardInterrupt:
    code = 130
except Exception as exc:  # the last line of defence on an unattended board
    sys.print_exception(exc)
    if not HOST:
        import time

        import machine

        time.sleep(10)
        machine.reset()
    code = 1
if HOST and code:
    sys.exit(code)
