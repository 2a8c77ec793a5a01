"""PCA, k-means and pooling: the numbers wav2vec-U's segment features are made of."""

import numpy as np
import pytest
import torch

from asr_gan.features.segmentation import assign_clusters, fit_kmeans, fit_pca, merge_runs, pool_pairs

torch.set_num_threads(1)


def test_merge_runs_gives_run_means_and_lengths():
    frames = np.arange(12, dtype=np.float32).reshape(6, 2)  # rows [0,1],[2,3],...,[10,11]
    ids = np.array([3, 3, 1, 3, 3, 3])
    segments, lengths = merge_runs(frames, ids)
    assert lengths.tolist() == [2, 1, 3]
    np.testing.assert_allclose(segments, [[1, 2], [4, 5], [8, 9]])


def test_merge_runs_of_empty_utterance():
    segments, lengths = merge_runs(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    assert segments.shape == (0, 4) and lengths.shape == (0,)


def test_pool_pairs_averages_neighbours_and_repeats_an_odd_last_row():
    x = np.array([[0.0], [2.0], [4.0], [6.0], [9.0]], dtype=np.float32)
    np.testing.assert_allclose(pool_pairs(x), [[1.0], [5.0], [9.0]])
    assert pool_pairs(x[:4]).shape == (2, 1)


def test_pca_finds_the_direction_of_largest_variance():
    rng = np.random.default_rng(0)
    direction = np.array([3.0, 4.0, 0.0]) / 5.0
    x = rng.normal(0, 5, (2000, 1)) * direction + rng.normal(0, 0.1, (2000, 3)) + np.array([1.0, -2.0, 3.0])
    pca = fit_pca(x.astype(np.float32), 1, device="cpu")
    assert abs(abs(pca.components[0] @ direction) - 1) < 1e-3
    np.testing.assert_allclose(pca.mean, [1.0, -2.0, 3.0], atol=0.3)
    projected = pca(x)
    assert projected.shape == (2000, 1)
    np.testing.assert_allclose(projected.std(), 5.0, rtol=0.05)
    np.testing.assert_allclose(projected.mean(), 0.0, atol=1e-3)


def test_pca_dimension_above_input_names_the_flag():
    with pytest.raises(ValueError, match="--pca-dim"):
        fit_pca(np.zeros((10, 3), np.float32), 4)


def test_kmeans_recovers_separated_blob_centres():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=np.float32)
    labels = rng.integers(0, 4, 4000)
    x = centres[labels] + rng.normal(0, 0.5, (4000, 2)).astype(np.float32)
    found = fit_kmeans(x, 4, seed=0, device="cpu")
    # Every true centre has a found centroid within 0.1.
    distances = np.linalg.norm(found[None] - centres[:, None], axis=2)
    assert distances.min(axis=1).max() < 0.1
    ids = assign_clusters(x, found)
    # The clustering agrees with the true labels up to renaming.
    mapping = distances.argmin(axis=1)
    assert (ids == mapping[labels]).mean() > 0.999


def test_kmeans_too_few_frames_names_the_flag():
    with pytest.raises(ValueError, match="--clusters"):
        fit_kmeans(np.zeros((3, 2), np.float32), 4)
