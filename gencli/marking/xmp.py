"""The XMP packet that says a file is AI-generated, and reading one back.

The packet holds IPTC's ``Iptc4xmpExt:DigitalSourceType`` =
``trainedAlgorithmicMedia`` (the value the EU AI Act's Code of Practice and
C2PA use for output of a generative model), the generator (``xmp:CreatorTool``),
the date, and gencli's own facts in its ``gencli:`` namespace: the model's id,
revision and sha256, the seed, the settings as compact JSON, and the hash of
the content (pixels or samples) at the time it was written.

Reading treats the packet as untrusted: it is bounded in size, a DOCTYPE (the
way into entity expansion) is refused, and only the attributes and simple
elements named here are returned, as strings.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import quoteattr

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GENCLI_NS = "urn:gencli:xmp:1.0/"  # a name, not an address: nothing is fetched from it
MAX_PACKET = 1 << 20  # a packet gencli writes is about 1 KB; anything past 1 MiB is not read

_NAMESPACES = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "gencli": GENCLI_NS,
}
# The properties read back, as prefix:name -> the key they are returned under.
_READ = {
    "Iptc4xmpExt:DigitalSourceType": "digital_source_type",
    "xmp:CreatorTool": "generator",
    "xmp:CreateDate": "date",
    "gencli:task": "task",
    "gencli:model": "model",
    "gencli:revision": "revision",
    "gencli:modelSha256": "model_sha256",
    "gencli:seed": "seed",
    "gencli:settings": "settings",
    "gencli:contentHash": "content_hash",
}


def create_date() -> str:
    """Now in UTC as XMP writes dates; ``SOURCE_DATE_EPOCH`` fixes it, for byte-identical files."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    seconds = int(epoch) if epoch.isdigit() else time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def packet(facts: Mapping[str, Any]) -> bytes:
    """The XMP packet for ``facts`` (keys as :data:`_READ`'s values; None values are left out)."""
    values = {"digital_source_type": DIGITAL_SOURCE_TYPE, **facts}
    if isinstance(values.get("settings"), Mapping):
        values["settings"] = json.dumps(values["settings"], sort_keys=True, separators=(",", ":"), default=str)
    names = {key: name for name, key in _READ.items()}
    attributes = "".join(
        f"\n    {names[key]}={quoteattr(_xml_text(str(value)))}" for key, value in values.items() if value is not None
    )
    declarations = "".join(
        f'\n    xmlns:{prefix}="{uri}"' for prefix, uri in _NAMESPACES.items() if prefix not in ("x", "rdf")
    )
    text = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        f'<x:xmpmeta xmlns:x="{_NAMESPACES["x"]}">\n'
        f'  <rdf:RDF xmlns:rdf="{_NAMESPACES["rdf"]}">\n'
        f'   <rdf:Description rdf:about=""{declarations}{attributes}/>\n'
        "  </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="r"?>'
    )
    return text.encode("utf-8")


def parse(data: bytes) -> dict[str, str] | None:
    """The properties of :data:`_READ` found in an XMP packet, or None when it is not XMP one can read."""
    from xml.etree import ElementTree

    if len(data) > MAX_PACKET or b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        return None
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, ValueError):
        return None
    wanted = {_expanded(name): key for name, key in _READ.items()}
    found: dict[str, str] = {}
    for element in root.iter():
        for attribute, value in element.attrib.items():
            if attribute in wanted:
                found.setdefault(wanted[attribute], value)
        if element.tag in wanted and element.text and element.text.strip():
            found.setdefault(wanted[element.tag], element.text.strip())
    return found


def _xml_text(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot hold (most controls, lone surrogates) as U+FFFD."""
    return "".join(
        char
        if char in "\t\n\r" or ("\x20" <= char <= "\ud7ff") or ("\ue000" <= char <= "\ufffd") or char > "\uffff"
        else "\ufffd"
        for char in text
    )


def _expanded(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{_NAMESPACES[prefix]}}}{local}"
