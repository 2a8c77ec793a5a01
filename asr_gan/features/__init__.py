"""Waveforms -> per-frame features -> segments (the GAN input), and their storage.

    frontends.py      MFCC / log-mel / Kaldi fbank (10 ms hop)
    ssl.py            wav2vec 2.0 / HuBERT / WavLM layer outputs from local fairseq or Hugging Face checkpoints
    vad.py            energy VAD that removes silence before the frontend
    normalization.py  CMVN per utterance, speaker or corpus (statistics saved for decoding)
    segmentation.py   PCA, k-means, merging runs of one cluster, pair pooling
    pipeline.py       FeaturePipeline: the fitted transform, saved beside the features, reused at decode time
    storage.py        FeatureSet (memory-mapped) and FeatureSetWriter
    extract.py        sharded, resumable, parallel extraction of a manifest
    fairseq_io.py     fairseq wav2vec-U layout in and out
    __main__.py       `python -m asr_gan.features extract | merge | fit-transform | segment | ...`
"""

from asr_gan.features.pipeline import FeaturePipeline, SegmentConfig
from asr_gan.features.storage import FeatureSet, FeatureSetWriter

__all__ = ["FeaturePipeline", "FeatureSet", "FeatureSetWriter", "SegmentConfig"]
