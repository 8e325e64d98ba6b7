"""What the examples' end-to-end tests share: failing with a reason, timed progress lines, a free
loopback port."""
import socket
import time

BEGAN = time.monotonic()


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def say(message):
    print(f"[{time.monotonic() - BEGAN:5.1f} s] {message}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_test(main, suffix=""):
    """Runs a test's main(): exits 1 with "FAIL: <reason><suffix>" on a Failure, and with the
    traceback when the test itself broke."""
    import sys
    import traceback
    try:
        main()
    except Failure as failure:
        print(f"FAIL: {failure}{suffix}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        print(f"FAIL: the test itself failed (above){suffix}", file=sys.stderr)
        sys.exit(1)
