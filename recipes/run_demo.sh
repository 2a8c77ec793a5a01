#!/usr/bin/env bash
# The demo recipe, end to end on the embedded TTS corpus (no downloads):
#   bash recipes/run_demo.sh [--size tiny|small|default] [--stage N] [--stop-stage M] [--exp DIR]
# Stages (each runs once; a rerun skips finished stages and says so):
#   0 set-up (Debian packages, .venv, KenLM)      1 build the demo corpus (espeak-ng + flite voices)
#   2 text side: lexicon, phonemised text, LMs
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source recipes/stages.sh

stage=0
stop_stage=100
size=default
exp=exp/demo
seed=1
recipe_options="stage stop_stage size exp seed"
parse_options "$@"
print_settings
py=.venv/bin/python

run_stage 0 "set-up" bash tools/setup.sh
run_stage 1 "build the TTS demo corpus ($size)" \
  $py -m data_prep.demo --out "$exp/data" --size "$size" --seed "$seed"
run_stage 2 "text side: lexicon, phonemised text, phone and word LMs" \
  $py -m asr_gan.text --corpus-text "$exp/data/text_corpus.txt" \
    --manifests "$exp/data/train.jsonl" "$exp/data/dev.jsonl" "$exp/data/test.jsonl" --out "$exp/text"
