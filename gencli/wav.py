"""WAV files and raw PCM from float samples: pure functions, no model library.

Samples arrive as floats in [-1, 1], shaped ``(frames,)`` or ``(channels,
frames)``. :func:`encode` turns them into interleaved little-endian PCM
(16-bit integers by default, or 32-bit floats); :func:`header` makes the
44-byte (PCM) or 58-byte (float) RIFF header for a known number of frames;
:func:`wav_bytes` puts the two together. numpy is imported inside functions.
"""

from __future__ import annotations

import struct

from gencli.errors import UsageError

SAMPLE_FORMATS = ("pcm16", "float32")
_BYTES = {"pcm16": 2, "float32": 4}
_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_IEEE_FLOAT = 3
_MAX_DATA = 0xFFFFFFFF - 58  # a RIFF size field is 32 bits


def check_format(sample_format: str) -> str:
    if sample_format not in SAMPLE_FORMATS:
        raise UsageError(f"unknown sample format {sample_format!r}", "use " + " or ".join(SAMPLE_FORMATS))
    return sample_format


def as_channels(samples):
    """Float32 samples shaped ``(channels, frames)``, whatever shape they came in."""
    import numpy as np

    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array[np.newaxis, :]
    elif array.ndim > 2:
        array = array.reshape(-1, array.shape[-1])
    return array


def encode(samples, sample_format: str = "pcm16") -> bytes:
    """Interleaved little-endian PCM bytes: 16-bit integers (clipped, rounded) or 32-bit floats."""
    import numpy as np

    check_format(sample_format)
    array = as_channels(samples)
    array = np.nan_to_num(array, nan=0.0, posinf=1.0, neginf=-1.0)
    interleaved = np.ascontiguousarray(array.T)  # frame by frame: L R L R ...
    if sample_format == "float32":
        return interleaved.astype("<f4").tobytes()
    return np.rint(np.clip(interleaved, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def header(frames: int, sample_rate: int, channels: int = 1, sample_format: str = "pcm16") -> bytes:
    """The RIFF/WAVE header for ``frames`` frames of ``sample_format`` audio."""
    check_format(sample_format)
    width = _BYTES[sample_format]
    data_size = frames * channels * width
    if data_size > _MAX_DATA:
        raise UsageError("the audio is too long for one WAV file (over 4 GiB)", "use --raw, or shorter text")
    block_align = channels * width
    byte_rate = sample_rate * block_align
    if sample_format == "pcm16":
        fmt = struct.pack("<HHIIHH", _WAVE_FORMAT_PCM, channels, sample_rate, byte_rate, block_align, 16)
        extra = b""
    else:  # IEEE float needs the cbSize field and a 'fact' chunk with the frame count
        fmt = struct.pack("<HHIIHHH", _WAVE_FORMAT_IEEE_FLOAT, channels, sample_rate, byte_rate, block_align, 32, 0)
        extra = b"fact" + struct.pack("<II", 4, frames)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra + b"data" + struct.pack("<I", data_size)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks) + data_size) + b"WAVE" + chunks


def wav_bytes(pcm: bytes, sample_rate: int, channels: int = 1, sample_format: str = "pcm16") -> bytes:
    """A whole WAV file around already encoded PCM bytes."""
    frames = len(pcm) // (channels * _BYTES[check_format(sample_format)])
    return header(frames, sample_rate, channels, sample_format) + pcm


def silence(seconds: float, sample_rate: int, channels: int = 1):
    """Float zeros shaped ``(channels, frames)`` lasting ``seconds``."""
    import numpy as np

    return np.zeros((channels, int(round(seconds * sample_rate))), dtype=np.float32)
