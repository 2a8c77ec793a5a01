#!/usr/bin/env bash
# One-command set-up: Debian packages, the .venv virtualenv with asr_gan, and KenLM's binaries.
# Every step checks first and skips what is already there, so a second run takes seconds.
#   bash tools/setup.sh            # everything
#   ASR_GAN_SKIP_APT=1 bash ...    # when the Debian packages are installed by other means
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { echo "[setup] $*"; }

# 1. Debian packages: TTS voices for the demo corpus, sox, NIST sclite, what KenLM's build needs, and the word
# lists of eight other languages that the phone encoder's training sentences come from (asr_gan.features.encoder).
apt_packages=(espeak-ng flite sox libsox-fmt-all sctk bible-kjv cmake g++ libboost-program-options-dev
  libboost-system-dev libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev libsndfile1
  wngerman wspanish wfrench witalian wdutch wportuguese wpolish wswedish)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && [ -z "${ASR_GAN_SKIP_APT:-}" ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# 2. Python environment. torch/torchaudio are pinned to builds that import together on this
# kind of machine (torchaudio 2.11's wheel links torch's CUDA libraries, so the CPU-only torch
# wheel cannot load it); a GPU user with another recent stack can `pip install -e .` instead.
TORCH_SPEC=${ASR_GAN_TORCH_SPEC:-"torch==2.14.1 torchaudio==2.11.0"}
stamp=.venv/.asr_gan_setup
want=$( (cat pyproject.toml; echo "$TORCH_SPEC") | sha1sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages into .venv (first run: several minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  # shellcheck disable=SC2086
  .venv/bin/python -m pip install -q $TORCH_SPEC
  .venv/bin/python -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
else
  log ".venv up to date"
fi

# 3. KenLM's lmplz and build_binary (the pip `kenlm` module only queries models).
bash tools/build_kenlm.sh
log "done"
