"""FeaturePipeline: everything fitted between a waveform and the GAN input, saved once, applied identically at
training and decoding time.

    wave --VAD--> speech --frontend--> frames --CMVN--> frames          `frames(wave, speaker)`
    frames --k-means ids--> runs --PCA + mean per run--> segments --pair pooling--> segments   `segments(frames)`

Saved as a folder (`feats/<frontend>/transform/`): pipeline.json (configs), cmvn.npz, pca.npz, centroids.npy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from asr_gan.features.frontends import Frontend, FrontendConfig, build_frontend
from asr_gan.features.normalization import Cmvn
from asr_gan.features.segmentation import Pca, assign_clusters, fit_kmeans, fit_pca, merge_runs, pool_pairs
from asr_gan.features.storage import FeatureSet
from asr_gan.features.vad import VadConfig, remove_silence


@dataclass
class SegmentConfig:
    """How frames become segments. Defaults follow wav2vec-U (prepare_audio.sh: PCA 512, 128 clusters, pooled)."""

    pca_dim: int = 512  # capped at the input dimension; 0 = no PCA
    clusters: int = 128  # 0 = no merging: one segment per frame
    pool: bool = True  # mean-pool adjacent segment pairs (wav2vec-U's `_pooled`)
    kmeans_iterations: int = 50
    max_pca_frames: int = 2_000_000  # PCA is fit on a random sample of at most this many training frames (streamed)
    seed: int = 0
    device: str | None = None


NO_FRAMES = "no frames: the VAD found no speech, or the speech is shorter than one window"


def raw_frames(wave: np.ndarray, frontend: Frontend, vad: VadConfig | None) -> np.ndarray:
    """VAD then frontend: the part of `frames` that needs no fitted statistics. wave: (samples,) -> (T, D)."""
    if vad is not None:
        wave, _ = remove_silence(wave, vad)
    return frontend(wave)


class FeaturePipeline:
    """Fitted transform from audio to GAN input. See the module docstring for the steps."""

    def __init__(
        self,
        frontend: FrontendConfig,
        vad: VadConfig | None,
        cmvn: Cmvn,
        pca: Pca | None = None,
        centroids: np.ndarray | None = None,
        pool: bool = False,
    ):
        self.frontend_config = frontend
        self.vad = vad
        self.cmvn = cmvn
        self.pca = pca
        self.centroids = centroids
        self.pool = pool
        self._frontend: Frontend | None = None

    @property
    def frontend(self) -> Frontend:
        """Built on first use: SSL models are large and not needed to segment stored frames."""
        if self._frontend is None:
            self._frontend = build_frontend(self.frontend_config)
        return self._frontend

    def frames(self, wave: np.ndarray, speaker: str | None = None) -> np.ndarray:
        """16 kHz waveform (samples,) -> normalised frames (T, D) float32.

        With per-speaker CMVN, a `speaker` seen in training gets its stored statistics; any other speaker is
        normalised with its utterance's own statistics.
        """
        frames = raw_frames(wave, self.frontend, self.vad)
        if len(frames) == 0:
            raise ValueError(NO_FRAMES)
        return self.cmvn(frames, speaker)

    def segments_with_lengths(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """frames (T, D) -> (segments (S, D'), frames per segment (S,)); pooled segments count both members."""
        frames = np.asarray(frames, dtype=np.float32)
        reduced = self.pca(frames) if self.pca is not None else frames
        if self.centroids is not None:
            ids = assign_clusters(frames, self.centroids)  # wav2vec-U clusters the frames before PCA
            segments, lengths = merge_runs(reduced, ids)
        else:
            segments, lengths = reduced, np.ones(len(reduced), dtype=np.int64)
        if self.pool:
            segments = pool_pairs(segments)
            padded = np.concatenate([lengths, [0]]) if len(lengths) % 2 else lengths
            lengths = padded.reshape(-1, 2).sum(axis=1)
        return np.asarray(segments, dtype=np.float32), lengths

    def segments(self, frames: np.ndarray) -> np.ndarray:
        """frames (T, D) -> segments (S, D'), the GAN input."""
        return self.segments_with_lengths(frames)[0]

    @property
    def output_dim(self) -> int:
        if self.pca is not None:
            return self.pca.dim
        if self.centroids is not None:
            return self.centroids.shape[1]
        raise ValueError("pipeline has neither PCA nor clusters; its output dimension is the frames' dimension")

    # ------------------------------------------------------------------------------------------------ fitting

    @classmethod
    def from_feature_set(cls, feature_set: FeatureSet) -> "FeaturePipeline":
        """The frame part (frontend, VAD, CMVN) a FeatureSet was extracted with, from its meta.json/cmvn.npz."""
        meta = feature_set.meta
        if "frontend" not in meta:
            raise ValueError(f"{feature_set.directory}: meta.json has no frontend config; "
                             "extract it with asr_gan.features")
        cmvn_path = feature_set.directory / "cmvn.npz"
        cmvn = Cmvn.load(cmvn_path) if cmvn_path.is_file() else Cmvn(mode=meta.get("cmvn", "none"))
        vad = VadConfig.from_dict(meta["vad"]) if meta.get("vad") else None
        return cls(FrontendConfig.from_dict(meta["frontend"]), vad, cmvn)

    @classmethod
    def fit(cls, feature_set: FeatureSet, config: SegmentConfig) -> "FeaturePipeline":
        """Fit PCA and k-means on a training FeatureSet's frames."""
        pipeline = cls.from_feature_set(feature_set)
        pipeline.pool = config.pool
        frames = feature_set.features
        rng = np.random.default_rng(config.seed)
        total = frames.shape[0]
        if config.pca_dim and config.pca_dim < feature_set.dim:
            take = min(total, config.max_pca_frames)
            rows = np.sort(rng.choice(total, size=take, replace=False)) if take < total else None
            pipeline.pca = fit_pca(frames, config.pca_dim, config.device, rows=rows)
        if config.clusters:
            pipeline.centroids = fit_kmeans(
                frames, config.clusters, config.kmeans_iterations, seed=config.seed, device=config.device
            )
        return pipeline

    # --------------------------------------------------------------------------------------------- save/load

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.cmvn.save(directory / "cmvn.npz")
        if self.pca is not None:
            np.savez(directory / "pca.npz", **asdict(self.pca))
        if self.centroids is not None:
            np.save(directory / "centroids.npy", self.centroids)
        config = {
            "frontend": self.frontend_config.to_dict(),
            "vad": self.vad.to_dict() if self.vad is not None else None,
            "cmvn": self.cmvn.mode,
            "pca_dim": self.pca.dim if self.pca is not None else None,
            "clusters": int(self.centroids.shape[0]) if self.centroids is not None else None,
            "pool": self.pool,
        }
        (directory / "pipeline.json").write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> "FeaturePipeline":
        directory = Path(directory)
        config_path = directory / "pipeline.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"{directory}: no pipeline.json; "
                                    "run `python -m asr_gan.features fit-transform` first")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        pca = None
        if config.get("pca_dim"):
            data = np.load(directory / "pca.npz")
            pca = Pca(data["mean"], data["components"], data["explained_variance"])
        centroids = np.load(directory / "centroids.npy") if config.get("clusters") else None
        return cls(
            frontend=FrontendConfig.from_dict(config["frontend"]),
            vad=VadConfig.from_dict(config["vad"]) if config.get("vad") else None,
            cmvn=Cmvn.load(directory / "cmvn.npz"),
            pca=pca,
            centroids=centroids,
            pool=bool(config.get("pool", False)),
        )
