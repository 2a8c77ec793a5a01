"""KenLM n-gram language models: build with `lmplz` + `build_binary`, query with the `kenlm` module.

Binaries are looked up in this order: `$ASR_GAN_KENLM_BIN`, `<repo>/.cache/kenlm/bin` (built by
`bash tools/build_kenlm.sh`), then `PATH`.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterable, Sequence

log = logging.getLogger(__name__)

REPO_KENLM_BIN = Path(__file__).resolve().parents[2] / ".cache/kenlm/bin"


class KenLMNotFound(RuntimeError):
    """lmplz / build_binary missing; the message says how to build them."""


def find_kenlm_binary(name: str) -> Path:
    """Path of KenLM's `name` (`lmplz` or `build_binary`); raises KenLMNotFound with the fix."""
    searched = []
    env_dir = os.environ.get("ASR_GAN_KENLM_BIN")
    for directory in ([Path(env_dir)] if env_dir else []) + [REPO_KENLM_BIN]:
        candidate = directory / name
        searched.append(str(directory))
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise KenLMNotFound(
        f"KenLM's {name} not found (looked in {', '.join(searched)} and PATH): run `bash tools/build_kenlm.sh`, "
        "or point ASR_GAN_KENLM_BIN at the folder holding lmplz and build_binary"
    )


def build_lm(
    text_path: str | Path,
    arpa_path: str | Path,
    order: int,
    bin_path: str | Path | None = None,
    memory: str = "10%",
    prune: Sequence[int] | None = None,
) -> None:
    """Estimate a modified Kneser-Ney ARPA LM on `text_path` (one sentence per line) and binarise it.

    `--discount_fallback` lets tiny corpora (demo, tests) through, where some count-of-counts are zero and
    lmplz would otherwise refuse. `memory` caps lmplz's sort buffer (its default takes 80% of RAM).
    Outputs are written to temporary names and renamed, so a crash leaves no half-written LM.
    """
    text_path, arpa_path = Path(text_path), Path(arpa_path)
    if not text_path.is_file() or text_path.stat().st_size == 0:
        raise ValueError(f"{text_path}: LM training text missing or empty")
    lmplz = find_kenlm_binary("lmplz")
    arpa_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_arpa = arpa_path.with_name(arpa_path.name + ".tmp")
    command = [str(lmplz), "-o", str(order), "--discount_fallback", "-S", memory, "-T", str(arpa_path.parent)]
    if prune:
        command += ["--prune", *map(str, prune)]
    with open(text_path, "rb") as stdin, open(tmp_arpa, "wb") as stdout:
        done = subprocess.run(command, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    if done.returncode != 0:
        tmp_arpa.unlink(missing_ok=True)
        tail = done.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"lmplz failed on {text_path} (order {order}):\n{tail}")
    tmp_arpa.replace(arpa_path)
    if bin_path is not None:
        bin_path = Path(bin_path)
        tmp_bin = bin_path.with_name(bin_path.name + ".tmp")
        done = subprocess.run(
            [str(find_kenlm_binary("build_binary")), str(arpa_path), str(tmp_bin)], capture_output=True
        )
        if done.returncode != 0:
            tmp_bin.unlink(missing_ok=True)
            raise RuntimeError(f"build_binary failed on {arpa_path}:\n{done.stderr.decode(errors='replace')[-2000:]}")
        tmp_bin.replace(bin_path)
    log.info("built %d-gram LM %s from %s", order, arpa_path, text_path)


class NgramLM:
    """A KenLM model (ARPA or binary) scoring space-separated token sequences.

    Sentence boundaries `<s>`/`</s>` are added by default, as lmplz trained with them.
    """

    def __init__(self, path: str | Path) -> None:
        import kenlm

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: LM not found (build it with `python -m asr_gan.text`)")
        self.path = path
        self._model = kenlm.Model(str(path))
        self.order: int = self._model.order

    def score(self, tokens: Sequence[str], bos: bool = True, eos: bool = True) -> float:
        """log10 probability of `tokens` (including `</s>` when `eos`)."""
        return self._model.score(" ".join(tokens), bos=bos, eos=eos)

    def __contains__(self, token: str) -> bool:
        return token in self._model

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """Perplexity over all sentences: 10 ** (-total log10 prob / (tokens + one `</s>` each))."""
        total, count = 0.0, 0
        for tokens in sentences:
            total += self.score(tokens)
            count += len(tokens) + 1
        if count == 0:
            return math.nan
        return 10.0 ** (-total / count)
