"""An image item's result: its images, their seeds, and the provenance each PNG carries in text chunks.

Pillow is imported inside functions only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gencli.version import __version__

WATERMARK_PAYLOAD = b"gencli"  # what --watermark hides: who made the image, found again by gencli verify


@dataclass
class ImageResult:
    """An item's images, with their seeds and the facts their provenance needs."""

    images: list  # PIL.Image.Image, one per seed
    seeds: list[int]
    prompt: str
    negative: str | None
    fields: dict = field(default_factory=dict)  # shared by every image of the call: model, steps, ...
    # The item's own provenance beyond the prompt and seeds: mode, strength, the input images' sha256,
    # variation_strength and variation_seeds (one per image), as the record and the PNG chunks hold them.
    extra: dict = field(default_factory=dict)

    def metadata(self, index: int) -> dict[str, str]:
        """The PNG text chunks of image ``index`` (from 0), as strings (unset fields left out)."""
        fields, model = self.fields, self.fields["model"]
        chunks = {
            "prompt": self.prompt,
            "negative": self.negative,
            "model": model.get("id"),  # a local model by its name and sha256, never its path
            "revision": model.get("revision"),
            "model_sha256": model.get("sha256"),
            "seed": self.seeds[index],
            "steps": fields["steps"],
            "guidance": fields["guidance"],
            "size": f"{fields['width']}x{fields['height']}",
            "scheduler": fields["scheduler"],
            "pipeline": fields["pipeline"],
            "device": fields["device"],
            "dtype": fields["dtype"],
            **self.extra_chunks(index),
            "gencli_version": __version__,
            "Software": f"gencli {__version__}",
        }
        return {key: str(value) for key, value in chunks.items() if value is not None}

    def extra_chunks(self, index: int) -> dict:
        """The :attr:`extra` fields as chunks: image ``index``'s variation seed in place of the list."""
        chunks = {key: value for key, value in self.extra.items() if key != "variation_seeds"}
        if self.extra.get("variation_seeds"):
            chunks["variation_seed"] = self.extra["variation_seeds"][index]
        return chunks

    def png_bytes(self, index: int, watermark: bool = False) -> bytes:
        """Image ``index`` as PNG, with :meth:`metadata` in text chunks (iTXt where not Latin-1).

        ``watermark``: the pixels carry gencli's invisible watermark (:mod:`gencli.watermark`).
        """
        import io

        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for key, value in self.metadata(index).items():
            info.add_text(key, value)
        image = self.images[index]
        if watermark:
            from gencli.watermark import embed

            image = embed(image, WATERMARK_PAYLOAD)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", pnginfo=info)
        return buffer.getvalue()
