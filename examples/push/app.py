"""A web app that receives walfeed's push deliveries: FastAPI under uvicorn, plain HTTP/1.1.

    WALFEED_PUSH_SECRET=... WALFEED_EVENTS=events.jsonl \
        /usr/bin/python3 -m uvicorn app:app --host 127.0.0.1 --port 8000

    walfeedctl push create orders --url http://127.0.0.1:8000/walfeed --secret-file secret

Every request is one batch of changes (walfeed's JSON format: a walfeed.v1.PushBatch). The app
  - checks the Walfeed-Signature header (HMAC-SHA256 of "<timestamp>.<body>" with the shared
    secret) and refuses a request older than five minutes, so a captured request cannot be
    replayed later;
  - applies each batch at most once: the batch's Idempotency-Key is stored with its changes, in
    one appended line of the events file, and a batch whose key is already there is answered
    200 without applying it again (walfeed sends a batch again when it did not hear the answer,
    after a restart too, always under the same key);
  - answers 2xx only once the batch is durable (fsync), so walfeed moves on only past what is
    safe; on any error it answers 5xx and walfeed retries the same batch.
Killed in the middle of an append, it drops the torn last line when it starts again: that batch
was never acknowledged, and walfeed sends it again.
"""
import hashlib
import hmac
import json
import os
import threading
import time

from fastapi import FastAPI, HTTPException, Request

SIGNATURE_TOLERANCE_SECONDS = 300


def verify_signature(secret: bytes, header: str, body: bytes, now=None,
                     tolerance=SIGNATURE_TOLERANCE_SECONDS) -> bool:
    """True when `header` (Walfeed-Signature: t=<unix seconds>,v1=<hex>) signs `body` with
    `secret` and its timestamp is within `tolerance` seconds of `now`."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        signature = fields["v1"]
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


class EventsFile:
    """The app's state: one JSON line per applied batch, {"key": ..., "changes": [...]}."""

    def __init__(self, path):
        self.path = path
        self.keys = set()
        self.lock = threading.Lock()
        good = 0
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            for line in data.split(b"\n")[:-1]:
                self.keys.add(json.loads(line)["key"])  # a bad line inside: refuse to start
                good += len(line) + 1
            if good < len(data):  # a last piece without "\n": torn by a kill, never acknowledged
                with open(path, "r+b") as f:
                    f.truncate(good)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def apply(self, key, changes):
        """False when the batch `key` was applied before."""
        with self.lock:
            if key in self.keys:
                return False
            line = (json.dumps({"key": key, "changes": changes}, separators=(",", ":")) + "\n").encode()
            size = os.lseek(self.fd, 0, os.SEEK_END)
            try:
                written = 0
                while written < len(line):
                    written += os.write(self.fd, line[written:])
                os.fsync(self.fd)
            except OSError:
                os.ftruncate(self.fd, size)  # not applied: walfeed sends the batch again
                raise
            self.keys.add(key)
            return True


SECRET = os.environ.get("WALFEED_PUSH_SECRET", "").encode()
if not SECRET:
    raise SystemExit("set WALFEED_PUSH_SECRET to the subscription's secret (walfeedctl push create "
                     "--secret-file): unsigned requests could come from anyone")
EVENTS = EventsFile(os.environ.get("WALFEED_EVENTS", "events.jsonl"))
app = FastAPI()


@app.post("/walfeed")
async def receive(request: Request):
    body = await request.body()
    if not verify_signature(SECRET, request.headers.get("walfeed-signature", ""), body):
        raise HTTPException(status_code=401, detail="bad or old signature")
    key = request.headers.get("idempotency-key")
    if not key:
        raise HTTPException(status_code=400, detail="no Idempotency-Key")
    try:
        changes = json.loads(body)["changes"]
    except (ValueError, KeyError, TypeError):
        raise HTTPException(status_code=400, detail="not a walfeed.v1.PushBatch in JSON")
    applied = EVENTS.apply(key, changes)
    return {"applied": applied}
