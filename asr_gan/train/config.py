"""Settings of one GAN run: dataclasses whose defaults are wav2vec-U's published ones.

A run's YAML has top-level data/training keys and four sections (`generator`, `discriminator`,
`reverse_generator`, `loss`). Every value can be overridden on the command line with dotted keys
(`--set loss.cycle_audio=1.0 generator.hidden_layers=2`). The whole config is printed at the start of a run
and saved as `config.yaml` beside its outputs. With every cycle weight at zero (the default) the run is the
wav2vec-U baseline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass
class GeneratorConfig:
    """asr_gan.models.generator.Generator arguments (wav2vec-U: one conv of kernel 4, input dropout 0.1)."""

    kernel_size: int = 4
    stride: int = 1
    input_dropout: float = 0.1
    hidden_layers: int = 0
    hidden_dim: int = 256
    hidden_dropout: float = 0.1
    batch_norm: bool = False
    residual_linear: bool = False
    bias: bool = False
    # How the output conv is padded: "wav2vec_u" (kernel // 2 on both sides: kernel 4 gives T + 1 outputs, the
    # last of them the last input's) or "same" (T outputs; asr_gan before issue 36). asr_gan/models/generator.py.
    conv_padding: str = "wav2vec_u"


@dataclass
class DiscriminatorConfig:
    """asr_gan.models.discriminator.Discriminator arguments (wav2vec-U: width 384, kernel 6, causal)."""

    hidden_dim: int = 384
    kernel_size: int = 6
    depth: int = 1
    dropout: float = 0.0
    causal: bool = True


@dataclass
class ReverseGeneratorConfig:
    """asr_gan.models.reverse_generator.ReverseGenerator arguments (its upsample is the generator's stride)."""

    hidden_dim: int = 256
    hidden_layers: int = 2
    kernel_size: int = 5
    dropout: float = 0.1
    noise_dim: int = 0


@dataclass
class LossConfig:
    """Loss weights. wav2vec-U: gradient penalty 1.5, smoothness 0.5, code (diversity) penalty 4.0
    (its TIMIT/LibriSpeech configs sweep 1.5-2.0, 0.5-0.75 and 2-4). The cycle terms are asr_gan's."""

    # The generator's adversarial term; 0 trains it on the other terms alone (e.g. bigram matching: output
    # distribution matching without a discriminator): the phone discriminator is not trained, and with
    # feature_adversarial also 0 every update is a generator update.
    adversarial: float = 1.0
    gradient_penalty: float = 1.5
    # What the gradient penalty holds at norm 1 (asr_gan/train/losses.py): "channel" (wav2vec-U) one norm per
    # (sequence, input channel), taken over time; "sequence" (WGAN-GP) one norm per sequence over all
    # positions and channels. With a narrow discriminator "channel" can fix the sign of the discriminator's
    # response to each phone at initialisation and leave it ranking text above generated output.
    gradient_penalty_norm: str = "channel"
    smoothness: float = 0.5
    diversity: float = 4.0
    # What the smoothness and diversity (code) penalties read. "merged" (wav2vec-U): the logits after runs of one
    # argmax were merged (one random position per run), over the B x R merged rows of the reference's JOIN
    # segmenter, padding rows (zero logits: uniform distributions) included in the code penalty's average.
    # "frames": the generator's logits before the merge, padding excluded (asr_gan before issue 36).
    # docs/wav2vec_u_baseline.md has the formulas and a measurement of both.
    regularise: str = "merged"
    # What the diversity term pulls the batch's phone usage toward. "uniform" (wav2vec-U's code penalty): every
    # phone equally often, which real phone frequencies are not, so the term pulls even a perfect reading off
    # (docs/gan_investigation.md, "The regularisers pull a perfect reading off"). "text": the unpaired text's
    # phone frequencies, as KL(text unigrams || the merged outputs' mean distribution); zero at a reading with
    # the text's statistics, large when phones go unused (the collapse the term is there to stop).
    diversity_target: str = "uniform"
    # audio -> phones -> audio reconstruction (mean squared error on standardised features)
    cycle_audio: float = 0.0
    # text phones -> features -> phones cross-entropy
    cycle_text: float = 0.0
    # feature-domain discriminator on real features vs the reverse generator's (the two-sided CycleGAN)
    feature_adversarial: float = 0.0
    # Bigram matching: KL divergence from the unpaired text's phone-bigram distribution to the batch's expected
    # bigram distribution of the merged generator outputs. Not adversarial, so it pulls the generator toward
    # text-like phone statistics from the first update, before the discriminator knows anything.
    bigram: float = 0.0
    # The audio cycle passes hard one-hot phones (straight-through gradients) to the reverse generator, so
    # the phones themselves must carry the content: a soft distribution could hide it in tiny probabilities.
    cycle_hard: bool = True
    # The discriminator sees the generator's merged outputs as hard one-hot phones (straight-through gradients
    # to the generator), as it sees text, instead of soft distributions (wav2vec-U): it can then not tell the
    # two apart by how peaked the distributions are.
    adversarial_hard: bool = False


@dataclass
class GanConfig:
    """One GAN run. Paths point at a recipe's files (docs/DESIGN.md)."""

    features: str = ""  # training FeatureSet (segments, or frames for a strided generator)
    text: str = ""  # phonemised unpaired text, one sentence per line (text/train_text.phn)
    phones: str = ""  # text/phones.txt
    phone_lm: str = ""  # KenLM phone LM (text/phone_lm.bin) for weighted_lm_ppl
    valid_features: str | None = None  # unlabelled validation audio for label-free selection
    valid_labels: str | None = None  # optional references (`utt ph ...`): PER is logged, never used to select
    seed: int = 1
    max_updates: int = 150_000  # wav2vec-U; G and D updates alternate, each counts one
    batch_size: int = 160
    # Crop audio and text sequences longer than this (positions); 0 = no crop.
    max_length: int = 0
    generator_lr: float = 4e-4
    discriminator_lr: float = 5e-4
    generator_weight_decay: float = 0.0
    discriminator_weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.98)
    adam_eps: float = 1e-6  # wav2vec-U's (PyTorch's default is 1e-8)
    # Weight decay as wav2vec-U's (fairseq's) Adam applies it: decoupled, weights shrink by lr x decay each step
    # (torch AdamW). False adds decay x weights to the gradient instead (torch Adam; asr_gan before issue 36).
    decoupled_weight_decay: bool = True
    # Clip the gradient norm of the network an update trains to this (wav2vec-U: 5); 0 = no clipping.
    clip_norm: float = 5.0
    # Discriminator updates per generator update (wav2vec-U alternates one and one, the generator on even
    # update numbers, starting at 0, and the discriminator on odd ones).
    discriminator_steps: int = 1
    valid_interval: int = 1000
    log_interval: int = 100
    # Skip this many updates before keeping a best checkpoint: early outputs are near-uniform and their
    # weighted_lm_ppl can look good by accident.
    select_after: int = 0
    # Warm start: before the first adversarial update the generator trains this many updates of per-position
    # cross-entropy on label-free segment labels (`utt ph ...`, one phone per feature row, e.g. the
    # `train.segments` of `python -m asr_gan.lab.decipher`). 0 = start from random weights (wav2vec-U).
    warm_start_labels: str | None = None
    warm_start_updates: int = 0
    # ... then this many discriminator-only updates, so the warm generator first meets a discriminator that
    # already knows text instead of following a random one's gradients away from its labels.
    warm_start_discriminator_updates: int = 0
    device: str = "auto"
    amp: bool = True  # bfloat16 autocast on CUDA; the CPU always runs float32
    # On one CUDA device, each kind of update is captured once as a CUDA graph and replayed (every batch is
    # then padded to the data's longest sequence, or max_length); False launches every kernel from Python.
    cuda_graphs: bool = True
    threads: int | None = None
    tensorboard: bool = True
    progress: bool = True
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    reverse_generator: ReverseGeneratorConfig = field(default_factory=ReverseGeneratorConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def validate(self) -> None:
        missing = [n for n in ("features", "text", "phones") if not getattr(self, n)]
        if missing:
            raise ValueError(f"GAN config lacks {missing} (paths to the training features, phone text, phones.txt)")
        if self.valid_features and not self.phone_lm:
            raise ValueError("valid_features is set but phone_lm is not: label-free selection needs the phone LM")
        if self.warm_start_updates > 0 and not self.warm_start_labels:
            raise ValueError("warm_start_updates is set but warm_start_labels is not")
        if self.warm_start_labels and self.generator.stride != 1:
            raise ValueError("warm_start_labels hold one phone per feature row: the generator's stride must be 1")
        if self.loss.gradient_penalty_norm not in ("channel", "sequence"):
            raise ValueError(f"loss.gradient_penalty_norm: {self.loss.gradient_penalty_norm!r} is neither "
                             "'channel' (wav2vec-U) nor 'sequence'")
        if self.loss.diversity_target not in ("uniform", "text"):
            raise ValueError(f"loss.diversity_target: {self.loss.diversity_target!r} is neither 'uniform' "
                             "(wav2vec-U) nor 'text'")
        if self.loss.regularise not in ("merged", "frames"):
            raise ValueError(f"loss.regularise: {self.loss.regularise!r} is neither 'merged' (wav2vec-U) nor 'frames'")
        if self.generator.conv_padding not in ("wav2vec_u", "same"):
            raise ValueError(f"generator.conv_padding: {self.generator.conv_padding!r} is neither 'wav2vec_u' "
                             "nor 'same'")
        if self.clip_norm < 0:
            raise ValueError(f"clip_norm {self.clip_norm} must be >= 0 (0 = no clipping)")
        if self.batch_size < 1 or self.max_updates < 0:
            raise ValueError(f"batch_size {self.batch_size} and max_updates {self.max_updates} must be positive")

    @property
    def uses_discriminator(self) -> bool:
        """Whether any loss reads a discriminator; without one, every update is a generator update."""
        return self.loss.adversarial > 0 or self.loss.feature_adversarial > 0

    @property
    def uses_reverse_generator(self) -> bool:
        return self.loss.cycle_audio > 0 or self.loss.cycle_text > 0 or self.loss.feature_adversarial > 0


_SECTIONS = {"generator": GeneratorConfig, "discriminator": DiscriminatorConfig,
             "reverse_generator": ReverseGeneratorConfig, "loss": LossConfig}


def _coerce(value: Any, default: Any, key: str) -> Any:
    """YAML/command-line value -> the type of the field's default (tuples from lists, floats from ints)."""
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no"):
                return False
            raise ValueError(f"{key}: expected true/false, got {value!r}")
        return bool(value)
    if isinstance(default, tuple):
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(type(d)(v) for d, v in zip(default, items))
    if isinstance(default, float):
        return float(value)
    if isinstance(default, int):
        return int(value)
    return value


def config_from_dict(values: dict[str, Any], source: str = "config") -> GanConfig:
    """Build a GanConfig; an unknown key is an error naming it (a typo must not silently do nothing)."""
    config = GanConfig()
    for key, value in (values or {}).items():
        set_value(config, key, value, source)
    return config


def set_value(config: GanConfig, dotted: str, value: Any, source: str = "--set") -> None:
    """Set `section.key` or `key` on `config`, converting `value` to the field's type."""
    parts = dotted.split(".")
    target: Any = config
    for part in parts[:-1]:
        if part not in _SECTIONS:
            raise ValueError(f"{source}: unknown section {part!r} in {dotted!r}; sections: {sorted(_SECTIONS)}")
        target = getattr(target, part)
    leaf = parts[-1]
    if len(parts) == 1 and leaf in _SECTIONS:
        if not isinstance(value, dict):
            raise ValueError(f"{source}: {leaf} must be a mapping of settings")
        for key, inner in value.items():
            set_value(config, f"{leaf}.{key}", inner, source)
        return
    names = {f.name for f in fields(target)}
    if leaf not in names:
        raise ValueError(f"{source}: unknown setting {dotted!r}; known: {sorted(names)}")
    default = getattr(target, leaf)
    if value is None or default is None:
        setattr(target, leaf, value)
    else:
        setattr(target, leaf, _coerce(value, default, dotted))


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> GanConfig:
    """YAML file (optional) + `key=value` overrides -> GanConfig."""
    values: dict[str, Any] = {}
    if path:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: GAN config not found")
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a YAML mapping of settings")
    config = config_from_dict(values, str(path) if path else "config")
    for item in overrides or []:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected key=value")
        set_value(config, key.strip(), yaml.safe_load(text) if text.strip() else "", "--set")
    return config


def config_to_dict(config: GanConfig) -> dict[str, Any]:
    """Plain dict (tuples as lists) for YAML and checkpoints."""
    def plain(value: Any) -> Any:
        if is_dataclass(value):
            return {k: plain(v) for k, v in asdict(value).items()}
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return list(value)
        return value

    return plain(config)


def save_config(config: GanConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8")
