"""Decoding the 8-bit RGB(A) PNG a headless Chromium screenshot writes, with zlib, struct and numpy."""

import struct
import zlib

import numpy as np


def _paeth(left: int, up: int, upper_left: int) -> int:
    p = left + up - upper_left
    pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
    return left if pa <= pb and pa <= pc else (up if pb <= pc else upper_left)


def _unfilter(kind: int, line: np.ndarray, previous: np.ndarray, channels: int) -> np.ndarray:
    if kind == 0:
        return line
    if kind == 1:  # each byte adds the byte one pixel to the left: a running sum per channel
        return np.cumsum(line.reshape(-1, channels), axis=0, dtype=np.uint8).reshape(-1)
    if kind == 2:
        return line + previous
    out, up = bytearray(line.tobytes()), previous.tobytes()
    for i in range(len(out)):
        left = out[i - channels] if i >= channels else 0
        if kind == 3:
            out[i] = (out[i] + (left + up[i]) // 2) & 0xFF
        else:
            out[i] = (out[i] + _paeth(left, up[i], up[i - channels] if i >= channels else 0)) & 0xFF
    return np.frombuffer(bytes(out), dtype=np.uint8)


def read_rgb(path) -> np.ndarray:
    """The image as a (height, width, 3) uint8 array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    offset, compressed, header = 8, [], None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        payload = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", payload)
        elif kind == b"IDAT":
            compressed.append(payload)
        offset += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, f"unsupported PNG header {header}"
    channels = 3 if colour_type == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(compressed)), dtype=np.uint8).reshape(height, -1)
    rows, previous = [], np.zeros(width * channels, dtype=np.uint8)
    for filtered in raw:
        previous = _unfilter(int(filtered[0]), filtered[1:], previous, channels)
        rows.append(previous)
    return np.stack(rows).reshape(height, width, channels)[:, :, :3]
