"""The run loop: method by method, batch by batch, one analyzer alive at a time."""

from __future__ import annotations

import inspect
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from .inputs import Batch, iter_batches
from .manifest import MANIFEST, read_previous
from .model import AUTO, ModelInfo
from .outputs import atomic_write, output_files, save_png

__all__ = ["Run"]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Run:
    """State of one ``explain`` run: outputs, manifest, counters and messages."""

    def __init__(self, args, info: ModelInfo, paths, names, targets, formats) -> None:
        self.args, self.info, self.paths, self.names = args, info, paths, names
        self.targets, self.formats = targets, formats
        self.out = Path(args.out)
        self.counts = {"ok": 0, "skipped": 0, "error": 0}
        self.reported: set[tuple] = set()
        self.previous = read_previous(self.out / MANIFEST)
        self.manifest = open(self.out / f"{MANIFEST}.part", "w", encoding="utf8")
        self.bar = None

    def base(self, i: int, method: str, target) -> str:
        return f"{self.names[i]}__{method}__{target}"

    def say(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    def record(self, i: int, method: str, target, status: str, error: str | None = None,
               target_id=None, top=None) -> None:
        key = self.base(i, method, target)
        record = {
            "key": key,
            "image": str(self.paths[i]),
            "model": self.info.name,
            "method": method,
            "target": target,
            "target_id": target if target_id is None and target != AUTO else target_id,
            "target_name": None,
            "top_k_ids": None,
            "top_k_names": None,
            "top_k_probs": None,
            "outputs": output_files(key, self.formats),
            "status": status,
            "error": error,
        }
        if status == "skipped":
            old = self.previous.get(key, {})
            for name in ("target_id", "top_k_ids", "top_k_names", "top_k_probs"):
                if old.get(name) is not None:
                    record[name] = old[name]
        if top is not None:
            ids, probs = top
            record["top_k_ids"] = [int(c) for c in ids]
            record["top_k_names"] = [self.info.class_name(c) for c in ids]
            record["top_k_probs"] = [round(float(p), 6) for p in probs]
        if record["target_id"] is not None:
            record["target_name"] = self.info.class_name(record["target_id"])
        self.counts[status] += 1
        self.manifest.write(json.dumps(record) + "\n")
        self.manifest.flush()

    def fail(self, i: int, method: str, message: str, targets=None) -> None:
        if (i, message) not in self.reported:
            self.reported.add((i, message))
            self.say(f"error: {self.paths[i]}: {message}")
        for target in self.targets if targets is None else targets:
            self.record(i, method, target, "error", message)

    def done(self, i: int, method: str) -> bool:
        if self.args.overwrite:
            return False
        return all((self.out / name).is_file()
                   for t in self.targets
                   for name in output_files(self.base(i, method, t), self.formats).values())

    def write(self, i: int, method: str, target, pixels, h) -> None:
        files = output_files(self.base(i, method, target), self.formats)
        if "npy" in files:
            array = np.asarray(h, np.float32)
            atomic_write(self.out / files["npy"], lambda f: np.save(f, array))
        if "heatmap" in files:
            from ..plot import overlay_rgb, to_rgb

            save_png(self.out / files["heatmap"], to_rgb(h))
            save_png(self.out / files["overlay"], overlay_rgb(pixels, h))

    def method(self, method: str) -> None:
        from ..registry import METHODS, create_analyzer

        pending = []
        for i in range(len(self.paths)):
            if self.done(i, method):
                for target in self.targets:
                    self.record(i, method, target, "skipped")
                self.bar.update(1)
            else:
                pending.append(i)
        if not pending:
            return
        kwargs = {"relu": self.args.relu}
        if "low" in inspect.signature(METHODS[method]).parameters:
            kwargs.update(low=self.info.low, high=self.info.high)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="model .* ends in a softmax")
                analyzer = create_analyzer(method, self.info.model, **kwargs)
        except Exception as err:  # a method that does not fit this model: report, go on
            message = f"cannot create {method}: {err}"
            self.say(f"error: {message}")
            for i in pending:
                for target in self.targets:
                    self.record(i, method, target, "error", message)
                self.bar.update(1)
            return
        try:
            batches = iter_batches(self.paths, pending, self.info, self.args.batch_size,
                                   self.args.max_megapixels)
            for batch in batches:
                for i, message in batch.errors:
                    self.fail(i, method, message)
                if batch.indices:
                    self._analyze(analyzer, method, batch)
                self.bar.update(len(batch.indices) + len(batch.errors))
        finally:
            analyzer.close()

    def _analyze(self, analyzer, method: str, batch: Batch) -> None:
        k = min(self.args.top_k, self.info.n_classes)
        probs = _softmax(analyzer.predict_logits(batch.x))
        predicted = probs.argmax(axis=1)
        top_ids = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        for target in self.targets:
            ids = predicted if target == AUTO else np.full(len(batch.indices), target)
            try:
                maps = analyzer.analyze(batch.x, target=ids)
            except Exception as err:  # e.g. a numerical failure: this batch only
                for i in batch.indices:
                    self.fail(i, method, f"{method} failed: {err}", [target])
                continue
            for j, i in enumerate(batch.indices):
                try:
                    self.write(i, method, target, batch.pixels[j], maps[j])
                except OSError as err:
                    self.fail(i, method, f"cannot write outputs: {err}", [target])
                    continue
                self.record(i, method, target, "ok", target_id=int(ids[j]),
                            top=(top_ids[j], probs[j, top_ids[j]]))

    def close(self, complete: bool) -> None:
        self.manifest.close()
        if complete:
            os.replace(self.out / f"{MANIFEST}.part", self.out / MANIFEST)

