"""The phone encoder as a feature frontend: 16 kHz waveform -> the output of one encoder layer at 50 frames/s.

The same log-mel frames and per-utterance standardisation as in training feed the network; layer 0 is the
strided stem, layer i the i-th residual block (asr_gan.features.encoder.model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from asr_gan.features.encoder.checkpoint import load_encoder
from asr_gan.features.encoder.corpus import MEL_CONFIG
from asr_gan.features.frontends import LogMelFrontend
from asr_gan.features.normalization import normalize_utterance


class EncoderFrontend:
    """Waveform (samples,) -> (ceil(T / 2), channels) float32: layer `layer` of the encoder at `checkpoint`."""

    def __init__(self, checkpoint: str | Path | None, layer: int, device: str | None = None) -> None:
        self.loaded = load_encoder(checkpoint)
        blocks = self.loaded.model.config.blocks
        if not 0 <= layer <= blocks:
            raise ValueError(f"{checkpoint or 'the shipped encoder'}: --layer {layer} out of range; "
                             f"the encoder has layers 0 (stem) to {blocks}")
        self.layer = layer
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = self.loaded.model.to(self.device)
        self.mel = LogMelFrontend(MEL_CONFIG)
        self.dim = self.loaded.model.config.channels
        self.frame_rate = 1000.0 / (2 * MEL_CONFIG.frame_shift_ms)

    @torch.no_grad()
    def __call__(self, wave: np.ndarray) -> np.ndarray:
        mel = self.mel(wave)
        if len(mel) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        x = torch.from_numpy(normalize_utterance(mel))[None].to(self.device)
        outputs, _ = self.model.layers(x, torch.tensor([len(mel)], device=self.device), upto=self.layer)
        return outputs[self.layer][0].float().cpu().numpy()
