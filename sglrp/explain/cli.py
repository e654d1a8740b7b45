"""``sglrp explain`` on the command line: the parser, the checks, signals, the summary.

The thinnest layer: arguments are checked (values by their argparse types, names against the
registry and the model), then :class:`~sglrp.explain.loop.Run` does the work. Ctrl-C (SIGINT)
and SIGTERM stop the run (never inside the append of a record): one line says so, the summary
follows, exit code 130 (SIGINT) or 143 (SIGTERM); a second signal ends the process at once. A
full disk, a file size limit or a quota (``ENOSPC``, ``EFBIG``, ``EDQUOT``) stops it the same way
with exit code 1. What was finished is in the manifest either way; the same command resumes.

``--ray [ADDRESS]`` computes the jobs on Ray (:mod:`sglrp.explain.ray_runner`) with
``--workers`` actors; everything else (checks, resume, manifest, messages, exit codes) stays
here, on the driver.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import signal
import sys
import threading
from pathlib import Path

from ..arguments import finite_float, output_dir, positive_float, positive_int
from .errors import RunError, UsageError
from .inputs import expand_inputs
from .loop import Run
from .manifest import MANIFEST
from .model import AUTO, load_model_info, parse_targets, split_commas
from .outputs import FORMATS, is_disk_full
from .preprocess import CHOICES as PREPROCESS_CHOICES
from .signature import VERIFY

__all__ = ["parse_methods", "parse_formats", "run", "add_parser"]


def parse_methods(text: str) -> list[str]:
    """Comma-separated method names, checked against the registry (duplicates dropped)."""
    from ..registry import available_methods

    names = list(dict.fromkeys(split_commas(text)))
    valid = available_methods()
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise UsageError(
            f"unknown method {', '.join(map(repr, bad)) or repr(text)}; valid methods: "
            f"{', '.join(valid)}"
        )
    return names


def parse_formats(text: str) -> list[str]:
    """Comma-separated output formats out of ``npy``, ``png``."""
    names = list(dict.fromkeys(split_commas(text)))
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise UsageError(f"unknown format {', '.join(map(repr, bad)) or repr(text)}; valid "
                         f"formats: {', '.join(FORMATS)}")
    return names


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


class _Signals:
    """While active (main thread only): SIGINT and SIGTERM raise ``KeyboardInterrupt`` once and
    remember which it was; a second one ends the process by the signal's default action.

    Inside :meth:`held` the first signal waits until the block ends. (Blocking the signal with
    ``pthread_sigmask`` would not do: it blocks one thread, and TensorFlow's threads would
    take the signal for the process.)
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict = {}
        self._holding = 0
        self._pending = False

    def _handle(self, signum, frame) -> None:
        if self.received is None:
            self.received = signum
            if self._holding:
                self._pending = True
                return
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    @contextlib.contextmanager
    def held(self):
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
            if not self._holding and self._pending:
                self._pending = False
                raise KeyboardInterrupt

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._old[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._old.items():
            signal.signal(signum, handler)


class _Command:
    """One ``sglrp explain`` invocation: checks, the run, messages and the summary line."""

    def __init__(self, args, signals: _Signals) -> None:
        self.args, self.signals = args, signals
        self.out = Path(args.out)
        self.run: Run | None = None
        self.bar = None
        self.ray_started = False

    def say(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    def usage(self, message) -> int:
        self.say(f"sglrp explain: error: {message}")
        return 2

    def prepare(self) -> Run:
        """Check everything, load the model, open the manifest (raises UsageError)."""
        from ..models import WeightsUnavailableError
        from .signature import model_identity

        args = self.args
        if args.low is not None and args.high is not None and not args.low < args.high:
            raise UsageError(f"--low must be below --high, got {args.low} and {args.high}")
        if args.workers is not None and args.ray is None:
            raise UsageError("--workers needs --ray")
        methods = parse_methods(args.method)
        formats = parse_formats(args.format)
        images = expand_inputs(args.images)
        if not images:
            raise UsageError(f"no images found in {' '.join(args.images)}")
        try:
            info = load_model_info(args.model, args.weights, args.low, args.high,
                                   args.preprocess)
            identity = model_identity(args.model, args.weights, info.preprocessing)
        except WeightsUnavailableError as err:
            raise UsageError(str(err)) from None
        except OSError as err:
            raise UsageError(f"cannot read the model or weights file: {err}") from None
        targets = parse_targets(args.target, info)
        if not info.low < info.high:
            raise UsageError(f"--low must be below --high, got {info.low} and {info.high}")
        executor = None if args.ray is None else self.ray_executor(info)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            return Run(info=info, identity=identity, images=images, methods=methods,
                       targets=targets, formats=formats, out=self.out, relu=args.relu,
                       batch_size=args.batch_size, top_k=args.top_k,
                       max_megapixels=args.max_megapixels, overwrite=args.overwrite,
                       verify=args.verify, say=self.say,
                       progress=lambda n: self.bar and self.bar.update(n),
                       interrupted=lambda: self.signals.received is not None,
                       hold=self.signals.held, executor=executor)
        except OSError as err:
            raise UsageError(f"cannot write to --out {str(self.out)!r}: {err}") from None

    def ray_executor(self, info):
        """Connect to Ray (``--ray``), the executor of ``--workers`` actors (raises UsageError)."""
        try:
            from . import ray_runner
        except ImportError as err:
            raise UsageError(f"--ray needs Ray: pip install \"sglrp[ray]\" ({err})") from None
        args = self.args
        self.ray_started = ray_runner.connect(args.ray or None)
        workers = args.workers or ray_runner.default_workers()
        resources = ray_runner.worker_resources(workers)
        spec = ray_runner.ModelSpec(args.model, args.weights, args.low, args.high,
                                    info.preprocessing)
        info.model = None  # the workers build their own; the driver only names classes
        return ray_runner.RayExecutor(spec, info, workers, resources)

    def disconnect(self) -> None:
        if self.ray_started:
            from . import ray_runner

            ray_runner.shutdown()
            self.ray_started = False

    def execute(self) -> int:
        from tqdm import tqdm

        run = self.run
        if not self.args.quiet:
            info = run.info
            where = "" if run.executor is None else \
                f" on Ray, {_count(run.executor.workers, 'worker')}"
            self.say(f"explain: {_count(len(run.images), 'image')} x "
                     f"{_count(len(run.methods), 'method')} ({', '.join(run.methods)}) x "
                     f"{_count(len(run.targets), 'target')}, model {info.name} (preprocess "
                     f"{info.preprocessing}, low {info.low:g}, high {info.high:g}){where} -> "
                     f"{self.out}")
        with tqdm(total=len(run.images) * len(run.methods), file=sys.stderr, unit="img",
                  disable=True if self.args.quiet else None, dynamic_ncols=True) as self.bar:
            run.execute()
        self.bar = None
        self.summary("done")
        return 1 if run.counts["error"] else 0

    def stopped(self, message: str) -> None:
        """One line saying why the run stopped and how to go on, then the summary."""
        if self.bar is not None:
            with contextlib.suppress(Exception):
                self.bar.close()
            self.bar = None
        if self.run is not None:
            message += (f"; finished maps are recorded in {self.out / MANIFEST}, run the same "
                        "command again to do the rest")
        self.say(f"sglrp explain: {message}")
        self.summary("stopped")

    def summary(self, word: str) -> None:
        counts = self.run.counts if self.run is not None else {"ok": 0, "skipped": 0,
                                                                "error": 0}
        text = f"{word}: {counts['ok']} ok, {counts['skipped']} skipped, {counts['error']} failed"
        if word != "done" and self.run is not None:
            text += f", {self.run.total - sum(counts.values())} not done"
        peak = _peak_rss_mb()
        if peak is not None:
            text += f", peak RSS {peak:.0f} MB"
        if self.run is not None:
            text += f" (manifest: {self.out / MANIFEST})"
        self.say(text)


def _write_error(err: OSError) -> str:
    name = errno.errorcode.get(err.errno, "") if err.errno else ""
    where = f" {err.filename}" if err.filename else ""
    reason = err.strerror or str(err)
    return f"error: cannot write{where}: {reason}{f' ({name})' if name else ''}"


def run(args) -> int:
    """Run ``sglrp explain`` with arguments parsed by :func:`add_parser`'s parser.

    Returns the exit code: 0 all done, 1 some images failed or the disk is full, 2 bad
    arguments (found before any work), 130 interrupted by SIGINT (Ctrl-C), 143 by SIGTERM.
    """
    with _Signals() as signals:
        command = _Command(args, signals)
        try:
            try:
                command.run = command.prepare()
            except UsageError as err:
                return command.usage(err)
            try:
                return command.execute()
            except OSError as err:  # a full disk, or the folder became unwritable
                command.stopped(_write_error(err) if is_disk_full(err) else f"error: {err}")
                return 1
            except RunError as err:  # the workers of a distributed run failed
                command.stopped(f"error: {err}")
                return 1
            finally:
                command.run.close()
        except KeyboardInterrupt:
            signum = signals.received or signal.SIGINT
            command.stopped(f"interrupted ({signal.Signals(signum).name})")
            return 128 + signum
        finally:
            command.disconnect()


def ray_address(text: str) -> str:
    """``--ray``'s value: empty (bare ``--ray``), ``local``, ``auto``, ``host:port`` or
    ``ray://host:port``."""
    if text in ("", "local", "auto") or re.fullmatch(r"(ray://)?[^\s:/]+:\d+", text):
        return text
    raise argparse.ArgumentTypeError(
        f"must be a Ray address (host:port, ray://host:port, auto or local), got {text!r}; "
        "put --ray after the inputs, or write --ray=ADDRESS")


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``explain`` subcommand to the ``sglrp`` command's subparsers."""
    p = sub.add_parser(
        "explain",
        help="relevance maps of image files, saved with a manifest",
        description="Explain images with one or more methods; save the maps (.npy), heatmaps "
        "and overlays (.png) and a manifest.jsonl in --out. A re-run reuses the maps computed "
        "from the same image content with the same model, weights, method, target and options. "
        "Exit code 0: all done, 1: some images failed or the disk is full, 2: bad arguments, "
        "130/143: interrupted by SIGINT/SIGTERM.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                   help="image files, or directories (their image files, not recursive)")
    p.add_argument("--model", default="vgg16",
                   help="vgg16 (default), demo (the embedded digit CNN) or a .keras/.h5 file")
    p.add_argument("--weights", default=None,
                   help="weights file (vgg16: default 'imagenet', from the Keras cache)")
    p.add_argument("--method", default="sglrp",
                   help="comma-separated methods (default sglrp; see `sglrp methods`)")
    p.add_argument("--target", default=AUTO,
                   help="comma-separated targets: auto (the predicted class, default), class "
                   "ids, or class names; one map per target")
    p.add_argument("--out", default="results", type=output_dir,
                   help="output folder (default results); outputs and manifest.jsonl go "
                   "directly into it")
    p.add_argument("--batch-size", type=positive_int, default=8,
                   help="images per batch, >= 1 (default 8)")
    p.add_argument("--preprocess", default=AUTO, choices=(AUTO, *PREPROCESS_CHOICES),
                   help="how pixels (0-255) become the model's input: 0-1 (x/255), 0-255 (x), "
                   "-1-1 (x/127.5-1), caffe (BGR minus the ImageNet mean), torch ((x/255-mean)/"
                   "std, RGB); auto (default): caffe for vgg16, 0-1 for demo, for a model file "
                   "0-255 if its first layer is Rescaling or Normalization, else 0-1. The choice "
                   "is printed, recorded and part of the signature")
    p.add_argument("--low", type=finite_float, default=None,
                   help="lowest model input value, for lrp/clrp/sglrp (default: the low end of "
                   "--preprocess's range)")
    p.add_argument("--high", type=finite_float, default=None,
                   help="highest model input value, for lrp/clrp/sglrp (default: the high end "
                   "of --preprocess's range)")
    p.add_argument("--relu", action="store_true", help="keep only positive relevance")
    p.add_argument("--format", default="png,npy",
                   help="comma-separated outputs: npy (raw maps), png (heatmap and overlay)")
    p.add_argument("--overwrite", action="store_true",
                   help="compute everything again (default: reuse the maps an earlier run "
                   "computed from the same image content and settings)")
    p.add_argument("--verify", default="sha256", choices=VERIFY,
                   help="how a re-run checks the outputs it reuses against the sizes and "
                   "SHA-256 its manifest records: sha256 (default; reads every reused file "
                   "once) or size (sizes only, for very large folders); a changed file is "
                   "computed again")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (shown on a terminal) and no start message")
    p.add_argument("--top-k", type=positive_int, default=5,
                   help="predicted classes kept in the manifest, >= 1 (default 5)")
    p.add_argument("--max-megapixels", type=positive_float, default=50.0,
                   help="larger images are reported and skipped; > 0 (default 50)")
    p.add_argument("--ray", nargs="?", const="", default=None, type=ray_address,
                   metavar="ADDRESS",
                   help="compute on Ray (pip install sglrp[ray]): alone, a local Ray instance "
                   "(or the cluster in RAY_ADDRESS); with host:port, ray://host:port or auto, "
                   "that cluster. Inputs, model and --out must be on a file system every node "
                   "sees. Put --ray after the inputs, or write --ray=ADDRESS")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="with --ray: Ray actors, each with the model (default: one per GPU of "
                   "the cluster, 1 without GPUs); with GPUs one GPU each, else an equal share "
                   "of the CPUs")
    p.set_defaults(run=run)
    return p
