"""The errors of ``sglrp explain``: a bad command line, one image that cannot be used, a run
that cannot go on."""

from __future__ import annotations

__all__ = ["UsageError", "ImageError", "RunError"]


class UsageError(ValueError):
    """A bad command line: reported before any work, exit code 2."""


class ImageError(ValueError):
    """One image cannot be used (missing, not an image, too large, ...)."""

    #: ``"sha256:<hex>"`` of the file's content when it could be read, else ``None``.
    input_sha256: str | None = None


class RunError(RuntimeError):
    """The run cannot go on (e.g. the workers of a distributed run cannot start): reported
    with the summary, exit code 1; what was finished is recorded."""
