"""What a file says about how it was made: the reading side of :mod:`gencli.marking`.

:func:`verify` reads one file (a PNG, WAV, MP4, GIF or WebP; bounded, never executed) and
returns a :class:`Report`: whether it is marked as AI-generated and by what
(XMP, a C2PA manifest, the invisible watermark), what made it (generator,
model, revision, seed, settings), and whether its pixels or samples still
match the hash recorded when it was written. Everything in the file is
untrusted: values are returned as found, and printing escapes them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gencli.errors import EXIT_NOT_MARKED, EXIT_OK, EXIT_TAMPERED, EXIT_USAGE, UsageError
from gencli.marking import MIME, picture_hash, png, riff, video, xmp

MAX_FILE = 1 << 30  # 1 GiB: more than any file gencli writes by default; larger ones are not read

MARKED, TAMPERED, NOT_MARKED, UNREADABLE = "marked", "tampered", "not marked", "unreadable"
# The exit code for a set of reports: the first of these statuses found decides.
_EXIT = ((TAMPERED, EXIT_TAMPERED), (UNREADABLE, EXIT_USAGE), (NOT_MARKED, EXIT_NOT_MARKED))


@dataclass
class Report:
    """What :func:`verify` found in one file (its ``--json`` record, as :meth:`as_record` gives it)."""

    path: str
    status: str = NOT_MARKED
    format: str | None = None
    ai_generated: bool = False
    marks: list[str] = field(default_factory=list)  # "xmp", "c2pa", "watermark": the marks found
    generator: str | None = None
    date: str | None = None
    task: str | None = None
    model: dict[str, str | None] = field(default_factory=dict)
    seed: str | None = None
    settings: Any = None
    content: str = "not recorded"  # "intact", "changed", "not recorded", "unreadable"
    c2pa: dict[str, Any] | None = None
    watermark: str = "not checked"  # "found", "not found", "not checked"
    watermark_payload: str | None = None  # what the watermark holds (gencli's: "gencli"), escaped as Python does
    problems: list[str] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def exit_code(reports: list[Report]) -> int:
    """0 when every file is marked and intact; else the code of the worst status (see the README)."""
    for status, code in _EXIT:
        if any(report.status == status for report in reports):
            return code
    return EXIT_OK


def verify(path: str | Path) -> Report:
    """The report for the file at ``path``; a file that cannot be read is a report too (``unreadable``)."""
    report = Report(str(path))
    try:
        data = read_bounded(Path(path))
    except OSError as exc:
        report.status = UNREADABLE
        report.problems.append(f"cannot read it: {exc.strerror or exc}")
        return report
    except ValueError as exc:
        report.status = UNREADABLE
        report.problems.append(str(exc))
        return report
    try:
        if data.startswith(png.SIGNATURE):
            report.format = "png"
            _read_png(data, report)
        elif riff.is_wav(data):
            report.format = "wav"
            _read_wav(data, report)
        elif video.container(data) in ("mp4", "gif", "webp"):
            report.format = video.container(data)
            _read_video(data, report)
        else:
            report.problems.append("not a PNG or WAV file, nor an MP4, GIF or WebP video: the formats gencli marks")
    except (png.NotPNG, riff.NotWAV, video.NotVideo) as exc:
        report.problems.append(str(exc))
    report.status = _status(report)
    return report


def read_bounded(path: Path) -> bytes:
    """A regular file's bytes, at most :data:`MAX_FILE` (a FIFO or device is refused, never waited on)."""
    from gencli.files import NotAFile, read_regular

    if path.is_file() and path.stat().st_size > MAX_FILE:  # said before a byte of it is read
        raise ValueError(f"over {MAX_FILE >> 30} GiB, more than verify reads")
    try:
        data = read_regular(path, MAX_FILE)
    except NotAFile:
        raise ValueError("not a regular file") from None
    if len(data) > MAX_FILE:
        raise ValueError(f"over {MAX_FILE >> 30} GiB, more than verify reads")
    return data


def _read_png(data: bytes, report: Report) -> None:
    _read_xmp(png.read_xmp(data), report)
    _check_content(report, lambda: picture_hash(data), "pixels")
    if png.has_chunk(data, png.C2PA_CHUNK):
        _read_c2pa(data, "png", report)
    _read_watermark(data, report)


def _read_wav(data: bytes, report: Report) -> None:
    _read_xmp(riff.read_xmp(data), report)
    _check_content(report, lambda: riff.sample_hash(data), "samples")
    if riff.has_chunk(data, riff.C2PA_CHUNK):
        _read_c2pa(data, "wav", report)


def _read_video(data: bytes, report: Report) -> None:
    """MP4, GIF or WebP from gencli video: the XMP, the frames (MP4: its stream) against their hash, C2PA."""
    _read_xmp(video.read_xmp(data), report)
    _check_content(report, lambda: video.content_hash(data), "frames")
    if report.format is not None and video.has_c2pa(data):
        _read_c2pa(data, report.format, report)


def _read_xmp(packet: bytes | None, report: Report) -> None:
    if packet is None:
        return
    found = xmp.parse(packet)
    if found is None:
        report.problems.append("its XMP metadata cannot be read")
        return
    if found.get("digital_source_type") == xmp.DIGITAL_SOURCE_TYPE:
        report.ai_generated = True
        report.marks.append("xmp")
    report.generator, report.date, report.task = found.get("generator"), found.get("date"), found.get("task")
    report.model = {"id": found.get("model"), "revision": found.get("revision"), "sha256": found.get("model_sha256")}
    report.model = {key: value for key, value in report.model.items() if value is not None}
    report.seed = found.get("seed")
    report.settings = _settings(found.get("settings"))
    report.content = found.get("content_hash") or "not recorded"  # replaced by the check below


def _settings(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _check_content(report: Report, digest, what: str) -> None:
    recorded = report.content
    if recorded == "not recorded":
        return
    try:
        actual = digest()
    except (png.NotPNG, riff.NotWAV, video.NotVideo) as exc:
        report.content = "unreadable"
        report.problems.append(str(exc))
        return
    report.content = "intact" if actual == recorded else "changed"
    if report.content == "changed":
        report.problems.append(f"the {what} differ from those recorded when the file was written")


def _read_c2pa(data: bytes, extension: str, report: Report) -> None:
    from gencli import signing

    if not signing.available():
        report.c2pa = {"present": True, "checked": False}
        report.problems.append(f"it carries a C2PA manifest; to check it: {signing.INSTALL_HINT}")
        return
    found = signing.read(data, MIME[extension])
    if found is None:
        return
    report.c2pa = {"present": True, "checked": True, **found.as_dict()}
    if found.valid:
        report.marks.append("c2pa")
        report.ai_generated = report.ai_generated or bool(found.ai_generated)
    else:
        report.problems.append(f"its C2PA manifest is not valid ({found.validation_state})")


def _read_watermark(data: bytes, report: Report) -> None:
    import io

    from PIL import Image

    from gencli import watermark

    try:
        with Image.open(io.BytesIO(data)) as image:
            if not watermark.can_carry(image.width, image.height):
                return
            found = watermark.detect(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, UsageError):
        return  # too large to look into, or pixels Pillow cannot read (said by the content check)
    report.watermark = "found" if found is not None else "not found"
    if found is not None:
        report.watermark_payload = repr(found.payload)[2:-1]
        report.marks.append("watermark")
        report.ai_generated = True


def _status(report: Report) -> str:
    c2pa_bad = report.c2pa is not None and report.c2pa.get("checked") and "c2pa" not in report.marks
    if report.content in ("changed", "unreadable") or c2pa_bad:
        return TAMPERED
    return MARKED if report.ai_generated else NOT_MARKED
