"""gencli.signing: C2PA manifests signed with a test CA made in a fixture, read back, tampered with.

No network: the chain comes from tests/c2pa_certs.py, no time-stamp authority is named, and
reading never fetches a remote manifest.
"""

from __future__ import annotations

import ast
import io
import json
import os
import struct
import sys
import zlib
from pathlib import Path

import pytest

pytest.importorskip("c2pa", reason="c2pa-python (the gencli[sign] extra) is not installed")

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import c2pa_certs
from gencli import signing
from gencli.errors import UsageError
from gencli.version import __version__

FACTS = {
    "model": "hf-internal-testing/tiny-model-under-test",
    "revision": "0123456789abcdef",
    "seed": 7,
    # Arrays of integers: c2pa's Reader.json() renders them as base64 bytes, lossily ([300, 1] as "LAE=").
    "settings": {"steps": 2, "guidance_scale": 7.5, "size": [32, 32], "seeds": [300, 1, -1]},
    "note": "é \u0000 \u202e",
}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return c2pa_certs.make_chain(tmp_path_factory.mktemp("c2pa"))


@pytest.fixture(scope="module")
def signer(chain):
    return signing.load_signer(signing.SignerFiles(chain.chain, chain.key))


def noisy_png(size: int = 64) -> bytes:
    """A PNG that does not compress: a thumbnail of it would weigh far more than a manifest."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def pillow_image(fmt: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(buffer, fmt)
    return buffer.getvalue()


def wav() -> bytes:
    import numpy as np

    from gencli.wav import encode, wav_bytes

    return wav_bytes(encode(0.5 * np.sin(np.linspace(0.0, 200.0, 1600))), 16000)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


MDAT = bytes(range(64))


def mp4() -> bytes:
    """The smallest ISO BMFF file c2pa signs: ftyp, a moov with an mvhd, an mdat (made by hand, no new package)."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd_body = struct.pack(">IIIII", 0, 0, 1000, 0, 0x10000) + struct.pack(">H", 0x100) + bytes(10) + matrix
    mvhd = _box(b"mvhd", bytes(4) + mvhd_body + bytes(24) + struct.pack(">I", 2))
    return ftyp + _box(b"moov", mvhd) + _box(b"mdat", MDAT)


FORMATS = {
    "image/png": noisy_png,
    "audio/wav": wav,
    "audio/x-wav": wav,
    "video/mp4": mp4,
    "image/jpeg": lambda: pillow_image("JPEG"),
    "image/webp": lambda: pillow_image("WEBP"),
    "image/gif": lambda: pillow_image("GIF"),
}


@pytest.mark.parametrize("mime", sorted(FORMATS))
def test_a_signed_file_reads_back_valid_ai_generated_with_its_facts(mime, chain, signer):
    original = FORMATS[mime]()
    signed = signing.sign(original, mime, FACTS, signer)
    report = signing.read(signed, mime)
    assert report is not None
    assert (report.validation_state, report.valid, report.trusted) == ("Valid", True, False)
    assert report.ai_generated is True
    assert report.digital_source_type == signing.TRAINED_ALGORITHMIC_MEDIA
    assert report.facts == FACTS
    assert report.claim_generator == f"gencli/{__version__}"
    assert (report.signer, report.issuer) == (chain.leaf_cn, "gencli tests")
    assert report.algorithm is not None and report.algorithm.lower() == "es256"
    assert report.errors == ()
    # No thumbnail: the manifest adds a few KiB whatever the content (a thumbnail of the PNG: ~280 KiB).
    assert len(signed) - len(original) < 8 * 1024
    json.dumps(report.as_dict())


def test_the_manifest_says_created_by_a_trained_model_once_and_carries_no_thumbnail(signer):
    import c2pa

    signed = signing.sign(noisy_png(), "image/png", FACTS, signer)
    store = json.loads(c2pa.Reader("image/png", io.BytesIO(signed)).json())
    manifest = store["manifests"][store["active_manifest"]]
    assert "thumbnail" not in manifest
    actions = [a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions")]
    assert [a["label"] for a in actions] == ["c2pa.actions.v2"]
    assert actions[0]["data"]["actions"] == [
        {"action": "c2pa.created", "digitalSourceType": signing.TRAINED_ALGORITHMIC_MEDIA}
    ]
    assert not any(a["label"].startswith("c2pa.thumbnail") for a in manifest["assertions"])


def test_one_signer_signs_many_files(signer):
    for seed in range(3):
        report = signing.read(signing.sign(wav(), "audio/wav", {"seed": seed}, signer), "audio/wav")
        assert report is not None and report.valid and report.facts == {"seed": seed}


def test_the_root_given_as_trust_anchor_makes_the_signature_trusted(chain, signer):
    signed = signing.sign(noisy_png(), "image/png", FACTS, signer)
    report = signing.read(signed, "image/png", trust_anchors=chain.root.read_text())
    assert report is not None and (report.validation_state, report.trusted, report.valid) == ("Trusted", True, True)
    other = c2pa_certs.make_chain(chain.root.parent / "other", prefix="other-")
    report = signing.read(signed, "image/png", trust_anchors=other.root.read_text())
    assert report is not None and (report.validation_state, report.trusted) == ("Valid", False)
    with pytest.raises(UsageError, match="no PEM certificate in the trust anchors"):
        signing.read(signed, "image/png", trust_anchors="not a certificate")


def _flip(data: bytes, offset: int) -> bytes:
    changed = bytearray(data)
    changed[offset] ^= 0x01
    return bytes(changed)


def _png_chunk(data: bytes, kind: bytes) -> tuple[int, int]:
    """(offset of the chunk's data, its length) for the first chunk of ``kind``."""
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        if data[at + 4 : at + 8] == kind:
            return at + 8, length
        at += 12 + length
    raise AssertionError(f"no {kind!r} chunk")


def _with_png_crc(data: bytes, kind: bytes) -> bytes:
    """The chunk's CRC made right again, so that only the C2PA hash can tell."""
    start, length = _png_chunk(data, kind)
    crc = struct.pack(">I", zlib.crc32(data[start - 4 : start + length]))
    return data[: start + length] + crc + data[start + length + 4 :]


def test_a_changed_pixel_byte_reads_back_not_valid(signer):
    signed = signing.sign(noisy_png(), "image/png", FACTS, signer)
    start, length = _png_chunk(signed, b"IDAT")
    report = signing.read(_with_png_crc(_flip(signed, start + length // 2), b"IDAT"), "image/png")
    assert report is not None and not report.valid and report.validation_state == "Invalid"
    assert "assertion.dataHash.mismatch" in [problem.code for problem in report.errors]


def test_a_changed_sample_byte_reads_back_not_valid(signer):
    signed = signing.sign(wav(), "audio/wav", FACTS, signer)
    report = signing.read(_flip(signed, signed.index(b"data") + 8 + 101), "audio/wav")
    assert report is not None and not report.valid
    assert "assertion.dataHash.mismatch" in [problem.code for problem in report.errors]


def test_a_changed_video_byte_reads_back_not_valid(signer):
    signed = signing.sign(mp4(), "video/mp4", FACTS, signer)
    report = signing.read(_flip(signed, signed.index(MDAT) + 10), "video/mp4")
    assert report is not None and not report.valid
    assert "assertion.bmffHash.mismatch" in [problem.code for problem in report.errors]


@pytest.mark.parametrize("target", [b"tiny-model-under-test", __version__.encode()])
def test_a_changed_manifest_reads_back_not_valid(target, signer):
    """A byte of the facts (an assertion) or of the claim generator's version (the signed claim) changed."""
    signed = signing.sign(noisy_png(), "image/png", FACTS, signer)
    start, length = _png_chunk(signed, b"caBX")
    at = signed.index(target, start, start + length)
    report = signing.read(_with_png_crc(_flip(signed, at + 1), b"caBX"), "image/png")
    assert report is not None and not report.valid and report.errors


def test_a_cut_manifest_is_a_report_with_the_error_not_an_exception(signer):
    signed = signing.sign(noisy_png(), "image/png", FACTS, signer)
    start, length = _png_chunk(signed, b"caBX")
    report = signing.read(signed[: start + length // 2], "image/png")
    assert report is not None and not report.valid
    assert [problem.code for problem in report.errors] == ["c2pa.error"]
    assert report.errors[0].explanation and "\n" not in report.errors[0].explanation


@pytest.mark.parametrize("mime", ["image/png", "audio/wav", "video/mp4"])
def test_a_file_without_a_manifest_reads_as_none(mime):
    assert signing.read(FORMATS[mime](), mime) is None


def test_bytes_that_are_not_the_format_are_a_report_not_a_crash():
    for data in (b"", b"not a png at all", b"\x89PNG\r\n\x1a\n" + b"\xff" * 40):
        report = signing.read(data, "image/png")
        assert report is not None and not report.valid and report.errors[0].code == "c2pa.error"


def test_a_remote_manifest_is_not_fetched():
    from PIL import Image, PngImagePlugin

    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dcterms="http://purl.org/dc/terms/"'
        ' dcterms:provenance="http://127.0.0.1:9/manifest.c2pa"/></rdf:RDF></x:xmpmeta>'
    )
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", pnginfo=info)
    report = signing.read(buffer.getvalue(), "image/png")
    assert report is not None and not report.valid
    # With fetching on, c2pa says it "could not fetch" after trying; off, that it "must fetch".
    assert "must fetch" in report.errors[0].explanation


def test_a_file_gencli_will_not_check_in_full_is_refused_before_c2pa(monkeypatch):
    monkeypatch.setattr(signing, "MAX_READ_BYTES", 100)
    report = signing.read(noisy_png(), "image/png")
    assert report is not None and not report.valid and "larger than" in report.errors[0].explanation


def test_the_report_survives_a_manifest_store_of_the_wrong_shape():
    stores = [
        {},
        {"manifests": [], "active_manifest": 3, "validation_results": "x", "validation_status": 5},
        {
            "validation_state": "Valid",
            "active_manifest": "m",
            "manifests": {
                "m": {
                    "assertions": [
                        7,
                        {"label": "c2pa.actions.v2", "data": {"actions": 5}},
                        {"label": "c2pa.actions", "data": {"actions": ["x", {"action": "c2pa.created"}]}},
                        {"label": signing.FACTS_LABEL, "data": {"ignored": "the facts come from crJSON"}},
                    ],
                    "claim_generator_info": [{"name": 3}],
                    "signature_info": [],
                }
            },
        },
    ]
    crjsons = [
        None,
        {"manifests": [3, {"label": 3}]},
        {"manifests": [{"label": "m", "assertions": {signing.FACTS_LABEL: ["not", "an", "object"]}}]},
    ]
    reports = [signing._report(store, crjson) for store, crjson in zip(stores, crjsons, strict=True)]
    assert [report.valid for report in reports] == [False, False, True]
    assert reports[2].ai_generated is False and reports[2].facts == {}
    assert [problem.code for problem in reports[2].errors] == ["gencli.facts.malformed"]


def test_ai_generated_follows_the_source_type_of_the_created_action():
    def store(source):
        action = {"action": "c2pa.created", "digitalSourceType": source}
        assertion = {"label": "c2pa.actions.v2", "data": {"actions": [action]}}
        return {"validation_state": "Valid", "active_manifest": "m", "manifests": {"m": {"assertions": [assertion]}}}

    iptc = "http://cv.iptc.org/newscodes/digitalsourcetype/"
    assert signing._report(store(iptc + "trainedAlgorithmicMedia"), None).ai_generated is True
    assert signing._report(store(iptc + "compositeWithTrainedAlgorithmicMedia"), None).ai_generated is True
    assert signing._report(store(iptc + "digitalCapture"), None).ai_generated is False


@pytest.mark.parametrize(
    "key_type,algorithm", [("ec384", "es384"), ("ec521", "es512"), ("rsa", "ps256"), ("ed25519", "ed25519")]
)
def test_the_algorithm_follows_the_key(key_type, algorithm, tmp_path):
    made = c2pa_certs.make_chain(tmp_path, key_type)
    signer = signing.load_signer(signing.SignerFiles(made.chain, made.key))
    report = signing.read(signing.sign(wav(), "audio/wav", FACTS, signer), "audio/wav")
    assert report is not None and report.valid and report.algorithm is not None
    assert report.algorithm.lower() == algorithm


def test_a_sec1_ec_key_is_accepted(chain, tmp_path):
    key = serialization.load_pem_private_key(chain.key.read_bytes(), None)
    sec1 = tmp_path / "sec1.pem"
    sec1.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    signer = signing.load_signer(signing.SignerFiles(chain.chain, sec1))
    assert signing.read(signing.sign(wav(), "audio/wav", {}, signer), "audio/wav").valid


def _refusal(cert: Path, key: Path, url: str | None = None) -> str:
    with pytest.raises(UsageError) as caught:
        signing.load_signer(signing.SignerFiles(cert, key, url))
    assert caught.value.exit_code == 2
    line = caught.value.one_line()
    assert "\n" not in line
    return line


def test_bad_certificate_and_key_files_are_one_line_usage_errors_naming_the_file(chain, tmp_path):
    missing = tmp_path / "missing.pem"
    assert f"certificate chain {missing} does not exist" in _refusal(missing, chain.key)
    assert f"signing key {missing} does not exist" in _refusal(chain.chain, missing)
    assert f"signing key {tmp_path} is a directory" in _refusal(chain.chain, tmp_path)
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    assert f"no PEM certificate in the certificate chain {junk}" in _refusal(junk, chain.key)
    assert f"signing key {junk} is not a PEM private key" in _refusal(chain.chain, junk)
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    assert f"no PEM certificate in the certificate chain {empty}" in _refusal(empty, chain.key)
    big = tmp_path / "big.pem"
    big.write_bytes(chain.chain.read_bytes() * (signing.MAX_PEM_BYTES // 1000))
    assert f"certificate chain {big} is larger than 1024 KiB" in _refusal(big, chain.key)
    assert f"signing key {Path('/dev/null')} is not a regular file" in _refusal(chain.chain, Path("/dev/null"))
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)  # no writer: a blocking open would wait for ever
    assert f"certificate chain {fifo} is not a regular file" in _refusal(fifo, chain.key)


def test_a_key_that_is_not_the_certificates_is_refused(chain, tmp_path):
    other = c2pa_certs.make_chain(tmp_path, prefix="other-")
    line = _refusal(chain.chain, other.key)
    assert f"signing key {other.key} does not belong to the first certificate in {chain.chain}" in line


def test_an_encrypted_key_is_refused(chain, tmp_path):
    key = serialization.load_pem_private_key(chain.key.read_bytes(), None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    assert f"signing key {locked} is encrypted" in _refusal(chain.chain, locked)


def _write_leaf(tmp_path: Path, key, issuer_key, issuer, *, expired: bool = False) -> Path:
    import datetime

    leaf = c2pa_certs.leaf_certificate(key, issuer_key, issuer)
    if expired:
        now = datetime.datetime.now(datetime.UTC)
        leaf = (
            c2pa_certs.x509.CertificateBuilder()
            .subject_name(leaf.subject)
            .issuer_name(leaf.issuer)
            .public_key(key.public_key())
            .serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now - datetime.timedelta(days=2))
            .sign(issuer_key, c2pa_certs.hashes.SHA256())
        )
    path = tmp_path / "leaf-chain.pem"
    path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + issuer.public_bytes(serialization.Encoding.PEM))
    return path


def _key_file(tmp_path: Path, key) -> Path:
    path = tmp_path / "leaf-key.pem"
    path.write_bytes(c2pa_certs.key_pem(key))
    return path


def test_keys_c2pa_cannot_sign_with_are_refused_by_name(tmp_path):
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = c2pa_certs.root_certificate(root_key)
    for key, said in [
        (ec.generate_private_key(ec.SECP256K1()), "an EC key on curve secp256k1"),
        (rsa.generate_private_key(public_exponent=65537, key_size=1024), "a 1024-bit RSA key"),
    ]:
        line = _refusal(_write_leaf(tmp_path, key, root_key, root), _key_file(tmp_path, key))
        assert f"is {said}, which C2PA cannot sign with" in line


def test_an_expired_certificate_is_refused(tmp_path):
    root_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    chain_path = _write_leaf(tmp_path, key, root_key, c2pa_certs.root_certificate(root_key), expired=True)
    assert f"the signing certificate in {chain_path} expired on" in _refusal(chain_path, _key_file(tmp_path, key))


def test_a_certificate_c2pa_refuses_is_found_by_the_trial_signature(tmp_path):
    """A CA certificate signing for itself: cryptography accepts it, c2pa does not."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "root-only.pem"
    path.write_bytes(c2pa_certs.root_certificate(key).public_bytes(serialization.Encoding.PEM))
    line = _refusal(path, _key_file(tmp_path, key))
    assert f"C2PA refused the certificate chain {path}" in line and "self-signed" in line


def test_a_time_stamp_authority_must_be_an_http_url(chain):
    assert "is not an http(s) URL" in _refusal(chain.chain, chain.key, "ftp://tsa.example")


def test_a_format_c2pa_is_not_asked_to_sign_is_a_usage_error(signer):
    with pytest.raises(UsageError, match="not supported for 'text/plain'"):
        signing.sign(b"hello", "text/plain", {}, signer)
    with pytest.raises(UsageError, match="not supported"):
        signing.read(b"hello", "text/plain")


def test_facts_must_be_json(signer):
    with pytest.raises(TypeError):
        signing.sign(wav(), "audio/wav", {"path": Path("/x")}, signer)
    with pytest.raises(ValueError):
        signing.sign(wav(), "audio/wav", {"scale": float("nan")}, signer)


def test_without_c2pa_every_entry_point_names_the_install_command(monkeypatch, chain, signer):
    monkeypatch.setitem(sys.modules, "c2pa", None)  # what `import c2pa` meets when the extra is missing
    assert signing.available() is False
    for call in (
        lambda: signing.load_signer(signing.SignerFiles(chain.chain, chain.key)),
        lambda: signing.sign(wav(), "audio/wav", {}, signer),
        lambda: signing.read(wav(), "audio/wav"),
    ):
        with pytest.raises(UsageError) as caught:
            call()
        assert caught.value.exit_code == 2
        assert signing.INSTALL_HINT in caught.value.one_line()
    monkeypatch.undo()
    assert signing.available() is True


def test_importing_the_module_imports_neither_c2pa_nor_cryptography():
    """Only imports inside functions: `import gencli.signing` stays cheap and works without the extra."""
    tree = ast.parse(Path(signing.__file__).read_text())
    top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = {alias.name for node in top if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module or "" for node in top if isinstance(node, ast.ImportFrom)}
    assert not {name for name in names if name.split(".")[0] in {"c2pa", "cryptography", "numpy", "PIL"}}
