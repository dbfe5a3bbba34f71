#!/usr/bin/env python3
"""Writes the tiny seed WAVs of fuzz/corpus/fuzz_wav/ (a few dozen bytes each).

Run from anywhere: python3 fuzz/corpus/make_wav_seeds.py
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_wav")


def wav(tag, channels, rate, bits, data, extra_fmt=b"", extra_chunks=b"", fmt_size=None):
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits) + extra_fmt
    size = len(fmt) if fmt_size is None else fmt_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", size) + fmt + extra_chunks
    body += b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def main():
    os.makedirs(OUT, exist_ok=True)
    pcm = struct.pack("<8h", 0, 1000, -1000, 32767, -32768, 5, -5, 0)
    seeds = {
        "pcm16_mono_8k.wav": wav(1, 1, 8000, 16, pcm),
        "pcm16_stereo_16k.wav": wav(1, 2, 16000, 16, pcm),
        "mulaw_mono_8k.wav": wav(7, 1, 8000, 8, bytes([0xFF, 0x7F, 0x00, 0x80, 0xFE]), b"\0\0"),
        "alaw_stereo_8k.wav": wav(6, 2, 8000, 8, bytes([0xD5, 0x55, 0x2A, 0xAA]), b"\0\0"),
        "list_chunk.wav": wav(1, 1, 8000, 16, pcm[:4],
                              extra_chunks=b"LIST" + struct.pack("<I", 5) + b"INFOx\0"),
        "extensible.wav": wav(0xFFFE, 1, 8000, 16, pcm[:6],
                              struct.pack("<HHI", 22, 16, 4) + struct.pack("<IHH", 1, 0, 0x10)
                              + bytes.fromhex("800000aa00389b71")),
        "truncated.wav": wav(1, 1, 8000, 16, pcm)[:40],
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
