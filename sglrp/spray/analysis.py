"""Spectral relevance analysis on arrays: features, affinity graph, eigengap, clusters, 2-D map.

SpRAy (Lapuschkin et al., *Unmasking Clever Hans predictors and assessing what machines really
learn*, Nature Communications 10:1096, 2019; Methods, "Spectral relevance analysis"):

1. every map is summed over its channels, downsized (area-averaged, at most ``size`` pixels a
   side) and scaled to unit Euclidean norm (:func:`prepare`);
2. a symmetric k-nearest-neighbour graph joins each map to its ``n_neighbors`` nearest ones
   (binary weights, ``A = max(G, Gᵀ)``; scikit-learn's ``kneighbors_graph``);
3. the smallest eigenvalues of the graph's normalised Laplacian ``L = I − D^-½ A D^-½``
   (SciPy's ``sparse.csgraph.laplacian``, ``sparse.linalg.eigsh``) give the number of clusters:
   ``K = argmax_k (λ_{k+1} − λ_k)`` over ``k = 1..max_clusters``, the **eigengap** (von
   Luxburg, *A tutorial on spectral clustering*, 2007, section 8.3);
4. k-means on the rows of the first K eigenvectors, each scaled to unit length (Ng, Jordan,
   Weiss 2001), gives the clusters, numbered by decreasing size;
5. a 2-D embedding for the picture: UMAP where installed, else t-SNE (scikit-learn), on the
   features; above ``max_tsne`` maps the spectral embedding's eigenvectors 2 and 3.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SprayResult", "prepare", "downsize", "affinity", "spectrum", "eigengap",
           "embed_2d", "analyze", "analyze_features", "scores"]

#: Defaults, also those of ``sglrp spray``.
SIZE = 16
N_NEIGHBORS = 10
MAX_CLUSTERS = 10
MAX_TSNE = 10_000
N_EXAMPLES = 4


@dataclass
class SprayResult:
    """What :func:`analyze` found for one set of maps.

    Attributes
    ----------
    labels : numpy.ndarray
        ``(n,)`` int, each map's cluster; clusters are numbered by decreasing size.
    k : int
        The number of clusters.
    k_from : str
        ``"eigengap"`` or ``"given"``.
    eigenvalues : numpy.ndarray
        The smallest ``max(k, max_clusters) + 1`` eigenvalues of the normalised Laplacian, in
        increasing order.
    embedding : numpy.ndarray
        ``(n, 2)`` coordinates for the picture.
    embedding_method : str
        ``"umap"``, ``"tsne"`` or ``"spectral"``.
    spectral : numpy.ndarray
        ``(n, k)`` the rows the clusters were found in (unit length).
    clusters : list of dict
        Per cluster: ``cluster``, ``size``, ``members`` (indices), ``examples`` (indices of the
        maps nearest the cluster's mean, at most 4) and ``mean`` (the mean downsized map).
    scores : dict or None
        With ``truth``: ``adjusted_rand_index``, ``homogeneity``, ``completeness``.
    """

    labels: np.ndarray
    k: int
    k_from: str
    eigenvalues: np.ndarray
    embedding: np.ndarray
    embedding_method: str
    spectral: np.ndarray
    clusters: list = field(default_factory=list)
    scores: dict | None = None


def _one_thread():
    """OpenMP on one thread: scikit-learn's t-SNE and k-means threads spin and crawl when the
    cores are shared (t-SNE of 264 maps: 127 s on 2 busy cores, 5 s on one thread)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def downsize(map2d: np.ndarray, size: int = SIZE) -> np.ndarray:
    """``map2d`` averaged down to at most ``size`` pixels a side (anti-aliased bilinear
    resize; maps already that small are kept)."""
    from skimage.transform import resize

    h, w = map2d.shape
    scale = min(1.0, size / max(h, w))
    if scale == 1.0:
        return np.asarray(map2d, np.float32)
    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    return resize(np.asarray(map2d, np.float64), shape, order=1, anti_aliasing=True,
                  preserve_range=True).astype(np.float32)


def prepare(maps, size: int = SIZE) -> np.ndarray:
    """Features of maps: channel sum, :func:`downsize`, unit Euclidean norm, flattened.

    Parameters
    ----------
    maps : array or iterable of arrays
        ``(N, H, W, C)`` or ``(N, H, W)`` maps, or single ``(H, W[, C])`` maps one by one (the
        memory then holds the features only).
    size : int
        Longest side of the downsized maps.

    Returns
    -------
    numpy.ndarray
        ``(N, h*w)`` float32; an all-zero map stays zero.

    Raises
    ------
    ValueError
        For a map that is not 2-D or 3-D, of another size than the first, or not finite.
    """
    if isinstance(maps, np.ndarray):
        if maps.ndim not in (3, 4):
            raise ValueError(f"maps must be (N, H, W) or (N, H, W, C), got shape {maps.shape}")
        maps = iter(maps)
    rows, shape = [], None
    for i, m in enumerate(maps):
        m = np.asarray(m)
        if m.ndim == 3:
            m = m.sum(axis=-1, dtype=np.float64)
        if m.ndim != 2:
            raise ValueError(f"map {i} has shape {m.shape}; expected (H, W) or (H, W, C)")
        if shape is None:
            shape = m.shape
        elif m.shape != shape:
            raise ValueError(f"map {i} has size {m.shape}, the first {shape}")
        if not np.all(np.isfinite(m)):
            raise ValueError(f"map {i} holds NaN or inf")
        rows.append(unit(downsize(m, size).ravel()))
    if not rows:
        raise ValueError("no maps to analyse")
    return np.stack(rows)


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to unit Euclidean norm (zero stays zero)."""
    norm = float(np.linalg.norm(v))
    return (v / norm if norm > 0 else v).astype(np.float32)


def affinity(features: np.ndarray, n_neighbors: int = N_NEIGHBORS):
    """The symmetric binary k-nearest-neighbour graph of ``features`` (sparse CSR)."""
    from sklearn.neighbors import kneighbors_graph

    n = len(features)
    k = min(n_neighbors, n - 1)
    graph = kneighbors_graph(features, k, mode="connectivity", include_self=False)
    return graph.maximum(graph.T).tocsr()


def spectrum(graph, n_eigen: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_eigen`` smallest eigenvalues of the normalised Laplacian of ``graph`` (ascending)
    and their eigenvectors ``(n, n_eigen)``.

    Computed as the largest eigenvalues of ``I − L`` by Lanczos (``eigsh``, seeded start
    vector); dense ``eigh`` for small graphs.
    """
    import scipy.linalg
    import scipy.sparse as sp
    from scipy.sparse.csgraph import laplacian
    from scipy.sparse.linalg import eigsh

    lap = laplacian(graph.astype(np.float64), normed=True)
    n = lap.shape[0]
    n_eigen = min(n_eigen, n)
    if n <= 500 or n_eigen >= n - 1:
        values, vectors = scipy.linalg.eigh(lap.toarray(), subset_by_index=(0, n_eigen - 1))
    else:
        shifted = sp.identity(n, format="csr") - lap
        v0 = np.random.default_rng(seed).uniform(0.5, 1.5, n)
        values, vectors = eigsh(shifted, k=n_eigen, which="LA", v0=v0, tol=1e-8)
        values = 1.0 - values
    order = np.argsort(values)
    return np.clip(values[order], 0.0, 2.0), vectors[:, order]


def eigengap(eigenvalues: np.ndarray, max_clusters: int = MAX_CLUSTERS) -> int:
    """``K = argmax_k (λ_{k+1} − λ_k)``, ``k = 1..max_clusters`` (eigenvalues ascending)."""
    values = np.asarray(eigenvalues, np.float64)[: max_clusters + 1]
    if values.size < 2:
        return 1
    return int(np.argmax(np.diff(values))) + 1


def embed_2d(features: np.ndarray, vectors: np.ndarray, method: str = "auto",
             seed: int = 0, max_tsne: int = MAX_TSNE) -> tuple[np.ndarray, str]:
    """2-D coordinates of the maps and the method used (see the module docstring).

    ``method``: ``"auto"``, ``"umap"``, ``"tsne"`` or ``"spectral"``.
    """
    if method not in ("auto", "umap", "tsne", "spectral"):
        raise ValueError(f"embedding must be auto, umap, tsne or spectral, got {method!r}")
    n = len(features)
    if method == "auto":
        try:
            import umap  # noqa: F401

            method = "umap"
        except ImportError:
            method = "tsne"
        if n > max_tsne or n < 5:
            method = "spectral"
    if method == "umap":
        import umap

        reducer = umap.UMAP(n_components=2, random_state=seed)
        return np.asarray(reducer.fit_transform(features), np.float32), "umap"
    if method == "tsne":
        from sklearn.manifold import TSNE

        tsne = TSNE(2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed)
        with _one_thread():
            return np.asarray(tsne.fit_transform(features), np.float32), "tsne"
    cols = [c for c in (1, 2) if c < vectors.shape[1]]
    xy = np.zeros((n, 2), np.float32)
    xy[:, : len(cols)] = vectors[:, cols]
    return xy, "spectral"


def scores(truth, labels) -> dict:
    """Agreement of clusters with known groups: adjusted Rand index, homogeneity (each cluster
    holds one group only) and completeness (each group lies in one cluster)."""
    from sklearn.metrics import adjusted_rand_score, homogeneity_completeness_v_measure

    truth, labels = np.asarray(truth), np.asarray(labels)
    h, c, _ = homogeneity_completeness_v_measure(truth, labels)
    return {"adjusted_rand_index": float(adjusted_rand_score(truth, labels)),
            "homogeneity": float(h), "completeness": float(c)}


def analyze_features(features: np.ndarray, *, clusters: int | None = None,
                     max_clusters: int = MAX_CLUSTERS, n_neighbors: int = N_NEIGHBORS,
                     embedding: str = "auto", seed: int = 0, truth=None,
                     shape: tuple | None = None) -> SprayResult:
    """:func:`analyze` on features made by :func:`prepare`; ``shape`` is the downsized maps'
    (h, w), for the clusters' mean maps (default: flat)."""
    from sklearn.cluster import KMeans

    features = np.asarray(features, np.float32)
    n = len(features)
    if n < 2:
        raise ValueError(f"spectral clustering needs at least 2 maps, got {n}")
    if clusters is not None and not 1 <= clusters <= n:
        raise ValueError(f"clusters must be between 1 and the number of maps ({n}), "
                         f"got {clusters}")
    if max_clusters < 1:
        raise ValueError(f"max_clusters must be >= 1, got {max_clusters}")
    graph = affinity(features, n_neighbors)
    n_eigen = min(n, max(clusters or 0, max_clusters) + 1)
    values, vectors = spectrum(graph, max(n_eigen, 3) if n >= 3 else n_eigen, seed=seed)
    k = int(clusters) if clusters is not None else eigengap(values, max_clusters)
    rows = vectors[:, :k].copy()
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    if k == 1:
        raw = np.zeros(n, int)
    else:
        with _one_thread():
            raw = KMeans(k, n_init=10, random_state=seed).fit_predict(rows)
    order = np.argsort(-np.bincount(raw, minlength=k), kind="stable")  # largest first
    labels = np.argsort(order)[raw]
    xy, how = embed_2d(features, vectors, embedding, seed)
    summary = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        mean = features[members].mean(axis=0)
        near = members[np.argsort(np.linalg.norm(features[members] - mean, axis=1),
                                  kind="stable")[:N_EXAMPLES]]
        summary.append({"cluster": c, "size": int(members.size), "members": members,
                        "examples": near,
                        "mean": mean.reshape(shape) if shape is not None else mean})
    return SprayResult(labels=labels, k=k, k_from="given" if clusters else "eigengap",
                       eigenvalues=values[: n_eigen], embedding=xy, embedding_method=how,
                       spectral=rows, clusters=summary,
                       scores=None if truth is None else scores(truth, labels))


def analyze(maps, *, clusters: int | None = None, max_clusters: int = MAX_CLUSTERS,
            n_neighbors: int = N_NEIGHBORS, size: int = SIZE, embedding: str = "auto",
            seed: int = 0, truth=None) -> SprayResult:
    """Spectral relevance analysis of maps of one method and class (see the module docstring).

    Parameters
    ----------
    maps : array or iterable of arrays
        ``(N, H, W, C)`` or ``(N, H, W)`` relevance maps, or the maps one by one.
    clusters : int, optional
        The number of clusters; ``None`` (default) chooses it by the eigengap.
    max_clusters : int
        The largest K the eigengap may choose (default 10).
    n_neighbors : int
        Neighbours per map in the affinity graph (default 10).
    size : int
        Longest side of the downsized maps (default 16).
    embedding : str
        ``"auto"`` (UMAP where installed, else t-SNE; the spectral embedding above 10,000 maps),
        ``"umap"``, ``"tsne"`` or ``"spectral"``.
    seed : int
        Seeds k-means, the 2-D embedding and the eigensolver's start vector.
    truth : array-like, optional
        Known groups of the maps: the result then has :func:`scores`.

    Returns
    -------
    SprayResult

    Raises
    ------
    ValueError
        For fewer than 2 maps, maps of different sizes or with NaN/inf, or a bad option.
    """
    if isinstance(maps, Iterable) and not isinstance(maps, np.ndarray):
        maps = list(maps) if not hasattr(maps, "__len__") else maps
    first = np.asarray(maps[0])
    features = prepare(maps, size)
    plane = first.shape[:2]
    shape = downsize(np.zeros(plane, np.float32), size).shape
    return analyze_features(features, clusters=clusters, max_clusters=max_clusters,
                            n_neighbors=n_neighbors, embedding=embedding, seed=seed,
                            truth=truth, shape=shape)
