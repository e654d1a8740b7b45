"""The maps of an ``sglrp explain`` output folder: its manifest, grouped, read as a stream.

Every finished record (``status`` ``"ok"`` or ``"skipped"``) that names a ``.npy`` output is one
map. Maps are grouped by everything their signature says except the image (``input``), the
target token and the library version: model, weights, engine, method, options, and any field a
newer ``explain`` adds; and by the class explained (``target_id``: for ``--target auto`` the
predicted class, so that ``auto`` and the explicit id of that class fall together). Within a
group an image counts once (its last record). Records are read tolerantly: unknown fields are
ignored, records without a signature or a class are skipped.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..explain.manifest import MANIFEST, read_manifest

__all__ = ["SprayError", "Group", "find_groups", "load_features", "load_map"]

_NOT_GROUPED = ("input", "target", "sglrp")


class SprayError(ValueError):
    """A folder or selection that ``spray`` cannot analyse; the message says why."""


@dataclass
class Group:
    """The maps of one model, weights, options, method and explained class.

    Attributes
    ----------
    method : str
    target_id : int
    target_name : str or None
    signature : dict
        The signature fields shared by the group (without ``input``, ``target``, ``sglrp``).
    records : list of dict
        One manifest record per image, in manifest order.
    name : str
        A readable, unique folder name: ``<method>__<class>`` (with a digest if that is not
        unique in the folder).
    """

    method: str
    target_id: int
    target_name: str | None
    signature: dict
    records: list = field(default_factory=list)
    name: str = ""

    @property
    def key(self) -> str:
        return json.dumps({**self.signature, "target_id": self.target_id}, sort_keys=True)


def find_groups(folder, methods: Sequence[str] | None = None,
                targets: Sequence[int] | None = None) -> list[Group]:
    """The groups of maps in the ``explain`` folder ``folder``.

    Parameters
    ----------
    folder : path
        An ``sglrp explain --out`` folder.
    methods, targets : sequence, optional
        Keep only these methods and explained classes.

    Raises
    ------
    SprayError
        If the folder has no manifest, no finished record with a ``.npy`` map (e.g. a run with
        ``--format png`` only), or none left after the selection.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise SprayError(f"{folder}: no {MANIFEST}; spray reads the output folder of "
                         "`sglrp explain --out FOLDER`")
    records = read_manifest(path)
    finished = [r for r in records if r.get("status") in ("ok", "skipped")]
    with_npy = [r for r in finished if isinstance(r.get("outputs"), dict)
                and isinstance(r["outputs"].get("npy"), str)
                and isinstance(r.get("signature"), dict) and r.get("target_id") is not None]
    if not with_npy:
        why = (f"its {len(finished)} finished maps have no .npy file (run explain with "
               "--format npy or png,npy)" if finished else
               f"{MANIFEST} has no finished map ({len(records)} records)")
        raise SprayError(f"{folder}: no .npy relevance maps to analyse: {why}")
    groups: dict[str, Group] = {}
    for record in with_npy:
        sig = {k: v for k, v in record["signature"].items() if k not in _NOT_GROUPED}
        method = str(record.get("method", sig.get("method")))
        group = Group(method, int(record["target_id"]), record.get("target_name"), sig)
        groups.setdefault(group.key, group).records.append(record)
    selected = [g for g in groups.values()
                if (not methods or g.method in methods) and (not targets or g.target_id in targets)]
    if not selected:
        found = sorted({(g.method, g.target_id) for g in groups.values()})
        raise SprayError(f"{folder}: no maps of --method {','.join(methods or ['*'])} "
                         f"--target {','.join(map(str, targets or ['*']))}; the folder has "
                         + ", ".join(f"{m} class {t}" for m, t in found))
    for group in selected:
        by_image = {}
        for record in group.records:  # the last record of an image wins
            by_image.pop(record.get("image"), None)
            by_image[record.get("image")] = record
        group.records = list(by_image.values())
    selected.sort(key=lambda g: (g.method, g.target_id, g.key))
    names = [f"{g.method}__{g.target_id}" for g in selected]
    for group, name in zip(selected, names):
        unique = names.count(name) == 1
        digest = hashlib.sha256(group.key.encode()).hexdigest()[:8]
        group.name = name if unique else f"{name}__{digest}"
    return selected


def load_map(folder, record: dict) -> np.ndarray:
    """The ``.npy`` map a record names (read without pickles).

    Raises
    ------
    OSError, ValueError
        If the file is missing or not a finite numeric array of rank 2 or 3.
    """
    path = Path(folder) / record["outputs"]["npy"]
    array = np.load(path, allow_pickle=False, mmap_mode="r")
    if array.ndim not in (2, 3) or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"not a relevance map: {array.dtype} array of shape {array.shape}")
    array = np.asarray(array, np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError("the map holds NaN or inf")
    return array


def load_features(folder, group: Group, size: int, quiet: bool = True,
                  say: Callable[[str], None] = lambda s: None):
    """Stream the maps of ``group`` into features (:func:`sglrp.spray.analysis.prepare` of
    each): memory holds the downsized maps only.

    Returns
    -------
    features : numpy.ndarray
        ``(n, h*w)`` float32 of the maps that could be read.
    records : list of dict
        Their records, in the same order.
    shape : tuple
        The downsized maps' ``(h, w)``.
    errors : list of dict
        ``{"image", "npy", "error"}`` of each map that is missing, unreadable or of another size
        than the group's first.
    """
    from tqdm import tqdm

    from .analysis import downsize, unit

    rows, kept, errors = [], [], []
    plane = shape = None
    bar = tqdm(group.records, desc=group.name, unit="map", file=sys.stderr,
               disable=True if quiet else None, leave=False)
    for record in bar:
        try:
            m = load_map(folder, record)
            if m.ndim == 3:
                m = m.sum(axis=-1, dtype=np.float64)
            if plane is None:
                plane = m.shape
            elif m.shape != plane:
                raise ValueError(f"size {m.shape}, the group's first {plane}")
            small = downsize(m, size)
        except (OSError, ValueError, EOFError) as err:
            message = f"{type(err).__name__}: {err}" if isinstance(err, EOFError) else str(err)
            errors.append({"image": record.get("image"), "npy": record["outputs"]["npy"],
                           "error": message})
            say(f"spray: {group.name}: cannot read {record['outputs']['npy']}: {message}")
            continue
        shape = small.shape
        rows.append(unit(small.ravel()))
        kept.append(record)
    features = np.stack(rows) if rows else np.zeros((0, 0), np.float32)
    return features, kept, shape, errors
