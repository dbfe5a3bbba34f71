#!/usr/bin/env python3
"""Small Media Streams servers written the way Twilio's public samples are (a webhook answering
TwiML, and a WebSocket handler looping over the JSON messages), for check_samples_test: mediasim
check must not fail a server for what Twilio tolerates.

  twilio_samples.py echo-marks   <Connect>: every media frame echoed back, a mark every 50
  twilio_samples.py listen-only  <Start> + <Pause>: reads the stream, never sends a thing
  twilio_samples.py clear        <Connect>: a 3 s greeting pushed at once with a mark; when the
                                 caller talks over it, `clear`; an answer after they stop

Prints "listening on http://127.0.0.1:P/voice ws://127.0.0.1:Q/media" once both are up.
Needs Debian's python3-websockets.
"""
import asyncio
import base64
import http.server
import json
import math
import sys
import threading

import websockets

MODE = sys.argv[1] if len(sys.argv) > 1 else "echo-marks"
WS_PORT = 0


def ulaw_decode(u):
    u = ~u & 0xFF
    sign, exp, mant = u & 0x80, (u >> 4) & 7, u & 0x0F
    s = (((mant << 3) + 0x84) << exp) - 0x84
    return -s if sign else s


def ulaw_encode(s):
    sign = 0x80 if s < 0 else 0
    s = min(abs(s), 32635) + 0x84
    exp, mask = 7, 0x4000
    while exp > 0 and not s & mask:
        exp -= 1
        mask >>= 1
    return ~(sign | (exp << 4) | ((s >> (exp + 3)) & 0x0F)) & 0xFF


DECODE = [ulaw_decode(i) for i in range(256)]


def tone(seconds, hz=440.0):
    n = int(8000 * seconds)
    return bytes(ulaw_encode(int(8000 * math.sin(2 * math.pi * hz * i / 8000))) for i in range(n))


def loud(payload):
    pcm = [DECODE[b] for b in base64.b64decode(payload)]
    return math.sqrt(sum(x * x for x in pcm) / max(1, len(pcm))) > 300


class Webhook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        url = f"ws://127.0.0.1:{WS_PORT}/media"
        if MODE == "listen-only":
            twiml = f'<Response><Start><Stream url="{url}"/></Start><Pause length="60"/></Response>'
        else:
            twiml = f'<Response><Connect><Stream url="{url}"/></Connect></Response>'
        body = twiml.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


async def send_audio(ws, sid, audio):
    for i in range(0, len(audio), 160):
        chunk = base64.b64encode(audio[i:i + 160]).decode()
        await ws.send(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": chunk}}))


async def handler(ws, path=None):
    sid = None
    count = 0
    pending = set()
    speaking, loud_run, quiet_run, answers = False, 0, 0, 0
    async for message in ws:
        data = json.loads(message)
        event = data["event"]
        if event == "connected":
            print("connected", flush=True)
        elif event == "start":
            sid = data["start"]["streamSid"]
            if MODE == "clear":
                await send_audio(ws, sid, tone(3.0))
                await ws.send(json.dumps({"event": "mark", "streamSid": sid,
                                          "mark": {"name": "greeting"}}))
                pending.add("greeting")
        elif event == "media":
            count += 1
            if MODE == "echo-marks":
                await ws.send(json.dumps({"event": "media", "streamSid": sid,
                                          "media": {"payload": data["media"]["payload"]}}))
                if count % 50 == 0:
                    name = f"echo-{count}"
                    await ws.send(json.dumps({"event": "mark", "streamSid": sid,
                                              "mark": {"name": name}}))
            elif MODE == "clear":
                if loud(data["media"]["payload"]):
                    loud_run, quiet_run = loud_run + 1, 0
                else:
                    loud_run, quiet_run = 0, quiet_run + 1
                if not speaking and loud_run >= 3:
                    speaking = True
                    if pending:  # barge-in: drop what is still queued at Twilio
                        await ws.send(json.dumps({"event": "clear", "streamSid": sid}))
                elif speaking and quiet_run >= 25:
                    speaking = False
                    answers += 1
                    await send_audio(ws, sid, tone(1.0, 660.0))
                    name = f"answer-{answers}"
                    await ws.send(json.dumps({"event": "mark", "streamSid": sid,
                                              "mark": {"name": name}}))
                    pending.add(name)
        elif event == "mark":
            pending.discard(data["mark"]["name"])
        elif event == "stop":
            print("stop", flush=True)
            break


async def main():
    global WS_PORT
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        WS_PORT = server.sockets[0].getsockname()[1]
        web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        print(f"listening on http://127.0.0.1:{web.server_address[1]}/voice "
              f"ws://127.0.0.1:{WS_PORT}/media", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
