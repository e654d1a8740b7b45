"""``sglrp explain --quiet`` and sglrp's Ray workers: TensorFlow's C++ notices filtered out.

TensorFlow 2.21 writes notices such as ``I0000 00:00:... cudart_stub.cc:31] Could not find cuda
drivers`` from C++ straight to file descriptor 2 when it is imported, whatever
``TF_CPP_MIN_LOG_LEVEL`` says (absl's logging before ``absl::InitializeLog()``). Since
``import sglrp`` imports TensorFlow, this module is imported first by ``sglrp/__init__.py`` and
acts in two kinds of process only, where nobody else's output is at stake:

* the ``sglrp explain ... --quiet`` command (the console script or ``python -m sglrp.cli``);
* sglrp's Ray workers, which their driver starts with ``SGLRP_FILTER_TF_NOTICES=1``.

There file descriptor 2 becomes a pipe, and a thread passes on every line but TensorFlow's
info and warning notices (absl's ``I0000 ...``/``W0000 ...`` lines, their ``WARNING: All log
messages before absl::InitializeLog()`` header, TensorFlow's ``<date>: I tensorflow/...``
lines); errors and everything else, Python's ``sys.stderr`` included, go through unchanged and
in order. Everywhere else, ``import sglrp`` changes nothing.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

__all__ = ["ENV", "NOTICE", "filter_notices", "cli_quiet"]

#: The environment variable that turns the filter on in a process (sglrp's Ray workers).
ENV = "SGLRP_FILTER_TF_NOTICES"
#: The lines filtered out.
NOTICE = re.compile(
    rb"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]\s]+:\d+\] "  # absl: I0000 00:00:... f.cc:31]
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] \S+:\d+\] "  # TensorFlow's own C++ logging
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    rb"STDERR\r?$)")

_installed = False


def cli_quiet(argv: list[str] | None = None) -> bool:
    """Whether this process is ``sglrp explain ... --quiet``: the console script
    (``sys.argv[0]`` is ``sglrp``) or ``python -m sglrp.cli`` / ``python -m sglrp``
    (``sys.orig_argv``)."""
    if argv is not None:
        return _quiet_explain(list(argv))
    return _quiet_explain(list(sys.argv)) or _quiet_explain(list(getattr(sys, "orig_argv", [])))


def _quiet_explain(argv: list[str]) -> bool:
    if not argv:
        return False
    if os.path.splitext(os.path.basename(argv[0]))[0] == "sglrp":
        args = argv[1:]
    else:
        try:
            at = argv.index("-m")
        except ValueError:
            return False
        if argv[at + 1:at + 2] not in (["sglrp.cli"], ["sglrp"]):
            return False
        args = argv[at + 2:]
    return bool(args) and args[0] == "explain" and "--quiet" in args


def _forward(read_fd: int, write_fd: int) -> None:
    rest = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        kept = b"".join(line + b"\n" for line in lines if not NOTICE.match(line))
        if kept:
            _write_all(write_fd, kept)
    if rest and not NOTICE.match(rest):
        _write_all(write_fd, rest)
    os.close(read_fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except OSError:
            return


def filter_notices() -> None:
    """From now on, file descriptor 2 passes on everything but TensorFlow's C++ notices (until
    the process exits; a second call does nothing)."""
    global _installed
    if _installed:
        return
    try:
        original = os.dup(2)
        read_fd, write_fd = os.pipe()
    except OSError:  # no stderr to filter
        return
    os.set_inheritable(original, False)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_forward, args=(read_fd, original), daemon=True,
                              name="sglrp-stderr")
    thread.start()
    _installed = True

    def restore() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os.dup2(original, 2)  # closes the pipe's last writer here: the thread finishes
        thread.join(timeout=5)  # a child still holding the pipe: do not wait for it

    atexit.register(restore)


if os.environ.get(ENV) == "1" or cli_quiet():
    filter_notices()
