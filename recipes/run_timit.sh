#!/usr/bin/env bash
# TIMIT (LDC93S1), the wav2vec-U paper's phone recognition benchmark:
#   bash recipes/run_timit.sh --timit /data/TIMIT [--setting matched|unmatched] [--features mfcc|ssl|encoder]
#       [--ssl-checkpoint /models/wav2vec_vox_new.pt --layer 14] [--ngpu N] [--exp DIR] [--stage N] [--stop-stage M]
# Stages (each runs once; a rerun skips finished stages and says so):
#   0 set-up (Debian packages, .venv, KenLM)
#   1 prepare: standard train/dev/core-test manifests, 61 -> 39 phones, the unpaired phone text (matched or
#     unmatched: see data_prep/timit.py)
#   2 text side in phone mode: phones.txt (silence `sil`), phone LM, reference phones per split
#   3 frames of train, dev, test: 39-dim MFCC (utterance CMVN), or one layer of a local SSL checkpoint
#     (fairseq .pt or Hugging Face folder), on --ngpu GPUs (0: CPU)
#   4 fit the segmenter (PCA, k-means) on train frames    5 segments (the GAN input) of every split, segments per phone
#   6 supervised topline (CTC)  7 GAN sweep, label-free selection  8 model bundle  9 decoder tuned on unlabelled
#   dev audio  10 decode and score  11 self-training  12 RESULTS.md + pictures (recipes/gan_stages.sh)
# Folders: $exp/data, $exp/text, $exp/feats/<mfcc|ssl>/{train,dev,test}, .../transform, .../segments/{train,dev,test};
# $exp/commands.sh, timings.tsv, settings.txt, logs/. Default exp: exp/timit_<setting>.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source recipes/stages.sh

stage=0
stop_stage=100
timit=""             # the TIMIT folder holding TRAIN/ and TEST/ (or its parent)
setting=matched      # matched: text = the train transcripts, shuffled; unmatched: text from held-out sentences
text_fraction=0.25   # unmatched: share of the train utterances whose phones become the text side
features=mfcc        # mfcc | ssl | encoder (the shipped cross-lingual phone encoder)
ssl_checkpoint=""    # ssl: fairseq .pt file or Hugging Face model folder, on local disk
encoder_checkpoint=""  # encoder: a checkpoint of `python -m asr_gan.features.encoder train`; empty: the shipped one
# ssl: 0-based transformer block (auto: 14, wav2vec-U's 15 of wav2vec 2.0 LARGE's 24); encoder: its layer (auto: the
# checkpoint's default, asr_gan.features.encoder.checkpoint.ENCODER_LAYER)
layer=auto
ngpu=1               # ssl: GPUs to extract on (each takes every ngpu-th shard); 0: CPU
nj=4                 # worker processes for MFCC, audio reader threads for SSL
pca_dim=auto         # auto: mfcc 0 (no PCA), ssl 512 (wav2vec-U)
# auto: ssl 128 (wav2vec-U); mfcc 32: the 39-set references count every stop closure as `sil`, so phones are
# denser than in the demo (7.5 frames per phone on the synthetic TIMIT-layout fixture against 9.2 for the
# demo) and the 16 clusters of run_demo.sh gave 1.2 segments per phone there, 32 gave 1.4 (real TIMIT unmeasured);
# encoder 64 (run_demo.sh).
clusters=auto
pool=true            # mean-pool adjacent segments (wav2vec-U's _pooled)
seed=0
exp=""
# GAN stages (recipes/gan_stages.sh). Each `auto` follows --profile (gpu: wav2vec-U's scale; cpu: the demo's, so a
# TIMIT-sized corpus finishes on 2 cores; auto: gpu when nvidia-smi lists a GPU; apply_training_profile in
# recipes/stages.sh). The grid compares the wav2vec-U baseline with the audio cycle.
recipe_options="stage stop_stage timit setting text_fraction features ssl_checkpoint encoder_checkpoint layer ngpu nj pca_dim clusters pool seed exp"
declare_gan_options
parse_options "$@"
apply_training_profile

[ -n "$timit" ] || [ "$stage" -gt 1 ] || die "pass --timit /path/to/TIMIT (the folder holding TRAIN/ and TEST/)"
case "$setting" in matched|unmatched) ;; *) die "--setting $setting: expected matched or unmatched" ;; esac
case "$features" in
  mfcc) ;;
  ssl) [ "$stage" -gt 3 ] || { [ -n "$ssl_checkpoint" ] && [ -e "$ssl_checkpoint" ]; } ||
         die "--features ssl needs --ssl-checkpoint PATH of a local fairseq .pt or Hugging Face folder (got '$ssl_checkpoint')" ;;
  encoder) [ -z "$encoder_checkpoint" ] || [ -f "$encoder_checkpoint" ] ||
         die "--encoder-checkpoint $encoder_checkpoint: no such file" ;;
  *) die "--features $features: expected mfcc, ssl or encoder" ;;
esac
[ "$pca_dim" != auto ] || pca_dim=$([ "$features" = ssl ] && echo 512 || echo 0)
[ "$layer" != auto ] || [ "$features" != ssl ] || layer=14
[ "$clusters" != auto ] || clusters=$(case "$features" in ssl) echo 128 ;; encoder) echo 64 ;; *) echo 32 ;; esac)
[ -n "$exp" ] || exp=exp/timit_$setting
print_settings
py=.venv/bin/python
splits="train dev test"
feats=$exp/feats/$features

run_stage 0 "set-up" bash tools/setup.sh
run_stage 1 "prepare TIMIT ($setting text side) from $timit" \
  $py -m data_prep.timit --timit "$timit" --out "$exp/data" --setting "$setting" --text-fraction "$text_fraction" \
    --seed "$seed"
run_stage 2 "text side in phone mode: phones, phone LM, reference phones" \
  $py -m asr_gan.text --phone-text "$exp/data/train_text.phn" \
    --manifests "$exp/data/train.jsonl" "$exp/data/dev.jsonl" "$exp/data/test.jsonl" --out "$exp/text"

run_frame_stages train ""

# Stages 6-12 (recipes/gan_stages.sh): topline, GAN sweep, bundle, tuning, decoding + scoring (PER on the 39
# phones, silence removed), self-training, RESULTS. wav2vec-U's TIMIT setting has no word LM: phones only.
source recipes/gan_stages.sh
words=false
run_gan_stages 6
