"""Self-supervised speech models from LOCAL checkpoints: wav2vec 2.0, HuBERT and WavLM -> one layer's output.

Formats:
- Hugging Face folder (config.json + weights): built with `transformers` (Wav2Vec2Model / HubertModel /
  WavLMModel) and converted by torchaudio's `import_huggingface_model`.
- fairseq `.pt` (wav2vec 2.0 and HuBERT, pre-trained or fine-tuned): the checkpoint dict is read directly and
  its parameter names are mapped by torchaudio's fairseq key mapping, so fairseq itself is not needed.
  Limitations: fairseq cannot be installed here, so the tests check this loader against checkpoints written in
  fairseq's layout from torchaudio models, not against fairseq's own model objects; WavLM `.pt` files (from
  microsoft/unilm, not fairseq) are not read: convert them to a Hugging Face folder first.

The layer index is 0-based like fairseq's `layer` argument: the output of transformer block `layer`, before
any final layer norm (wav2vec-U: block 15 of 24 = index 14).
"""

from __future__ import annotations

import ast
import json
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


@dataclass
class SslModel:
    """A loaded model. `model` is a torchaudio Wav2Vec2Model (eval mode); `normalize_waveform` is the
    checkpoint's own input convention (fairseq task.normalize / HF do_normalize): zero mean, unit variance
    over each utterance before the convolutional encoder."""

    model: torch.nn.Module
    normalize_waveform: bool
    group_norm_extractor: bool  # GroupNorm statistics span the time axis, so padding a batch changes outputs
    num_layers: int
    dim: int
    source: str


# ----------------------------------------------------------------------------------------------- Hugging Face


def load_huggingface(directory: str | Path) -> SslModel:
    """Load a Hugging Face wav2vec2 / hubert / wavlm folder through torchaudio's importer."""
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory}: no config.json; not a Hugging Face model folder")
    try:
        import transformers
    except ImportError:
        raise ImportError(f"{directory}: reading Hugging Face checkpoints needs `pip install transformers`") from None
    from torchaudio.models.wav2vec2.utils import import_huggingface_model

    config = json.loads(config_path.read_text())
    model_type = config.get("model_type", "")
    classes = {"wav2vec2": "Wav2Vec2Model", "hubert": "HubertModel", "wavlm": "WavLMModel"}
    if model_type not in classes:
        raise ValueError(f"{config_path}: model_type {model_type!r} not supported; expected one of {sorted(classes)}")
    original = getattr(transformers, classes[model_type]).from_pretrained(str(directory))
    original.eval()
    # torchaudio logs a warning for any non-CTC model; that is the case we want, so keep it quiet.
    logging.getLogger("torchaudio.models.wav2vec2.utils.import_huggingface").setLevel(logging.ERROR)
    model = import_huggingface_model(original).eval()
    preprocessor = directory / "preprocessor_config.json"
    if preprocessor.is_file():
        normalize = bool(json.loads(preprocessor.read_text()).get("do_normalize", False))
    else:
        # The released models normalise exactly when their convolutional encoder uses layer norm (LARGE lv60).
        normalize = config.get("feat_extract_norm") == "layer"
    return SslModel(
        model=model,
        normalize_waveform=normalize,
        group_norm_extractor=config.get("feat_extract_norm", "group") == "group",
        num_layers=int(config["num_hidden_layers"]),
        dim=int(config["hidden_size"]),
        source=str(directory),
    )


# ------------------------------------------------------------------------------------------------------ fairseq


class _Placeholder:
    """Stands in for fairseq/omegaconf-free classes pickled into a checkpoint (argparse Namespaces of
    fairseq types, enums): they only carry configuration we read as attributes."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.__dict__.update(state)


class _LenientUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module.startswith("fairseq"):
            return _Placeholder
        return super().find_class(module, name)


class _LenientPickle:
    """A `pickle_module` for torch.load that does not need fairseq installed."""

    Unpickler = _LenientUnpickler
    load = pickle.load


def _read_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_LenientPickle)
    except ModuleNotFoundError as err:
        raise ImportError(f"{path}: the checkpoint pickles objects from {err.name!r}; pip install {err.name}") from None


def _as_dict(cfg: Any) -> dict:
    """fairseq configs arrive as dicts, omegaconf DictConfigs or argparse Namespaces."""
    if cfg is None:
        return {}
    if isinstance(cfg, dict):
        return cfg
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:
        pass
    return dict(vars(cfg))


def _parse_conv_layers(spec: str | list) -> list[tuple[int, int, int]]:
    """fairseq's conv_feature_layers string, e.g. "[(512, 10, 5)] + [(512, 3, 2)] * 4", evaluated safely."""
    if not isinstance(spec, str):
        return [tuple(int(v) for v in layer) for layer in spec]
    tree = ast.parse(spec, mode="eval")
    allowed = (ast.Expression, ast.BinOp, ast.Add, ast.Mult, ast.List, ast.Tuple, ast.Constant, ast.Load)
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ValueError(f"conv_feature_layers {spec!r}: unexpected {type(node).__name__}")
    return [tuple(int(v) for v in layer) for layer in eval(compile(tree, "<conv_feature_layers>", "eval"))]


def _torchaudio_config(model_cfg: dict) -> dict:
    """fairseq Wav2Vec2Config / HubertConfig fields -> torchaudio `wav2vec2_model` arguments."""
    return {
        "extractor_mode": "layer_norm" if model_cfg.get("extractor_mode", "default") == "layer_norm" else "group_norm",
        "extractor_conv_layer_config": _parse_conv_layers(
            model_cfg.get("conv_feature_layers", "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]")
        ),
        "extractor_conv_bias": bool(model_cfg.get("conv_bias", False)),
        "encoder_embed_dim": int(model_cfg.get("encoder_embed_dim", 768)),
        "encoder_projection_dropout": 0.0,
        "encoder_pos_conv_kernel": int(model_cfg.get("conv_pos", 128)),
        "encoder_pos_conv_groups": int(model_cfg.get("conv_pos_groups", 16)),
        "encoder_num_layers": int(model_cfg.get("encoder_layers", 12)),
        "encoder_num_heads": int(model_cfg.get("encoder_attention_heads", 12)),
        "encoder_attention_dropout": 0.0,
        "encoder_ff_interm_features": int(model_cfg.get("encoder_ffn_embed_dim", 3072)),
        "encoder_ff_interm_dropout": 0.0,
        "encoder_dropout": 0.0,
        "encoder_layer_norm_first": bool(model_cfg.get("layer_norm_first", False)),
        "encoder_layer_drop": 0.0,
    }


def load_fairseq(path: str | Path) -> SslModel:
    """Load a fairseq wav2vec 2.0 / HuBERT checkpoint (pre-trained or fine-tuned) without fairseq."""
    from torchaudio.models import wav2vec2_model

    # torchaudio's own fairseq name mapping; it is private API, so a torchaudio upgrade may move it.
    from torchaudio.models.wav2vec2.utils.import_fairseq import _map_key

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    checkpoint = _read_checkpoint(path)
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise ValueError(f"{path}: not a fairseq checkpoint (expected a dict with 'model' and 'cfg' or 'args')")
    cfg = _as_dict(checkpoint.get("cfg")) or {"model": _as_dict(checkpoint.get("args"))}
    model_cfg = _as_dict(cfg.get("model"))
    task_cfg = _as_dict(cfg.get("task"))
    # Fine-tuned models keep the pre-training config under w2v_args and prefix weights with w2v_encoder.
    if "w2v_args" in model_cfg and model_cfg["w2v_args"]:
        inner = _as_dict(model_cfg["w2v_args"])
        task_cfg = _as_dict(inner.get("task")) or task_cfg
        model_cfg = _as_dict(inner.get("model")) or inner
    name = str(model_cfg.get("_name", "wav2vec2"))
    if "wavlm" in name.lower():
        raise ValueError(f"{path}: WavLM .pt checkpoints are not read; convert to a Hugging Face folder first")
    config = _torchaudio_config(model_cfg)

    state: dict[str, torch.Tensor] = {}
    for key, value in checkpoint["model"].items():
        key = key.removeprefix("w2v_encoder.")
        if key.startswith("proj.") or key in ("label_embs_concat",):
            continue  # CTC head / HuBERT targets: not part of the encoder we read layers from
        try:
            mapped = _map_key(key)
        except ValueError:
            log.debug("%s: ignoring parameter %s", path, key)
            continue
        if mapped is not None:
            state[mapped] = value
    model = wav2vec2_model(**config, aux_num_out=None)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path}: checkpoint does not match a {name} model built from its config "
            f"(missing {missing[:4]}, unexpected {unexpected[:4]}); is it a wav2vec 2.0 / HuBERT checkpoint?"
        )
    return SslModel(
        model=model.eval(),
        normalize_waveform=bool(task_cfg.get("normalize", False)),
        group_norm_extractor=config["extractor_mode"] == "group_norm",
        num_layers=config["encoder_num_layers"],
        dim=config["encoder_embed_dim"],
        source=str(path),
    )


def load_ssl_model(path: str | Path) -> SslModel:
    """A Hugging Face folder or a fairseq `.pt` file."""
    path = Path(path)
    if path.is_dir():
        return load_huggingface(path)
    return load_fairseq(path)


# ----------------------------------------------------------------------------------------------------- frontend


class SslFrontend:
    """Waveform -> output of transformer block `layer` (0-based), one frame per 20 ms.

    `__call__` handles one utterance; `batch` pads a list of utterances into one forward pass (used on GPU).
    """

    def __init__(self, checkpoint: str | Path, layer: int = 14, device: str | None = None):
        self.loaded = load_ssl_model(checkpoint)
        if not 0 <= layer < self.loaded.num_layers:
            raise ValueError(
                f"{checkpoint}: --layer {layer} out of range; the model has {self.loaded.num_layers} blocks (0-based)"
            )
        self.layer = layer
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = self.loaded.model.to(self.device)
        self.dim = self.loaded.dim
        # The conv encoder fixes the frame rate (total stride 320 samples = 20 ms for the released models) and
        # the shortest input that yields a frame (its receptive field, 400 samples for them).
        stride, receptive = 1, 1
        for block in self.model.feature_extractor.conv_layers:
            receptive += (block.conv.kernel_size[0] - 1) * stride
            stride *= block.conv.stride[0]
        self.frame_rate = SAMPLE_RATE / stride
        self.min_samples = receptive

    def _prepare(self, wave: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        if self.loaded.normalize_waveform:
            x = torch.nn.functional.layer_norm(x, x.shape)  # what fairseq's extraction does for normalize=True
        return x

    @torch.no_grad()
    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """wave: (samples,) -> (T, dim) float32."""
        if len(wave) < self.min_samples:
            return np.zeros((0, self.dim), dtype=np.float32)
        x = self._prepare(wave).to(self.device)[None]
        outputs, _ = self.model.extract_features(x, num_layers=self.layer + 1)
        return outputs[self.layer][0].float().cpu().numpy()

    @torch.no_grad()
    def batch(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """Several utterances in one padded pass; each result is (T_i, dim).

        A GroupNorm conv encoder (BASE models) normalises over time including padding, so for those we run one
        utterance at a time to get exactly the unbatched features.
        """
        if self.loaded.group_norm_extractor or len(waves) == 1:
            return [self(w) for w in waves]
        keep = [i for i, w in enumerate(waves) if len(w) >= self.min_samples]
        results = [np.zeros((0, self.dim), dtype=np.float32) for _ in waves]
        if not keep:
            return results
        prepared = [self._prepare(waves[i]) for i in keep]
        lengths = torch.tensor([len(p) for p in prepared])
        padded = torch.nn.utils.rnn.pad_sequence(prepared, batch_first=True).to(self.device)
        outputs, out_lengths = self.model.extract_features(padded, lengths.to(self.device), num_layers=self.layer + 1)
        layer_out = outputs[self.layer].float().cpu()
        for row, i in enumerate(keep):
            results[i] = layer_out[row, : int(out_lengths[row])].numpy()
        return results
