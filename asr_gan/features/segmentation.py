"""Frames -> segments, wav2vec-U style: PCA, k-means cluster ids, runs of one cluster mean-pooled, pair pooling.

wav2vec-U (prepare_audio.sh) clusters the frame features with k-means (128 clusters), reduces them with PCA
(512 dims), replaces each run of consecutive frames with the same cluster id by the mean of its PCA'd frames,
and finally mean-pools adjacent pairs of segments (`_pooled`, the GAN input). Everything here is torch so it
runs on GPU when one is present.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def _device(device: str | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


# ---------------------------------------------------------------------------------------------------------- PCA


@dataclass
class Pca:
    """x -> (x - mean) @ components.T. mean: (D,), components: (K, D) rows ordered by explained variance."""

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray  # (K,)

    @property
    def dim(self) -> int:
        return self.components.shape[0]

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(T, D) -> (T, K) float32."""
        return ((np.asarray(frames, dtype=np.float32) - self.mean) @ self.components.T).astype(np.float32)


def fit_pca(
    frames: np.ndarray, dim: int, device: str | None = None, rows: np.ndarray | None = None, chunk: int = 65536
) -> Pca:
    """PCA from the covariance of `frames[rows]` (all rows by default), accumulated in float64 chunks.

    frames: (N, D), may be a memory map larger than memory; dim <= D. The eigendecomposition of the D x D
    covariance (torch.linalg.eigh) gives the same components as an SVD of the centred frames.
    """
    if dim > frames.shape[1]:
        raise ValueError(f"PCA dimension {dim} exceeds the feature dimension {frames.shape[1]}; lower --pca-dim")
    dev = _device(device)
    rows = np.arange(frames.shape[0]) if rows is None else np.sort(rows)
    if len(rows) < 2:
        raise ValueError(f"PCA needs at least 2 frames, got {len(rows)}")
    d = frames.shape[1]
    total = torch.zeros(d, dtype=torch.float64, device=dev)
    outer = torch.zeros(d, d, dtype=torch.float64, device=dev)
    for start in range(0, len(rows), chunk):
        x = torch.as_tensor(np.asarray(frames[rows[start : start + chunk]], dtype=np.float64), device=dev)
        total += x.sum(dim=0)
        outer += x.T @ x
    n = len(rows)
    mean = total / n
    covariance = (outer - n * torch.outer(mean, mean)) / (n - 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    order = torch.argsort(eigenvalues, descending=True)[:dim]
    components = eigenvectors[:, order].T  # (dim, D)
    # Fix each component's sign (largest coordinate positive) so refits on the same data agree exactly.
    signs = torch.sign(components[torch.arange(dim), components.abs().argmax(dim=1)])
    components = components * signs[:, None]
    return Pca(
        mean=mean.float().cpu().numpy(),
        components=components.float().cpu().numpy(),
        explained_variance=eigenvalues[order].clamp_min(0).float().cpu().numpy(),
    )


# ------------------------------------------------------------------------------------------------------ k-means


def _sq_distances(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """(N, D), (K, D) -> (N, K) squared Euclidean distances, clamped at 0 against rounding."""
    return (x.pow(2).sum(1, keepdim=True) - 2 * x @ centroids.T + centroids.pow(2).sum(1)[None]).clamp_min(0)


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007). x: (N, D) -> (k, D)."""
    n = x.shape[0]
    first = torch.randint(n, (1,), generator=generator, device="cpu").item()
    centroids = [x[first]]
    closest = _sq_distances(x, x[first][None])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # fewer distinct points than clusters: take any
            idx = torch.randint(n, (1,), generator=generator, device="cpu").item()
        else:
            idx = torch.multinomial((closest / total).cpu(), 1, generator=generator).item()
        centroids.append(x[idx])
        closest = torch.minimum(closest, _sq_distances(x, x[idx][None])[:, 0])
    return torch.stack(centroids)


def fit_kmeans(
    frames: np.ndarray,
    num_clusters: int = 128,
    iterations: int = 50,
    max_points_per_cluster: int = 256,
    seed: int = 0,
    device: str | None = None,
) -> np.ndarray:
    """Lloyd's k-means with k-means++ init on a random sample of frames. frames: (N, D) -> centroids (K, D).

    The sample size follows FAISS's default cap of 256 points per centroid, which wav2vec-U's clustering used.
    """
    generator = torch.Generator().manual_seed(seed)
    n = frames.shape[0]
    if n < num_clusters:
        raise ValueError(f"{n} frames cannot make {num_clusters} clusters; lower --clusters")
    sample = min(n, num_clusters * max_points_per_cluster)
    rows = np.sort(torch.randperm(n, generator=generator)[:sample].numpy())
    dev = _device(device)
    x = torch.as_tensor(np.asarray(frames[rows], dtype=np.float32), device=dev)
    centroids = kmeans_plus_plus(x, num_clusters, generator)
    for _ in range(iterations):
        assign = _sq_distances(x, centroids).argmin(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=num_clusters).to(x.dtype)
        updated = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centroids)
        if torch.allclose(updated, centroids):
            break
        centroids = updated
    return centroids.cpu().numpy()


def assign_clusters(frames: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid of each frame. frames: (T, D), centroids: (K, D) -> (T,) int64."""
    if len(frames) == 0:
        return np.zeros(0, dtype=np.int64)
    x = torch.tensor(np.asarray(frames, dtype=np.float32))  # a copy: stored frames are read-only memory maps
    return _sq_distances(x, torch.from_numpy(centroids)).argmin(dim=1).numpy()


# ------------------------------------------------------------------------------------------------------ pooling


def merge_runs(frames: np.ndarray, cluster_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each run of consecutive equal cluster ids.

    frames: (T, D), cluster_ids: (T,) -> (segments (S, D) float32, run lengths (S,) int64)
    """
    if len(frames) == 0:
        return np.zeros((0, frames.shape[1]), dtype=np.float32), np.zeros(0, dtype=np.int64)
    ids = np.asarray(cluster_ids)
    starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    lengths = np.diff(np.concatenate([starts, [len(ids)]]))
    # Runs are contiguous, so one reduceat sums every run at once.
    sums = np.add.reduceat(np.asarray(frames, dtype=np.float64), starts, axis=0)
    return (sums / lengths[:, None]).astype(np.float32), lengths.astype(np.int64)


def pool_pairs(segments: np.ndarray) -> np.ndarray:
    """Mean of adjacent pairs: (S, D) -> (ceil(S / 2), D); an odd last segment is paired with itself
    (wav2vec-U pads by repeating the last row)."""
    if len(segments) == 0:
        return np.asarray(segments, dtype=np.float32)
    x = np.asarray(segments, dtype=np.float32)
    if len(x) % 2:
        x = np.concatenate([x, x[-1:]])
    return x.reshape(-1, 2, x.shape[1]).mean(axis=1)
