#!/usr/bin/env bash
# LibriSpeech (OpenSLR 12) with the LibriSpeech LM text as the unpaired text, wav2vec-U's word-level setting:
#   bash recipes/run_librispeech.sh --librispeech /data/LibriSpeech --lm-text /data/librispeech-lm-norm.txt.gz
#       [--subset train-clean-100] [--dev-subset dev-clean] [--test-subset "test-clean test-other"]
#       [--features mfcc|ssl|encoder --ssl-checkpoint PATH --layer 14 --ngpu N] [--exp DIR] [--stage N] [--stop-stage M]
# Stages (each runs once; a rerun skips finished stages and says so):
#   0 set-up (Debian packages, .venv, KenLM)
#   1 prepare: one manifest per subset, the LM text normalised into the text corpus
#   2 text side in word mode: lexicon (CMUdict + espeak-ng G2P), phonemised text, phone and word LMs,
#     reference phones and words per subset
#   3 frames of every subset with silence removed (energy VAD): 39-dim MFCC (utterance CMVN) or one layer of a
#     local SSL checkpoint, on --ngpu GPUs (0: CPU)
#   4 fit the segmenter (PCA, k-means) on the training subset's frames
#   5 segments (the GAN input) of every subset, segments per phone
#   6 supervised topline (CTC)  7 GAN sweep, label-free selection  8 model bundle  9 decoder tuned on unlabelled
#   dev audio  10 decode and score  11 self-training  12 RESULTS.md + pictures (recipes/gan_stages.sh)
# Folders: $exp/data/<subset>.jsonl, $exp/text, $exp/feats/<mfcc|ssl>/<subset>, .../transform, .../segments/<subset>;
# $exp/commands.sh, timings.tsv, settings.txt, logs/. Subsets keep LibriSpeech's names (train-clean-100, dev-clean, ...).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source recipes/stages.sh

stage=0
stop_stage=100
librispeech=""             # the LibriSpeech folder holding the subset folders (or its parent)
subset=train-clean-100     # training audio
dev_subset=dev-clean
test_subset=test-clean     # one or more, space-separated
lm_text=""                 # librispeech-lm-norm.txt[.gz] or any text, one sentence per line
max_lm_sentences=0         # 0: the whole LM text (about 40 M sentences)
# fairseq wav2vec-U's prepare_text.sh drops phones seen fewer than 1000 times in the phonemised text.
min_phone_count=1000
text_silences=fixed        # fixed: wav2vec-U's <SIL> (both edges, 25% of word gaps); audio: match the training audio
features=mfcc              # mfcc | ssl | encoder (the shipped cross-lingual phone encoder)
ssl_checkpoint=""          # ssl: fairseq .pt file or Hugging Face model folder, on local disk
encoder_checkpoint=""  # encoder: a checkpoint of `python -m asr_gan.features.encoder train`; empty: the shipped one
# ssl: 0-based transformer block (auto: 14, wav2vec-U's 15 of wav2vec 2.0 LARGE's 24); encoder: its layer (auto: the
# checkpoint's default, asr_gan.features.encoder.checkpoint.ENCODER_LAYER)
layer=auto
ngpu=1                     # ssl: GPUs to extract on (each takes every ngpu-th shard); 0: CPU
nj=4                       # worker processes for MFCC, audio reader threads for SSL
vad=true                   # remove silence before the frontend (wav2vec-U removes it with rVAD)
pca_dim=auto               # auto: mfcc 0 (no PCA), ssl 512 (wav2vec-U)
clusters=auto              # auto: mfcc 16 (measured on the demo corpus, see run_demo.sh), ssl 128 (wav2vec-U),
                           # encoder 64 (run_demo.sh)
pool=true                  # mean-pool adjacent segments (wav2vec-U's _pooled)
seed=1
exp=exp/librispeech
recipe_options="stage stop_stage librispeech subset dev_subset test_subset lm_text max_lm_sentences min_phone_count"
recipe_options+=" text_silences"
# GAN stages (recipes/gan_stages.sh). Each `auto` follows --profile (gpu: wav2vec-U's scale; cpu: the demo's, so a
# TIMIT-sized corpus finishes on 2 cores; auto: gpu when nvidia-smi lists a GPU; apply_training_profile in
# recipes/stages.sh). The grid compares the wav2vec-U baseline with the audio cycle.
recipe_options+=" features ssl_checkpoint encoder_checkpoint layer ngpu nj vad pca_dim clusters pool seed exp"
declare_gan_options
parse_options "$@"
apply_training_profile

if [ "$stage" -le 1 ]; then
  [ -n "$librispeech" ] || die "pass --librispeech /path/to/LibriSpeech (the folder holding $subset/)"
  [ -n "$lm_text" ] && [ -f "$lm_text" ] ||
    die "pass --lm-text PATH of the unpaired text (librispeech-lm-norm.txt.gz from OpenSLR 11); got '$lm_text'"
fi
case "$features" in
  mfcc) ;;
  ssl) [ "$stage" -gt 3 ] || { [ -n "$ssl_checkpoint" ] && [ -e "$ssl_checkpoint" ]; } ||
         die "--features ssl needs --ssl-checkpoint PATH of a local fairseq .pt or Hugging Face folder (got '$ssl_checkpoint')" ;;
  encoder) [ -z "$encoder_checkpoint" ] || [ -f "$encoder_checkpoint" ] ||
         die "--encoder-checkpoint $encoder_checkpoint: no such file" ;;
  *) die "--features $features: expected mfcc, ssl or encoder" ;;
esac
case "$vad" in true|false) ;; *) die "--vad $vad: expected true or false" ;; esac
case "$text_silences" in fixed|audio) ;; *) die "--text-silences $text_silences: expected fixed or audio" ;; esac
vad_flag=(); [ "$vad" = false ] || vad_flag=(--vad)
[ "$pca_dim" != auto ] || pca_dim=$([ "$features" = ssl ] && echo 512 || echo 0)
[ "$layer" != auto ] || [ "$features" != ssl ] || layer=14
[ "$clusters" != auto ] || clusters=$(case "$features" in ssl) echo 128 ;; encoder) echo 64 ;; *) echo 16 ;; esac)
print_settings
py=.venv/bin/python
splits="$subset $dev_subset $test_subset"
feats=$exp/feats/$features

prepare() {
  local s subset_flags=()
  for s in $splits; do subset_flags+=(--subset "$s"); done
  stage_cmd $py -m data_prep.librispeech --root "$librispeech" "${subset_flags[@]}" --out "$exp/data" \
    --lm-text "$lm_text" $([ "$max_lm_sentences" -gt 0 ] && echo --max-lm-sentences "$max_lm_sentences")
}
run_stage 0 "set-up" bash tools/setup.sh
run_stage 1 "prepare LibriSpeech $splits from $librispeech, LM text $lm_text (max $max_lm_sentences sentences, 0 = all)" \
  prepare

text_side() {
  local s manifests=() silences=()
  for s in $splits; do manifests+=("$exp/data/$s.jsonl"); done
  if [ "$text_silences" = audio ]; then  # measured on the audio the frontend reads (after the VAD, if on)
    stage_cmd $py -m asr_gan.features.silence_stats --manifest "$exp/data/$subset.jsonl" "${vad_flag[@]}" \
      --out "$exp/text/audio_silences.json" --no-progress
    silences=(--silence-stats "$exp/text/audio_silences.json")
  fi
  stage_cmd $py -m asr_gan.text --corpus-text "$exp/data/text_corpus.txt" --manifests "${manifests[@]}" \
    --out "$exp/text" --min-phone-count "$min_phone_count" --seed "$seed" "${silences[@]}"
}
text_desc="text side in word mode: lexicon, phonemised text, phone and word LMs (phones seen >= $min_phone_count times)"
[ "$text_silences" = fixed ] || text_desc+=", silences as in the training audio"
run_stage 2 "$text_desc" text_side

run_frame_stages "$subset" " (VAD $vad)" "${vad_flag[@]}"

# Stages 6-12 (recipes/gan_stages.sh): topline, GAN sweep, bundle, tuning, decoding to words + scoring (PER
# and WER), self-training, RESULTS. Splits keep their LibriSpeech subset names.
source recipes/gan_stages.sh
words=true
train_split=$subset
dev_split=$dev_subset
test_splits=$test_subset
run_gan_stages 6
