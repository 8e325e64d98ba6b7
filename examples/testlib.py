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
