"""C2PA manifests: sign a file gencli made, and read back what a file's manifest says.

The optional extra ``gencli[sign]`` (c2pa-python) does the work. It is imported inside the
functions only, so importing this module is cheap and works without it; every entry point then
raises :class:`~gencli.errors.UsageError` (exit 2) naming :data:`INSTALL_HINT`.

- :func:`load_signer` reads a PEM chain and key (bounded, checked, matched; the algorithm from
  the key) and returns a c2pa signer after a trial signature: exit 2 before any model loads.
- :func:`sign` embeds a manifest: claim generator ``gencli/<version>``, a ``c2pa.actions.v2``
  assertion with ``c2pa.created`` and the IPTC source type ``trainedAlgorithmicMedia``, and
  ``org.gencli.generation`` carrying the caller's facts. No thumbnail (it made a 3 KB PNG
  186 KB); no network unless ``SignerFiles.timestamp_url`` names a time-stamp authority.
- :func:`read` treats the file as untrusted: bounded, offline (no remote manifest, no OCSP), an
  error from c2pa a report that is not valid. Print its strings through ``writers.printable``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from gencli.errors import UsageError
from gencli.version import __version__

INSTALL_HINT = "pip install 'gencli[sign]'"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
FACTS_LABEL = "org.gencli.generation"
MAX_PEM_BYTES = 1 << 20  # a certificate chain or key file
MAX_READ_BYTES = 1 << 30  # a file read() checks
MAX_MANIFEST_JSON = 16 << 20  # the manifest store c2pa reports, as JSON text
UNTRUSTED = "signingCredential.untrusted"  # reported by `trusted`, not among the errors
# Source types that say a trained model made the content (in whole, or a part of a composite).
_AI_SOURCE_TYPES = {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "compositeSynthetic"}
_ACTIONS_LABELS = ("c2pa.actions.v2", "c2pa.actions")
_PROBE_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg=="  # 1x1 grey
_WAV = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
MIME_TYPES = {  # what a caller may call a format -> the one name c2pa is given
    **{mime: mime for mime in ("image/png", "image/jpeg", "image/webp", "image/gif", "video/mp4")},
    **dict.fromkeys(_WAV, "audio/wav"),
}
_OFFLINE = {"remote_manifest_fetch": False, "ocsp_fetch": False}
_READER_SETTINGS = {"verify": _OFFLINE, "core": {"allowed_network_hosts": []}}
_BUILDER_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}, "verify": _OFFLINE}


def _c2pa():
    """The c2pa module, or a UsageError that names the install command."""
    try:
        import c2pa
    except (ImportError, OSError, RuntimeError, ValueError) as error:
        raise UsageError(
            f"C2PA signing and checking need the optional package c2pa-python, which cannot be imported ({error})",
            f"install it with: {INSTALL_HINT}",
        ) from error
    return c2pa


def available() -> bool:
    """Whether c2pa-python can be imported here (the ``gencli[sign]`` extra)."""
    try:
        _c2pa()
    except UsageError:
        return False
    return True


def _format(mime: str) -> str:
    if (name := MIME_TYPES.get(mime.strip().lower())) is None:
        raise UsageError(
            f"C2PA manifests are not supported for {mime!r}", "sign PNG, JPEG, WebP, GIF, WAV or MP4 files"
        )
    return name


# --- the signer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignerFiles:
    """Where the signing identity is: a PEM chain (signing certificate first) and its PEM key."""

    cert_chain: Path
    key: Path
    timestamp_url: str | None = None  # an RFC 3161 time-stamp authority; None: no network at all


def _read_pem(path: Path, what: str) -> bytes:
    """The bytes of a small regular file, or a one-line UsageError naming it."""
    from gencli.files import NotAFile, read_regular

    try:  # non-blocking, so that a FIFO is refused instead of waited on
        data = read_regular(path, MAX_PEM_BYTES)
    except NotAFile as error:
        kind = "a directory" if error.kind == "a directory" else "not a regular file"
        raise UsageError(f"the {what} {path} is {kind}", f"give the {what} as a PEM file") from None
    except FileNotFoundError:
        raise UsageError(f"the {what} {path} does not exist", "check the path") from None
    except OSError as error:
        raise UsageError(f"the {what} {path} cannot be read ({error.strerror or error})", "check the path") from None
    if len(data) > MAX_PEM_BYTES:
        raise UsageError(
            f"the {what} {path} is larger than {MAX_PEM_BYTES // 1024} KiB", f"give the {what} alone, as a PEM file"
        )
    return data


def _algorithm(key, path: Path) -> str:
    """The C2PA signing algorithm for a private key: ES256/384/512, PS256 or Ed25519."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in curves:
            return curves[key.curve.name]
        problem = f"an EC key on curve {key.curve.name}"
    elif isinstance(key, rsa.RSAPrivateKey):
        if key.key_size >= 2048:
            return "ps256"
        problem = f"a {key.key_size}-bit RSA key"
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    else:
        problem = f"a {type(key).__name__.lstrip('_')}"
    raise UsageError(
        f"the signing key {path} is {problem}, which C2PA cannot sign with",
        "use an EC key on P-256, P-384 or P-521, an RSA key of 2048 bits or more, or Ed25519",
    )


def _load_key(data: bytes, path: Path):
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted, and no password was given
        raise UsageError(f"the signing key {path} is encrypted", "give an unencrypted PEM key") from None
    except Exception:  # ValueError for what is not a key, UnsupportedAlgorithm for a type it cannot load
        raise UsageError(f"the signing key {path} is not a PEM private key", "give the key as a PEM file") from None


def _load_chain(data: bytes, name: str) -> list:
    from cryptography import x509

    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:  # no certificate at all, or one that does not parse
        chain = []
    if not chain:
        raise UsageError(f"there is no PEM certificate in {name}", "give PEM certificates, the signing one first")
    return chain


def load_signer(files: SignerFiles) -> object:
    """A c2pa signer for ``files``, checked by one signature in memory; UsageError (exit 2) when it cannot sign."""
    import base64
    import datetime

    from cryptography.hazmat.primitives import serialization

    c2pa = _c2pa()
    chain_pem = _read_pem(files.cert_chain, "certificate chain")
    key_pem = _read_pem(files.key, "signing key")
    chain = _load_chain(chain_pem, f"the certificate chain {files.cert_chain}")
    key = _load_key(key_pem, files.key)
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*public) != chain[0].public_key().public_bytes(*public):
        raise UsageError(
            f"the signing key {files.key} does not belong to the first certificate in {files.cert_chain}",
            "give the key of the signing certificate, and that certificate first in the chain",
        )
    if (expires := chain[0].not_valid_after_utc) < datetime.datetime.now(datetime.UTC):
        raise UsageError(f"the signing certificate in {files.cert_chain} expired on {expires:%Y-%m-%d}", "renew it")
    url = files.timestamp_url
    if url is not None and not url.startswith(("http://", "https://")):
        raise UsageError(f"the time-stamp authority {url!r} is not an http(s) URL", "give an http:// or https:// URL")
    algorithm = _algorithm(key, files.key)
    # c2pa reads PKCS#8 only ("BEGIN PRIVATE KEY"): a SEC1 or PKCS#1 key is written out again; and
    # it gets the chain as cryptography parsed it, nothing between or around the certificates.
    pem = serialization.Encoding.PEM
    pkcs8 = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    certificates = b"".join(certificate.public_bytes(pem) for certificate in chain)

    def make(ta_url):
        return c2pa.Signer.from_info(c2pa.C2paSignerInfo(algorithm.encode(), certificates, pkcs8, ta_url))

    try:
        # The trial signs a 1x1 PNG in memory and never reaches a time-stamp authority.
        _sign_with(c2pa, base64.b64decode(_PROBE_PNG), "image/png", {}, make(None))
        return make(url)
    except c2pa.C2paError as error:
        raise UsageError(
            f"C2PA refused the certificate chain {files.cert_chain} with key {files.key}: {_first_line(error)}",
            "use a signing certificate with the digitalSignature key usage and the emailProtection or "
            "documentSigning extended key usage, issued by a CA (not self-signed)",
        ) from None


# --- signing ------------------------------------------------------------------------------------


def manifest_definition(facts: dict) -> dict:
    """The manifest gencli embeds: who made it, that a trained model did, and the generation facts."""
    return {
        "claim_generator_info": [{"name": "gencli", "version": __version__}],
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA}]},
            },
            {"label": FACTS_LABEL, "data": facts},
        ],
    }


def _sign_with(c2pa, data: bytes, fmt: str, facts: dict, signer) -> bytes:
    import io

    source, target = io.BytesIO(data), io.BytesIO()
    with (
        c2pa.Context.from_dict(_BUILDER_SETTINGS) as context,
        c2pa.Builder(manifest_definition(facts), context) as builder,
    ):
        builder.sign(signer, fmt, source, target)
    return target.getvalue()


def sign(data: bytes, mime: str, facts: dict, signer: object) -> bytes:
    """``data`` with a C2PA manifest embedded; ``facts`` must be JSON (TypeError or ValueError if not)."""
    c2pa = _c2pa()
    fmt = _format(mime)
    facts = json.loads(json.dumps(facts, allow_nan=False))  # refuses what JSON cannot carry, copies the rest
    if not isinstance(signer, c2pa.Signer):
        raise TypeError("sign() needs the signer load_signer() returned")
    try:
        return _sign_with(c2pa, data, fmt, facts, signer)
    except c2pa.C2paError as error:
        raise UsageError(f"C2PA could not sign this {mime} file: {_first_line(error)}", "check the file") from None


# --- reading ------------------------------------------------------------------------------------


class Problem(NamedTuple):
    """One validation failure: the C2PA status code (or ``c2pa.error``) and its explanation."""

    code: str
    explanation: str


@dataclass(frozen=True)
class ManifestReport:
    """What a file's C2PA manifest says, and whether it still holds."""

    validation_state: str  # as c2pa says: "Trusted", "Valid" or "Invalid" ("Invalid" too when c2pa failed)
    ai_generated: bool = False  # the created action's digitalSourceType says a trained model made it
    digital_source_type: str | None = None
    claim_generator: str | None = None  # "gencli/0.3.0"
    signer: str | None = None  # the signing certificate's common name
    issuer: str | None = None  # its issuer's organisation, as c2pa reports it
    algorithm: str | None = None
    signed_at: str | None = None  # only when a time-stamp authority countersigned
    facts: dict[str, Any] = field(default_factory=dict)  # the org.gencli.generation assertion
    errors: tuple[Problem, ...] = ()  # every failure but an untrusted certificate (see `trusted`)

    @property
    def valid(self) -> bool:
        """The signature and the hashes of the content hold (the signer may still be unknown)."""
        return self.validation_state in ("Valid", "Trusted")

    @property
    def trusted(self) -> bool:
        """The signing certificate chains to a trust anchor c2pa was given."""
        return self.validation_state == "Trusted"

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, for ``gencli verify --json``."""
        data = asdict(self)
        return {**data, "valid": self.valid, "trusted": self.trusted, "errors": [p._asdict() for p in self.errors]}


def _first_line(error: BaseException, limit: int = 300) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _failed(explanation: str) -> ManifestReport:
    return ManifestReport("Invalid", errors=(Problem("c2pa.error", explanation),))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _facts(active: Any, crjson: Any) -> tuple[dict[str, Any], list[Problem]]:
    """The active manifest's org.gencli.generation assertion, from c2pa's crJSON.

    ``Reader.json()`` renders an array of small integers as base64 bytes, and loses what does not
    fit a byte (``[300, 1]`` reads back ``"LAE="``); crJSON renders the stored CBOR as it is.
    """
    manifests = crjson.get("manifests") if isinstance(crjson, dict) else None
    for manifest in manifests if isinstance(manifests, list) else []:
        assertions = manifest.get("assertions") if isinstance(manifest, dict) else None
        if not isinstance(assertions, dict) or manifest.get("label") != active or FACTS_LABEL not in assertions:
            continue
        if isinstance(assertions[FACTS_LABEL], dict):
            return assertions[FACTS_LABEL], []
        return {}, [Problem("gencli.facts.malformed", f"the {FACTS_LABEL} assertion is not an object")]
    return {}, []


def _report(store: dict, crjson: Any) -> ManifestReport:
    """A report from c2pa's manifest store JSON and crJSON (their shape checked at every step: they are the file's)."""
    manifests = store.get("manifests")
    active = manifests.get(store.get("active_manifest")) if isinstance(manifests, dict) else None
    manifest = active if isinstance(active, dict) else {}
    results = store.get("validation_results")
    failures = results.get("activeManifest") if isinstance(results, dict) else None
    failures = failures.get("failure") if isinstance(failures, dict) else store.get("validation_status")
    errors = [
        Problem(str(item.get("code")), str(item.get("explanation", "")))
        for item in (failures if isinstance(failures, list) else [])
        if isinstance(item, dict) and item.get("code") != UNTRUSTED
    ]
    facts, problems = _facts(store.get("active_manifest"), crjson)
    source = None
    assertions = manifest.get("assertions")
    for assertion in assertions if isinstance(assertions, list) else []:
        data = assertion.get("data") if isinstance(assertion, dict) else None
        if isinstance(data, dict) and assertion.get("label") in _ACTIONS_LABELS:
            actions = data.get("actions")
            for action in actions if isinstance(actions, list) else []:
                if isinstance(action, dict) and action.get("action") == "c2pa.created":
                    source = source or _text(action.get("digitalSourceType"))
    generators = manifest.get("claim_generator_info")
    generator = generators[0] if isinstance(generators, list) and generators else None
    claim_generator = _text(manifest.get("claim_generator"))
    if isinstance(generator, dict) and _text(generator.get("name")):
        version = _text(generator.get("version"))
        claim_generator = generator["name"] + (f"/{version}" if version else "")
    signature = manifest.get("signature_info")
    signature = signature if isinstance(signature, dict) else {}
    return ManifestReport(
        validation_state=_text(store.get("validation_state")) or "Invalid",
        ai_generated=source is not None and source.rstrip("/").rpartition("/")[2] in _AI_SOURCE_TYPES,
        digital_source_type=source,
        claim_generator=claim_generator,
        signer=_text(signature.get("common_name")),
        issuer=_text(signature.get("issuer")),
        algorithm=_text(signature.get("alg")),
        signed_at=_text(signature.get("time")),
        facts=facts,
        errors=tuple(errors + problems),
    )


def read(data: bytes, mime: str, trust_anchors: str | None = None) -> ManifestReport | None:
    """The file's C2PA manifest checked, or None when it carries none.

    ``trust_anchors`` (PEM root certificates) make a chain to one of them "Trusted"; without
    them a good signature is "Valid". Nothing is fetched over the network.
    """
    import io

    c2pa = _c2pa()
    fmt = _format(mime)
    if len(data) > MAX_READ_BYTES:
        return _failed(f"the file is larger than {MAX_READ_BYTES >> 30} GiB, the most gencli checks")
    settings: dict[str, Any] = dict(_READER_SETTINGS)
    if trust_anchors is not None:  # the user's: refused as a whole, not taken for a fault of the file
        _load_chain(trust_anchors.encode(), "the trust anchors")
        settings["trust"] = {"user_anchors": trust_anchors}
    try:
        with c2pa.Context.from_dict(settings) as context:
            reader = c2pa.Reader.try_create(fmt, io.BytesIO(data), None, context)
            if reader is None:
                return None
            with reader:
                texts = reader.json(), reader.crjson()
        if max(len(text) for text in texts) > MAX_MANIFEST_JSON:
            return _failed(f"the manifest is larger than {MAX_MANIFEST_JSON >> 20} MiB, the most gencli reads")
        store, crjson = (json.loads(text) for text in texts)
    except MemoryError:
        raise
    except Exception as error:  # the file is untrusted: whatever c2pa makes of it is a finding, not a crash
        return _failed(_first_line(error))
    return _report(store, crjson) if isinstance(store, dict) else _failed("the manifest store is not a JSON object")
