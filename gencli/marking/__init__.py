"""Every file gencli writes says it is AI-generated: XMP by default, a signed C2PA manifest on request.

:func:`mark_files` is the one place files are marked, for every task that
writes them (``engine.output_of`` calls it, for single runs and batches alike):

- **XMP** (on unless ``--no-mark``): IPTC's ``DigitalSourceType`` =
  ``trainedAlgorithmicMedia``, the generator, the model's id, revision and
  sha256, the seed, the settings and the hash of the content, in the file's
  standard place (PNG: an ``iTXt`` chunk; WAV: a ``_PMX`` chunk beside a
  ``LIST``/``INFO`` one; MP4, GIF, WebP: :mod:`gencli.marking.video`). See :mod:`gencli.marking.xmp`.
- **C2PA** (``--sign``, with the ``gencli[sign]`` extra): a manifest signed with
  the user's certificate, over the marked file (:mod:`gencli.signing`).

The record says which marks each file got (``"marks"``); every record says
``"ai_generated": true``, text included, which has no in-band standard.
The invisible watermark is in the pixels, so the image task adds it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from gencli.errors import UsageError
from gencli.marking import png, riff, video, xmp
from gencli.version import __version__

MIME = {"png": "image/png", "wav": "audio/wav", "mp4": "video/mp4", "gif": "image/gif", "webp": "image/webp"}
# Record fields that are not settings: the prompt (kept out of metadata other tools show),
# where files went, how long it took, what the mark itself says.
_NOT_SETTINGS = {
    "schema", "task", "id", "prompt", "negative", "paths", "timings", "gencli_version", "model",
    "seed", "seeds", "ai_generated", "marks", "error",
}  # fmt: skip


def check(params: Mapping[str, Any]) -> None:
    """Refuse marking options that do not go together, and a signer that cannot sign, before anything loads."""
    sign = bool(params.get("sign"))
    if not params.get("mark", True):
        for name, flag in (("sign", "--sign"), ("watermark", "--watermark")):
            if params.get(name):
                raise UsageError(f"{flag} marks the files, and --no-mark asks for none", f"drop {flag} or --no-mark")
    if sign:
        signer_of(params)


def signer_of(params: Mapping[str, Any]):
    """The C2PA signer for ``--sign-cert`` and ``--sign-key`` (loaded once per pair)."""
    cert, key = params.get("sign_cert"), params.get("sign_key")
    if not cert or not key:
        raise UsageError(
            "--sign needs a certificate chain and its private key",
            "give --sign-cert CHAIN.pem and --sign-key KEY.pem (or sign-cert and sign-key in the config file)",
        )
    return _signer(str(Path(cert).expanduser().resolve()), str(Path(key).expanduser().resolve()))


@lru_cache(maxsize=4)
def _signer(cert: str, key: str):
    from gencli import signing

    return signing.load_signer(signing.SignerFiles(cert_chain=Path(cert), key=Path(key)))


def facts_of(record: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
    """What the marks of file ``index`` say, from its record: generator, model, seed, settings."""
    found = record.get("model")
    model: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    seeds = record.get("seeds")
    frames = record.get("frames")
    if record.get("container") == "frames" and isinstance(frames, int) and frames > 0:
        index //= frames  # gencli video --format frames: a file a frame, a video's frames in a row
    seed = seeds[index] if isinstance(seeds, list) and index < len(seeds) else record.get("seed")
    return {
        "generator": f"gencli {__version__}",
        "date": xmp.create_date(),
        "task": record.get("task"),
        "model": model.get("id"),
        "revision": model.get("revision"),
        "model_sha256": model.get("sha256"),
        "seed": seed,
        "settings": {key: value for key, value in record.items() if key not in _NOT_SETTINGS},
    }


def mark_files(data: list[bytes], extension: str | None, record: dict, params: Mapping[str, Any]) -> list[bytes]:
    """Each file's bytes marked as ``params`` ask (XMP unless ``mark`` is false, C2PA with ``sign``).

    Sets ``record["marks"]``: which marks the files carry.
    """
    markers = _MARKERS.get(extension or "") if params.get("mark", True) else None
    sign = markers is not None and bool(params.get("sign"))
    record["marks"] = {
        "xmp": markers is not None,
        "c2pa": sign,
        "watermark": markers is not None and bool(params.get("watermark")),
    }
    if markers is None:
        return data
    content_hash, add_xmp = markers
    marked = []
    for index, file in enumerate(data):
        facts = facts_of(record, index)
        facts["content_hash"] = content_hash(file)
        file = add_xmp(file, facts)
        if sign:
            from gencli import signing

            signed_facts = {key: value for key, value in facts.items() if value is not None and key != "date"}
            mime = video.MIME.get(video.container(file) or "", MIME[extension or ""])
            file = signing.sign(file, mime, signed_facts, signer_of(params))
        marked.append(file)
    return marked


def picture_hash(file: bytes) -> str:
    """A PNG's pixel hash; an animated PNG's (and any video container's) over every frame."""
    if video.container(file) == "png":
        return png.pixel_hash(file)
    return video.content_hash(file)


def _video(file: bytes, facts: dict) -> bytes:
    return video.with_xmp(file, xmp.packet(facts))


def _wav(file: bytes, facts: dict) -> bytes:
    comment = f"AI-generated (IPTC trainedAlgorithmicMedia) by gencli {__version__}"
    if facts.get("model"):
        comment += f" with {facts['model']}"
    info = {b"ISFT": f"gencli {__version__}", b"ICMT": comment, b"ICRD": str(facts.get("date", ""))[:10]}
    return riff.with_chunks(file, [riff.info_list(info), riff.chunk(riff.XMP_CHUNK, xmp.packet(facts))])


_MARKERS: dict[str, tuple[Callable[[bytes], str], Callable[[bytes, dict], bytes]]] = {
    "png": (picture_hash, _video),  # a PNG, or gencli video's animated PNG (and its frames)
    "wav": (riff.sample_hash, _wav),
    # gencli video: the container is read from the bytes, so a file is marked as what it is
    "mp4": (video.content_hash, _video),
    "gif": (video.content_hash, _video),
    "webp": (video.content_hash, _video),
}
