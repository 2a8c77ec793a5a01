"""`python -m asr_gan.features <step>`: one command per step of the input side.

    extract        manifest -> FeatureSet of frames   (sharded, resumable, worker processes / GPU batches)
    merge          join finished shards (when ranks ran `extract` separately and none merged)
    fit-transform  training frames -> FeaturePipeline (CMVN stats, PCA, k-means) in a transform folder
    segment        frames + transform -> FeatureSet of segments (the GAN input)
    export-fairseq / import-fairseq   carry features to and from fairseq wav2vec-U's layout

Example:
    python -m asr_gan.features extract --manifest data/train.jsonl --out feats/mfcc/train --frontend mfcc --vad
    python -m asr_gan.features fit-transform --features feats/mfcc/train --out feats/mfcc/transform --pca-dim 32
    python -m asr_gan.features segment --transform feats/mfcc/transform --features feats/mfcc/train \\
        --out feats/mfcc/segments/train
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr_gan.features.encoder.checkpoint import ENCODER_LAYER
from asr_gan.features.extract import ExtractConfig, SettingsMismatch, extract, merge_shards
from asr_gan.features.frontends import FrontendConfig
from asr_gan.features.pipeline import FeaturePipeline, SegmentConfig
from asr_gan.features.storage import FeatureSet, FeatureSetWriter
from asr_gan.features.vad import VadConfig


def _print_config(name: str, config) -> None:
    print(f"{name}: " + json.dumps(asdict(config) if hasattr(config, "__dataclass_fields__") else config,
                                  indent=2, default=str), flush=True)


def _extract_config(args: argparse.Namespace) -> ExtractConfig:
    kind = "ssl" if args.ssl_checkpoint else "encoder" if args.encoder_checkpoint else args.frontend
    layer = args.layer if args.layer is not None else ENCODER_LAYER if kind == "encoder" else 14
    frontend = FrontendConfig(
        kind=kind,
        num_ceps=args.num_ceps,
        num_mels=args.num_mels,
        deltas=not args.no_deltas,
        ssl_checkpoint=args.ssl_checkpoint,
        layer=layer,
        encoder_checkpoint=args.encoder_checkpoint,
        device=args.device,
    )
    return ExtractConfig(
        manifest=args.manifest,
        out=args.out,
        frontend=frontend,
        cmvn=args.cmvn,
        vad=VadConfig() if args.vad else None,
        dtype=args.dtype,
        num_workers=args.num_workers,
        shard_size=args.shard_size,
        shard=args.shard,
        batch_seconds=args.batch_seconds,
        keep_shards=args.keep_shards,
    )


def cmd_extract(args: argparse.Namespace) -> int:
    config = _extract_config(args)
    _print_config("extract", config)
    try:
        extract(config)
    except SettingsMismatch as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    saved = Path(args.out) / "extract_config.json"
    if not saved.is_file():
        print(f"{saved}: not found; run `extract` into {args.out} first", file=sys.stderr)
        return 2
    data = json.loads(saved.read_text())
    data["frontend"] = FrontendConfig.from_dict(data["frontend"])
    data["vad"] = VadConfig.from_dict(data["vad"]) if data.get("vad") else None
    config = ExtractConfig(**data)
    summary = merge_shards(config)
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return 0


def cmd_fit_transform(args: argparse.Namespace) -> int:
    config = SegmentConfig(
        pca_dim=args.pca_dim, clusters=args.clusters, pool=args.pool, kmeans_iterations=args.kmeans_iterations,
        seed=args.seed, device=args.device,
    )
    _print_config("fit-transform", config)
    features = FeatureSet(args.features)
    started = time.perf_counter()
    pipeline = FeaturePipeline.fit(features, config)
    pipeline.save(args.out)
    (Path(args.out) / "segment_config.json").write_text(json.dumps(asdict(config), indent=2))
    print(f"{args.out}: fitted on {int(features.lengths.sum())} frames of {features.directory} "
          f"in {time.perf_counter() - started:.1f} s (pca_dim={pipeline.pca.dim if pipeline.pca else None}, "
          f"clusters={len(pipeline.centroids) if pipeline.centroids is not None else None}, pool={pipeline.pool})")
    return 0


def segment_feature_set(pipeline: FeaturePipeline, features: FeatureSet, out: str | Path,
                        dtype: str = "float32") -> FeatureSet:
    """Apply `pipeline.segments` to every utterance of `features`; writes a FeatureSet of segments."""
    dim = pipeline.pca.dim if pipeline.pca is not None else features.dim
    meta = {"source": str(features.directory), "frame_rate_source": features.meta.get("frame_rate")}
    writer = FeatureSetWriter(out, dim, dtype, meta=meta)
    num_frames = num_segments = 0
    for i in tqdm(range(len(features)), desc="segment", unit="utt"):
        segments = pipeline.segments(np.asarray(features[i], dtype=np.float32))
        writer.add(features.utt_ids[i], segments)
        num_frames += int(features.lengths[i])
        num_segments += len(segments)
    writer.meta["segment_frame_ratio"] = num_segments / max(1, num_frames)
    return writer.close()


def cmd_segment(args: argparse.Namespace) -> int:
    pipeline = FeaturePipeline.load(args.transform)
    features = FeatureSet(args.features)
    result = segment_feature_set(pipeline, features, args.out, args.dtype)
    print(f"{args.out}: {int(result.lengths.sum())} segments from {int(features.lengths.sum())} frames, "
          f"segment/frame ratio {result.meta['segment_frame_ratio']:.3f}")
    return 0


def cmd_export_fairseq(args: argparse.Namespace) -> int:
    from asr_gan.features.fairseq_io import export_fairseq

    count = export_fairseq(FeatureSet(args.features), args.manifest, args.out, args.split)
    print(f"{args.out}: wrote {count} utterances as {args.split}.tsv/.npy/.lengths")
    return 0


def cmd_import_fairseq(args: argparse.Namespace) -> int:
    from asr_gan.features.fairseq_io import import_fairseq

    fs = import_fairseq(args.dir, args.split, args.out)
    print(fs)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.features", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("extract", help="manifest -> FeatureSet of frames")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--frontend", default="mfcc", choices=["mfcc", "fbank", "kaldi_fbank", "ssl", "encoder"],
                   help="encoder: the cross-lingual phone encoder shipped in the package (asr_gan.features.encoder)")
    p.add_argument("--num-ceps", type=int, default=13)
    p.add_argument("--num-mels", type=int, default=80)
    p.add_argument("--no-deltas", action="store_true", help="MFCC without deltas and delta-deltas")
    p.add_argument("--ssl-checkpoint", help="fairseq .pt file or Hugging Face folder (implies --frontend ssl)")
    p.add_argument("--encoder-checkpoint", help="a phone encoder of `python -m asr_gan.features.encoder train` "
                   "(implies --frontend encoder; default: the shipped one)")
    p.add_argument("--layer", type=int, help="ssl: 0-based transformer block (default 14, wav2vec-U's 15 of 24); "
                   f"encoder: 0 (stem) to its last block (default {ENCODER_LAYER})")
    p.add_argument("--cmvn", default="utterance", choices=["none", "utterance", "speaker", "global"])
    p.add_argument("--vad", action="store_true", help="remove silence with the energy VAD before the frontend")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    p.add_argument("--num-workers", type=int, default=1)
    p.add_argument("--shard-size", type=int, default=500)
    p.add_argument("--shard", help="i/n: take shards i, i+n, ... (default: RANK/WORLD_SIZE, else all)")
    p.add_argument("--batch-seconds", type=float, default=160.0, help="audio per GPU batch (SSL)")
    p.add_argument("--keep-shards", action="store_true")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("merge", help="join the finished shards of an extraction")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("fit-transform", help="fit PCA and k-means on training frames")
    p.add_argument("--features", required=True, help="training FeatureSet of frames")
    p.add_argument("--out", required=True, help="transform folder")
    p.add_argument("--pca-dim", type=int, default=512, help="0: no PCA; capped at the feature dimension")
    p.add_argument("--clusters", type=int, default=128, help="0: frame level, no merging")
    p.add_argument("--pool", action=argparse.BooleanOptionalAction, default=True,
                   help="mean-pool adjacent segment pairs (wav2vec-U's _pooled)")
    p.add_argument("--kmeans-iterations", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device")
    p.set_defaults(func=cmd_fit_transform)

    p = sub.add_parser("segment", help="frames -> segments with a fitted transform")
    p.add_argument("--transform", required=True)
    p.add_argument("--features", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("export-fairseq", help="FeatureSet + manifest -> fairseq {split}.tsv/.npy/.lengths/.phn")
    p.add_argument("--features", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--split", required=True)
    p.set_defaults(func=cmd_export_fairseq)

    p = sub.add_parser("import-fairseq", help="fairseq {split}.npy/.lengths/.tsv -> FeatureSet")
    p.add_argument("--dir", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--out")
    p.set_defaults(func=cmd_import_fairseq)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
