#!/usr/bin/env python3
"""Generates the G.711 oracle files read by tests/core/g711_test.cpp.

The oracle is CPython's audioop module (python3 <= 3.12), on 16-bit samples:
  ulaw_encode.bin  65,536 bytes: audioop.lin2ulaw of every int16 from -32768 to 32767, in order
  alaw_encode.bin  65,536 bytes: audioop.lin2alaw of the same inputs
  ulaw_decode.bin  512 bytes: audioop.ulaw2lin of codes 0..255, int16 little-endian
  alaw_decode.bin  512 bytes: audioop.alaw2lin of codes 0..255, int16 little-endian

Usage: python3 tests/core/data/make_g711_oracle.py [OUT_DIR]   (default: this script's folder)
"""
import os
import struct
import sys
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def main() -> None:
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    pcm = struct.pack("<65536h", *range(-32768, 32768))
    codes = bytes(range(256))
    # audioop works in native byte order; the files are little-endian.
    if sys.byteorder != "little":
        pcm = audioop.byteswap(pcm, 2)
    files = {
        "ulaw_encode.bin": audioop.lin2ulaw(pcm, 2),
        "alaw_encode.bin": audioop.lin2alaw(pcm, 2),
        "ulaw_decode.bin": audioop.ulaw2lin(codes, 2),
        "alaw_decode.bin": audioop.alaw2lin(codes, 2),
    }
    if sys.byteorder != "little":
        for name in ("ulaw_decode.bin", "alaw_decode.bin"):
            files[name] = audioop.byteswap(files[name], 2)
    for name, data in files.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
