"""The embedded demo corpus: King James Bible sentences spoken by Debian's TTS voices (espeak-ng, flite).

Everything comes from Debian packages (bible-kjv, espeak-ng, flite), so the demo needs no download.

- Sentences: KJV verses (`bible -f Gen1:1-Rev22:21`) split at `. ; : ? !`, normalised
  (`asr_gan.text.normalize`), kept at `min_words`..`max_words` words, deduplicated, shuffled with `seed`.
- Unpaired by construction: each distinct sentence goes to exactly one of train/dev/test audio or the text
  corpus `DIR/text_corpus.txt`, so no spoken sentence is in the text corpus.
- Speakers: a voice (espeak-ng accent + variant, or a flite voice) with its own speed and pitch drawn from
  the seed. Dev and test voices are never heard in training (kal and kal16 are one flite speaker and both
  stay in training). `--voices ENGINE:VOICE ...` instead speaks every split with the voices named, for
  diagnosis (one voice, many utterances); such a corpus has no held-out voice.
- Audio: 16 kHz mono 16-bit wav (sox resampling, peak at -1 dBFS) under `DIR/wav/<split>/`; manifests
  `DIR/{train,dev,test}.jsonl` carry the words and reference phones from our CMUdict + espeak-ng G2P (the same as
  the text side), no silence.
- Resumable: existing readable wav files are kept; a rebuild writes the same bytes. `DIR/speakers.json`
  records every voice's settings.

CLI: `python -m data_prep.demo --out data/ [--size tiny|small|default] [--num-train-utts N] ...`
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path

from tqdm import tqdm

from asr_gan.audio.io import SAMPLE_RATE, AudioError, audio_info
from asr_gan.manifest import Utterance, write_manifest
from asr_gan.text.lexicon import Pronouncer
from asr_gan.text.normalize import normalize_sentence

SIZES = {
    # (train, dev, test utterances, text corpus sentences; None = every sentence not spoken)
    "tiny": (12, 4, 4, 300),
    "small": (200, 30, 30, 5000),
    # Sized for the 15-minute end-to-end demo on 2 CPU cores (synthesis itself: see the module report).
    "default": (600, 60, 60, None),
}


@dataclass(frozen=True)
class Voice:
    """One demo speaker: a TTS voice plus its own speed and pitch."""

    speaker: str
    engine: str  # "espeak-ng" or "flite"
    voice: str
    rate: float  # espeak-ng: words per minute (-s); flite: duration_stretch (>1 = slower)
    pitch: float  # espeak-ng: 0-99 (-p); flite: int_f0_target_mean in Hz


# Voice names per split; settings are drawn per speaker from the seed. Checked with
# `espeak-ng --voices=en`, `espeak-ng --voices=variant` and `flite -lv` on Debian 12.
SPLIT_VOICES = {
    "train": [
        ("espeak-ng", "en-us"), ("espeak-ng", "en-us+m3"), ("espeak-ng", "en-us+f2"), ("espeak-ng", "en-gb+m4"),
        ("espeak-ng", "en-gb-x-rp+f4"), ("espeak-ng", "en-029+m7"), ("espeak-ng", "en-gb-x-gbcwmd+m1"),
        ("espeak-ng", "en-us+f1"), ("flite", "kal"), ("flite", "kal16"), ("flite", "awb"),
    ],
    "dev": [("espeak-ng", "en-gb-x-gbclan+m2"), ("espeak-ng", "en-029+f3"), ("flite", "rms")],
    "test": [("espeak-ng", "en-gb-scotland+f5"), ("espeak-ng", "en-us-nyc+m5"), ("flite", "slt")],
}
FEMALE_FLITE = {"slt"}


@dataclass
class DemoConfig:
    out: Path
    size: str = "default"
    num_train_utts: int | None = None
    num_dev_utts: int | None = None
    num_test_utts: int | None = None
    num_text_sentences: int | None = None
    min_words: int = 5
    max_words: int = 15
    seed: int = 1
    workers: int = 2
    # ENGINE:VOICE names that replace SPLIT_VOICES in every split (a same-voice corpus for diagnosis); None = the
    # held-out-voice demo.
    voices: list[str] | None = None

    def counts(self) -> tuple[int, int, int, int | None]:
        if self.size not in SIZES:
            raise ValueError(f"--size {self.size!r}: choose one of {', '.join(SIZES)}")
        train, dev, test, text = SIZES[self.size]
        return (
            train if self.num_train_utts is None else self.num_train_utts,
            dev if self.num_dev_utts is None else self.num_dev_utts,
            test if self.num_test_utts is None else self.num_test_utts,
            text if self.num_text_sentences is None else self.num_text_sentences,
        )


def parse_voices(names: Sequence[str]) -> list[tuple[str, str]]:
    """`ENGINE:VOICE` names (`espeak-ng:en-us`, `flite:awb`) -> (engine, voice) pairs; ValueError names a bad one,
    also one the engine does not have (both engines would otherwise speak their default voice without a word)."""
    pairs = []
    for name in names:
        engine, _, voice = name.partition(":")
        if engine not in ("espeak-ng", "flite") or not voice:
            raise ValueError(f"--voices {name!r}: write ENGINE:VOICE with ENGINE espeak-ng or flite")
        known = installed_voices(engine)
        base, _, variant = voice.partition("+") if engine == "espeak-ng" else (voice, "", "")
        if base not in known or (variant and variant not in installed_voices("espeak-ng variant")):
            listing = "`espeak-ng --voices`, variants `espeak-ng --voices=variant`" if engine == "espeak-ng" \
                else "`flite -lv`"
            raise ValueError(f"--voices {name!r}: {engine} has no voice {voice!r} (see {listing})")
        pairs.append((engine, voice))
    return pairs


@functools.cache
def installed_voices(engine: str) -> frozenset[str]:
    """Voice names the engine accepts: "espeak-ng" (languages, voice names and files), "espeak-ng variant" (what
    may follow `+`), or "flite"."""
    command = {"espeak-ng": ["espeak-ng", "--voices"], "espeak-ng variant": ["espeak-ng", "--voices=variant"],
               "flite": ["flite", "-lv"]}[engine]
    try:
        listing = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise RuntimeError(f"cannot list the voices of {command[0]} ({err}); is it installed (tools/setup.sh)?") \
            from err
    if engine == "flite":
        return frozenset(listing.partition(":")[2].split())
    names = set()
    for line in listing.splitlines()[1:]:  # columns: Pty Language Age/Gender VoiceName File [Other Languages]
        fields = line.split()
        if len(fields) >= 5:
            file = fields[4].removeprefix("!v/")
            names.update((fields[1], fields[3], file, file.rsplit("/", 1)[-1]))
    return frozenset(names)


def speaker_voices(seed: int, same_voices: Sequence[str] | None = None) -> dict[str, list[Voice]]:
    """The speakers of each split, with speed and pitch drawn from `seed` (stable per speaker name).

    `same_voices` (`ENGINE:VOICE` names) puts those voices in every split instead of SPLIT_VOICES."""
    voices: dict[str, list[Voice]] = {}
    split_names = SPLIT_VOICES
    if same_voices:
        pairs = parse_voices(same_voices)
        split_names = {split: pairs for split in SPLIT_VOICES}
    for split, names in split_names.items():
        voices[split] = []
        for engine, name in names:
            speaker = f"{'es' if engine == 'espeak-ng' else 'fl'}-{name.replace('+', '-')}"
            rng = random.Random(f"{seed}:{speaker}")  # str seeds hash with sha512: same on every run
            if engine == "espeak-ng":
                rate, pitch = rng.uniform(135, 195), rng.uniform(25, 75)
            else:
                low, high = (150, 210) if name in FEMALE_FLITE else (85, 135)
                rate, pitch = rng.uniform(0.85, 1.25), rng.uniform(low, high)
            voices[split].append(Voice(speaker, engine, name, round(rate, 2), round(pitch, 1)))
    return voices


_CLAUSE_END = re.compile(r"[.;:?!]+")


@functools.lru_cache(maxsize=4)
def kjv_sentences(min_words: int, max_words: int) -> tuple[str, ...]:
    """Distinct normalised KJV clauses of `min_words`..`max_words` words, in Bible order."""
    if shutil.which("bible") is None:
        raise RuntimeError("`bible` not found: install Debian's bible-kjv (apt-get install bible-kjv)")
    # -f turns pretty-printing off: one verse per line, `Ge1:1 In the beginning ...`.
    done = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], stdin=subprocess.DEVNULL, capture_output=True, check=True)
    seen: dict[str, None] = {}
    for line in done.stdout.decode("utf-8", errors="replace").splitlines():
        reference, _, text = line.partition(" ")
        for clause in _CLAUSE_END.split(text):
            sentence = normalize_sentence(clause)
            if min_words <= len(sentence.split()) <= max_words:
                seen.setdefault(sentence, None)
    return tuple(seen)


@dataclass
class _Job:
    utt_id: str
    split: str
    text: str
    path: str
    voice: Voice


def _synthesise_command(voice: Voice, text: str, wav_path: str) -> list[str]:
    if voice.engine == "espeak-ng":
        return ["espeak-ng", "-v", voice.voice, "-s", str(int(voice.rate)), "-p", str(int(voice.pitch)),
                "-w", wav_path, text]
    return ["flite", "-voice", voice.voice, "--setf", f"duration_stretch={voice.rate}",
            "--setf", f"int_f0_target_mean={voice.pitch}", "-t", text, "-o", wav_path]


def _synthesise(job: _Job) -> tuple[str, int, str | None]:
    """Synthesise one utterance to 16 kHz mono 16-bit wav. Returns (utt_id, num_samples, error or None).

    sox resamples (espeak-ng writes 22.05 kHz, flite kal 8 kHz) and sets the peak to -1 dBFS so every
    voice has the same level; using sox here keeps torch out of the worker processes (seconds to import).
    """
    path = Path(job.path)
    raw = path.with_name(path.stem + ".raw.wav")
    tmp = path.with_name(path.stem + ".tmp.wav")
    try:
        subprocess.run(_synthesise_command(job.voice, job.text, str(raw)), capture_output=True, check=True, timeout=60)
        # -R: sox dithers the 16-bit output with a fresh random seed unless told to repeat it, and then two
        # builds of the same corpus differ in every file.
        subprocess.run(["sox", "-R", str(raw), "-b", "16", "-c", "1", str(tmp), "rate", str(SAMPLE_RATE), "gain", "-n",
                        "-1"], capture_output=True, check=True, timeout=60)
        info = audio_info(tmp)
        if info.sample_rate != SAMPLE_RATE or info.channels != 1:
            return job.utt_id, 0, f"{tmp}: sox wrote {info.sample_rate} Hz, {info.channels} channels"
        tmp.replace(path)
        return job.utt_id, info.num_samples, None
    except subprocess.CalledProcessError as err:
        return job.utt_id, 0, (f"{job.utt_id} ({job.voice.engine} {job.voice.voice}): {err} "
                               f"{err.stderr.decode(errors='replace')[-300:]}")
    except (subprocess.SubprocessError, OSError, AudioError) as err:
        return job.utt_id, 0, f"{job.utt_id} ({job.voice.engine} {job.voice.voice}): {err}"
    finally:
        raw.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def _existing_samples(path: Path) -> int | None:
    """Samples of an already synthesised file, None if missing or unusable (then it is redone)."""
    if not path.is_file():
        return None
    try:
        info = audio_info(path)
    except AudioError:
        return None
    return info.num_samples if info.sample_rate == SAMPLE_RATE and info.channels == 1 else None


def prepare_demo(config: DemoConfig) -> dict[str, list[Utterance]]:
    """Build the demo corpus under `config.out`; returns the manifests written, by split."""
    for tool, package in (("espeak-ng", "espeak-ng"), ("flite", "flite"), ("sox", "sox")):
        if shutil.which(tool) is None:
            raise RuntimeError(f"`{tool}` not found: install Debian's {package} (apt-get install {package})")
    out = Path(config.out).resolve()
    num_train, num_dev, num_test, num_text = config.counts()
    wanted = {"train": num_train, "dev": num_dev, "test": num_test}
    sentences = list(kjv_sentences(config.min_words, config.max_words))
    random.Random(config.seed).shuffle(sentences)
    spoken_total = sum(wanted.values())
    if spoken_total + 10 > len(sentences):
        raise ValueError(f"{spoken_total} spoken sentences asked for, only {len(sentences)} KJV sentences fit")

    # Spoken sentences need reference phones; a sentence without a pronunciation is reported and replaced.
    pronouncer = Pronouncer()
    pronouncer.add_words(w for s in sentences[: spoken_total * 2] for w in s.split())
    voices = speaker_voices(config.seed, config.voices)
    jobs: list[_Job] = []
    phones_of: dict[str, str] = {}
    cursor = 0
    for split, count in wanted.items():
        (out / "wav" / split).mkdir(parents=True, exist_ok=True)
        split_voices = voices[split]
        taken = 0
        while taken < count:
            sentence = sentences[cursor]
            cursor += 1
            prons = pronouncer.sentence_prons(sentence)
            if prons is None:
                print(f"[demo] no pronunciation for a word of {sentence!r}; sentence not spoken", file=sys.stderr)
                continue
            voice = split_voices[taken % len(split_voices)]
            utt_id = f"{voice.speaker}-{split}{taken:05d}"
            phones_of[utt_id] = " ".join(p for pron in prons for p in pron)
            jobs.append(_Job(utt_id, split, sentence, str(out / "wav" / split / f"{utt_id}.wav"), voice))
            taken += 1
    text_sentences = sentences[cursor:] if num_text is None else sentences[cursor : cursor + num_text]
    (out / "text_corpus.txt").write_text("".join(s + "\n" for s in text_sentences), encoding="utf-8")

    samples: dict[str, int] = {}
    todo = []
    for job in jobs:
        existing = _existing_samples(Path(job.path))
        if existing is None:
            todo.append(job)
        else:
            samples[job.utt_id] = existing
    print(f"[demo] {len(jobs)} utterances ({len(jobs) - len(todo)} already on disk), "
          f"{len(text_sentences)} text corpus sentences; synthesising with {config.workers} workers")
    failures = []
    start = time.time()
    if todo:
        with Pool(config.workers) as pool:
            for utt_id, num_samples, error in tqdm(
                pool.imap_unordered(_synthesise, todo, chunksize=4), total=len(todo), desc="synthesise", unit=" utt"
            ):
                if error:
                    failures.append(error)
                else:
                    samples[utt_id] = num_samples
    print(f"[demo] synthesis: {len(todo) - len(failures)} files in {time.time() - start:.1f} s, {len(failures)} failed")
    for failure in failures:
        print(f"[demo] skipped: {failure}", file=sys.stderr)

    manifests: dict[str, list[Utterance]] = {}
    for split in wanted:
        manifests[split] = [
            Utterance(utt_id=j.utt_id, audio=j.path, num_samples=samples[j.utt_id], sample_rate=SAMPLE_RATE,
                      speaker=j.voice.speaker, words=j.text, phones=phones_of[j.utt_id])
            for j in jobs if j.split == split and j.utt_id in samples
        ]
        write_manifest(out / f"{split}.jsonl", manifests[split])
    (out / "speakers.json").write_text(
        json.dumps({split: [asdict(v) for v in vs] for split, vs in voices.items()}, indent=1), encoding="utf-8"
    )
    hours = sum(u.duration for us in manifests.values() for u in us) / 3600
    print(f"[demo] wrote {', '.join(f'{s}: {len(u)}' for s, u in manifests.items())} utterances "
          f"({hours * 60:.1f} min of audio) and {out / 'text_corpus.txt'}")
    return manifests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.demo", description="Build the TTS demo corpus.")
    parser.add_argument("--out", required=True, type=Path, help="output folder (the recipe's data/)")
    parser.add_argument("--size", default="default", choices=list(SIZES),
                        help="tiny (tests, seconds), small, default (the 15-minute demo)")
    parser.add_argument("--num-train-utts", type=int)
    parser.add_argument("--num-dev-utts", type=int)
    parser.add_argument("--num-test-utts", type=int)
    parser.add_argument("--num-text-sentences", type=int, help="text corpus size (default: size preset)")
    parser.add_argument("--min-words", type=int, default=5)
    parser.add_argument("--max-words", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="parallel synthesis processes")
    parser.add_argument("--voices", nargs="+", metavar="ENGINE:VOICE",
                        help="speak every split with these voices (e.g. espeak-ng:en-us): a same-voice corpus for "
                             "diagnosis, whose dev and test voices are heard in training")
    args = parser.parse_args(argv)
    config = DemoConfig(**vars(args))
    print("[demo] config: " + json.dumps(asdict(config), default=str))
    try:
        prepare_demo(config)
    except (RuntimeError, ValueError) as err:
        print(f"[demo] error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
