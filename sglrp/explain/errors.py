"""The errors of ``sglrp explain``: a bad command line, and one image that cannot be used."""

from __future__ import annotations

__all__ = ["UsageError", "ImageError"]


class UsageError(ValueError):
    """A bad command line: reported before any work, exit code 2."""


class ImageError(ValueError):
    """One image cannot be used (missing, not an image, too large, ...)."""

    #: ``"sha256:<hex>"`` of the file's content when it could be read, else ``None``.
    input_sha256: str | None = None
