#!/usr/bin/env python3
"""The four per-frame paths as the Python Twilio servers in the field run them.

json.loads -> base64 decode -> audioop.ulaw2lin [-> audioop.ratecv], and back. Prints one JSON
object: microseconds per frame for each path (best of several timeit repeats, one core).
"""
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
import audioop  # noqa: E402  deprecated in 3.11, removed in 3.13: what most servers still use
import base64
import json
import math
import sys
import time
import timeit

SID = "MZ0123456789abcdef0123456789abcdef"


def speechlike(n, rate):
    return b"".join(
        int(6000 * math.sin(2 * math.pi * 220 * i / rate) + 3000 * math.sin(2 * math.pi * 1250 * i / rate))
        .to_bytes(2, "little", signed=True)
        for i in range(n)
    )


pcm8 = speechlike(160, 8000)
pcm16 = speechlike(320, 16000)
inbound_text = json.dumps(
    {
        "event": "media",
        "sequenceNumber": "1234",
        "media": {"track": "inbound", "chunk": "1233", "timestamp": "24660",
                  "payload": base64.b64encode(audioop.lin2ulaw(pcm8, 2)).decode()},
        "streamSid": SID,
    },
    separators=(",", ":"),
)

up_state = [None]
down_state = [None]


def inbound():
    msg = json.loads(inbound_text)
    return audioop.ulaw2lin(base64.b64decode(msg["media"]["payload"]), 2)


def outbound():
    payload = base64.b64encode(audioop.lin2ulaw(pcm8, 2)).decode()
    return json.dumps({"event": "media", "streamSid": SID, "media": {"payload": payload}})


def inbound16k():
    msg = json.loads(inbound_text)
    lin = audioop.ulaw2lin(base64.b64decode(msg["media"]["payload"]), 2)
    out, up_state[0] = audioop.ratecv(lin, 2, 1, 8000, 16000, up_state[0])
    return out


def outbound16k():
    lin, down_state[0] = audioop.ratecv(pcm16, 2, 1, 16000, 8000, down_state[0])
    payload = base64.b64encode(audioop.lin2ulaw(lin, 2)).decode()
    return json.dumps({"event": "media", "streamSid": SID, "media": {"payload": payload}})


def per_frame_us(fn, number=20000, repeat=7):
    # CPU time of this process, as Google Benchmark's cpu_time on the C++ side: a busy machine
    # then slows neither side's figure by waiting for the core.
    return min(timeit.repeat(fn, number=number, repeat=repeat, timer=time.process_time)) / number * 1e6


result = {
    "InboundFrame": per_frame_us(inbound),
    "OutboundFrame": per_frame_us(outbound),
    "InboundFrame16k": per_frame_us(inbound16k),
    "OutboundFrame16k": per_frame_us(outbound16k),
    "python": sys.version.split()[0],
}
print(json.dumps(result))
