"""gencli: generate text, code, images and audio with Hugging Face models.

This module holds the version only: importing it must stay free of torch,
transformers and diffusers so that ``gencli --help`` answers at once.
"""

__version__ = "0.1.0"
