"""The example app (app.py) behind a fault injector, for examples/push/run_push_test.py only.

POST /_test/mode {"mode": M, "seconds": S} makes the next S seconds of /walfeed requests:
  "fail500"   answered 500, "fail429" answered 429 with Retry-After: 1,
  "reject422" answered 422 (walfeed pauses the subscription), "slow" held 2 s before the app
  handles them (longer than the subscription's timeout: walfeed gives up and sends the batch
  again, which the app must drop by its key), "ok" (the default) passed on.
GET /_test/stats answers what was seen: requests, HTTP versions, Upgrade headers, redeliveries.
POST /debezium takes Debezium-format deliveries (one envelope per request, as Debezium Server's
HTTP sink sends) into $WALFEED_DEBEZIUM_EVENTS, once per Idempotency-Key.
Each /walfeed request's body and Walfeed-Signature are kept in $WALFEED_LAST_REQUEST.{body,sig}.
"""
import asyncio
import json
import os
import time

import app as example

STATE = {"mode": "ok", "until": 0.0}
STATS = {"requests": 0, "http_versions": {}, "upgrade_headers": 0, "answered": {}, "duplicates": 0,
         "attempts_above_1": 0}
DEBEZIUM = example.EventsFile(os.environ.get("WALFEED_DEBEZIUM_EVENTS", "debezium.jsonl"))
LAST_REQUEST = os.environ.get("WALFEED_LAST_REQUEST", "last-request")


async def read_body(receive):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def answer(send, status, payload, headers=()):
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())] + list(headers)})
    await send({"type": "http.response.body", "body": data})


async def fault_app(scope, receive, send):
    if scope["type"] != "http":
        return await example.app(scope, receive, send)
    path = scope["path"]
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    if path == "/_test/mode":
        asked = json.loads(await read_body(receive))
        STATE["mode"], STATE["until"] = asked["mode"], time.time() + asked.get("seconds", 1e9)
        return await answer(send, 200, STATE)
    if path == "/_test/stats":
        return await answer(send, 200, STATS)
    body = await read_body(receive)
    STATS["requests"] += 1
    version = scope.get("http_version", "?")
    STATS["http_versions"][version] = STATS["http_versions"].get(version, 0) + 1
    STATS["upgrade_headers"] += "upgrade" in headers or "http2-settings" in headers
    STATS["attempts_above_1"] += headers.get("walfeed-attempt", "1") != "1"
    if path == "/debezium":
        envelope = json.loads(body)
        applied = DEBEZIUM.apply(headers.get("idempotency-key", ""), [envelope])
        return await answer(send, 200, {"applied": applied})
    with open(LAST_REQUEST + ".body", "wb") as f:
        f.write(body)
    with open(LAST_REQUEST + ".sig", "w") as f:
        f.write(headers.get("walfeed-signature", ""))
    mode = STATE["mode"] if time.time() < STATE["until"] else "ok"
    STATS["answered"][mode] = STATS["answered"].get(mode, 0) + 1
    if mode == "fail500":
        return await answer(send, 500, {"detail": "failing on purpose"})
    if mode == "fail429":
        return await answer(send, 429, {"detail": "slow down"}, [(b"retry-after", b"1")])
    if mode == "reject422":
        return await answer(send, 422, {"detail": "rejected by the test app"})
    if mode == "slow":
        await asyncio.sleep(2)
    was_applied = [None]

    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    async def watch(message):
        if message["type"] == "http.response.body" and b'"applied":false' in message.get("body", b""):
            was_applied[0] = False
        await send(message)

    await example.app(scope, replay, watch)
    if was_applied[0] is False:
        STATS["duplicates"] += 1
