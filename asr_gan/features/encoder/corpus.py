"""The encoder's training speech: sentences of other languages spoken by espeak-ng, with its own phonemes.

No English audio and no English phone label is ever used. Text comes from Debian's word lists (`wngerman`,
`wspanish`, ...): a sentence is a few words drawn at random, spoken by one of several espeak-ng voice variants
at a random speed and pitch. espeak-ng writes the waveform and, in the same call, the IPA phonemes it spoke
(`--ipa --sep=_`), which `phonemes.ipa_to_phones` maps to the shared inventory. A sentence in which espeak-ng
reads a word as English (it does for a few French and Swedish words) is skipped. The variants that speak the
demo corpus's dev and test voices are left out, so its held-out voices stay unheard here as well.

Each language is synthesised into one file `<out>/<language>.npz` (log-mel frames, lengths, phones, split),
written once and kept: a rerun skips finished languages, and an utterance espeak-ng fails on is reported and
skipped.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr_gan.audio.io import load_audio
from asr_gan.features.encoder.phonemes import ipa_to_phones
from asr_gan.features.frontends import SAMPLE_RATE, FrontendConfig, LogMelFrontend


@dataclass(frozen=True)
class Language:
    """An espeak-ng voice and the Debian word list its sentences are drawn from."""

    voice: str
    word_list: str
    debian_package: str
    encoding: str = "utf-8"


LANGUAGES = {
    "de": Language("de", "/usr/share/dict/ngerman", "wngerman"),
    "es": Language("es", "/usr/share/dict/spanish", "wspanish"),
    "fr": Language("fr-fr", "/usr/share/dict/french", "wfrench"),
    "it": Language("it", "/usr/share/dict/italian", "witalian"),
    "nl": Language("nl", "/usr/share/dict/dutch", "wdutch"),
    "pt": Language("pt", "/usr/share/dict/portuguese", "wportuguese"),
    "pl": Language("pl", "/usr/share/dict/polish", "wpolish"),
    # Debian ships the Swedish list in Latin-1.
    "sv": Language("sv", "/usr/share/dict/swedish", "wswedish", "latin-1"),
}
DEFAULT_LANGUAGES = tuple(LANGUAGES)
# espeak-ng variants (`espeak-ng --voices=variant`); m2, m5, f3 and f5 speak the demo's dev and test voices.
VARIANTS = ("m1", "m3", "m4", "m6", "m7", "f1", "f2", "f4", "Andy", "Annie", "edward", "belinda")
# Speed in words per minute and pitch 0-99 (espeak-ng's -s and -p); the demo's voices use 135-195 and 25-75.
RATE_RANGE = (120.0, 210.0)
PITCH_RANGE = (15.0, 85.0)
MEL_CONFIG = FrontendConfig(kind="fbank", num_mels=80)


@dataclass
class CorpusConfig:
    """How much speech of which languages."""

    out: str
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    sentences: int = 500  # per language, held-out ones included
    heldout: int = 30  # per language: sentences never trained on, for the encoder's own PER
    min_words: int = 2
    max_words: int = 7
    seed: int = 1
    workers: int = 2
    # language -> a word list to read instead of the Debian one (one word per line, UTF-8); tests use it.
    word_lists: dict[str, str] | None = None
    progress: bool = True


def read_words(language: str, path: str | None = None) -> list[str]:
    """Lower-case alphabetic words of 2-12 letters from a language's word list; errors name the file and fix."""
    spec = LANGUAGES[language]
    source = Path(path or spec.word_list)
    if not source.exists():
        fix = f"apt-get install {spec.debian_package}" if path is None else "check the path"
        raise FileNotFoundError(f"{source}: word list of {language!r} not found ({fix})")
    encoding = "utf-8" if path else spec.encoding
    try:
        text = source.read_text(encoding=encoding)
    except UnicodeDecodeError as err:
        raise ValueError(f"{source}: not {encoding} text ({err})") from err
    words = sorted({w for w in (line.strip() for line in text.splitlines())
                    if 2 <= len(w) <= 12 and w.isalpha() and w == w.lower()})
    if not words:
        raise ValueError(f"{source}: no lower-case alphabetic words of 2-12 letters")
    return words


@dataclass
class Utterance:
    """One sentence to speak, with its voice."""

    language: str
    text: str
    voice: str
    rate: int
    pitch: int
    heldout: bool


def plan_language(language: str, config: CorpusConfig) -> list[Utterance]:
    """The sentences and voices of one language, drawn from the seed and the language's name."""
    words = read_words(language, (config.word_lists or {}).get(language))
    rng = np.random.default_rng([config.seed, *language.encode()])
    plan = []
    for index in range(config.sentences):
        count = int(rng.integers(config.min_words, config.max_words + 1))
        text = " ".join(words[i] for i in rng.integers(len(words), size=count))
        variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
        plan.append(Utterance(language, text, f"{LANGUAGES[language].voice}+{variant}",
                              int(rng.uniform(*RATE_RANGE)), int(rng.uniform(*PITCH_RANGE)),
                              heldout=index >= config.sentences - config.heldout))
    return plan


def speak(utterance: Utterance, wav_path: str) -> list[str]:
    """Have espeak-ng speak one sentence into `wav_path`; returns the phones it spoke."""
    command = ["espeak-ng", "-v", utterance.voice, "-s", str(utterance.rate), "-p", str(utterance.pitch),
               "--ipa", "--sep=_", "-w", wav_path, utterance.text]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"espeak-ng failed ({done.returncode}): {done.stderr.strip()}")
    return ipa_to_phones(done.stdout)


_MEL: dict = {}


def _synthesise(utterance: Utterance) -> tuple[np.ndarray | None, list[str], str | None]:
    """Worker body: (log-mel frames (T, 80) float16, phones, None), or (None, [], why) when it fails."""
    if "mel" not in _MEL:
        torch.set_num_threads(1)
        _MEL["mel"] = LogMelFrontend(MEL_CONFIG)
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        try:
            phones = speak(utterance, wav.name)
            wave = load_audio(wav.name, SAMPLE_RATE)
        except Exception as err:  # a bad sentence is reported and skipped, the corpus goes on
            return None, [], f"{utterance.voice} {utterance.text!r}: {err}"
    if not phones or len(wave) < SAMPLE_RATE // 10:
        return None, [], f"{utterance.voice} {utterance.text!r}: no phones or no audio"
    return _MEL["mel"](wave).astype(np.float16), phones, None


def language_path(out: str | Path, language: str) -> Path:
    return Path(out) / f"{language}.npz"


def synthesise_language(language: str, config: CorpusConfig) -> Path:
    """Speak one language's plan into `<out>/<language>.npz` (skipped when it is already there)."""
    path = language_path(config.out, language)
    if path.exists():
        print(f"[encoder] {path} exists, kept", flush=True)
        return path
    plan = plan_language(language, config)
    frames, phones, heldout, skipped = [], [], [], []
    context = multiprocessing.get_context("spawn")
    with context.Pool(max(1, config.workers)) as pool:
        results = pool.imap(_synthesise, plan, chunksize=8)
        for utterance, (mel, spoken, error) in tqdm(zip(plan, results), total=len(plan), unit="utt",
                                                    desc=f"[encoder] speak {language}", dynamic_ncols=True,
                                                    disable=not config.progress):
            if error is not None:
                skipped.append(error)
                continue
            frames.append(mel)
            phones.append(" ".join(spoken))
            heldout.append(utterance.heldout)
    if not frames:
        raise RuntimeError(f"[encoder] {language}: espeak-ng spoke none of {len(plan)} sentences: {skipped[:3]}")
    for reason in skipped:
        print(f"[encoder] skipped: {reason}", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, frames=np.concatenate(frames), lengths=np.array([len(f) for f in frames]),
             phones=np.array(phones), heldout=np.array(heldout))
    partial.rename(path)  # whole or absent: an interrupted language is spoken again
    meta = {"language": language, "utterances": len(frames), "skipped": skipped,
            "hours": float(sum(len(f) for f in frames)) / 100 / 3600,
            "config": {k: v for k, v in asdict(config).items() if k != "out"}}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


@dataclass
class SpokenCorpus:
    """Every language's utterances: log-mel frames (T, 80) float16, phone strings, held-out flags."""

    frames: list[np.ndarray]
    phones: list[list[str]]
    heldout: np.ndarray
    languages: list[str]


def load_corpus(out: str | Path, languages: tuple[str, ...]) -> SpokenCorpus:
    frames, phones, heldout, names = [], [], [], []
    for language in languages:
        with np.load(language_path(out, language)) as data:
            offsets = np.concatenate([[0], np.cumsum(data["lengths"])])
            all_frames = data["frames"]
            frames.extend(all_frames[a:b] for a, b in zip(offsets[:-1], offsets[1:]))
            phones.extend(str(p).split() for p in data["phones"])
            heldout.extend(bool(h) for h in data["heldout"])
            names.extend([language] * len(data["lengths"]))
    return SpokenCorpus(frames, phones, np.array(heldout), names)


def build_corpus(config: CorpusConfig) -> SpokenCorpus:
    """Speak every language not yet spoken, then load them all."""
    unknown = [code for code in config.languages if code not in LANGUAGES]
    if unknown:
        raise ValueError(f"unknown language(s) {unknown}; choose from {sorted(LANGUAGES)}")
    for language in config.languages:
        synthesise_language(language, config)
    return load_corpus(config.out, config.languages)
