"""gencli's version: a leaf module, so anything may import it without pulling in the rest."""

__version__ = "0.3.0"
