#!/usr/bin/env bash
# The demo recipe, end to end on the embedded TTS corpus (no downloads):
#   bash recipes/run_demo.sh [--size tiny|small|default] [--train-utts N] [--voices "ENGINE:VOICE ..."] [--stage N]
#       [--stop-stage M] [--exp DIR]
# Stages (each runs once; a rerun skips finished stages and says so):
#   0 set-up (Debian packages, .venv, KenLM)      1 build the demo corpus (espeak-ng + flite voices)
#   2 text side: lexicon, phonemised text, LMs    3 MFCC frames of train, dev, test
#   4 fit the segmenter (k-means) on train frames 5 segments (the GAN input) of every split, segments per phone
#   6 supervised topline (CTC)                    7 GAN sweep, label-free selection
#   8 model bundle                                9 decoder tuned on unlabelled dev audio
#   10 decode and score dev/test                  11 self-training                 12 RESULTS.md + pictures
# Folders (docs/DESIGN.md): $exp/data, $exp/text, $exp/feats/mfcc/{train,dev,test}, $exp/feats/mfcc/transform,
# $exp/feats/mfcc/segments/{train,dev,test} (each with segment_stats.json); $exp/commands.sh, timings.tsv, logs/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source recipes/stages.sh

stage=0
stop_stage=100
size=default
train_utts=auto   # training utterances of the corpus (auto: the --size preset, 600 for default)
exp=exp/demo
seed=1
# TTS voices of the corpus (ENGINE:VOICE ..., e.g. "espeak-ng:en-us"); empty: the demo's 12 voices, whose
# dev and test voices training never hears. With --voices every split is spoken by the voices given, so
# dev and test voices are heard in training: a corpus for diagnosis (docs/gan_investigation.md, "One voice
# with many utterances").
voices=""
# Silence tokens of the phonemised text: "fixed" is wav2vec-U's (<SIL> at both edges, between 25% of words);
# "audio" measures the training audio (asr_gan.features.silence_stats) and matches it. The demo's espeak-ng
# voices start speaking at the first sample and rarely pause between words (docs/gan_investigation.md,
# "Silence in the text and in the audio"); the documented demo numbers were measured with "fixed".
text_silences=fixed
nj=1              # worker processes for MFCC extraction (one is plenty for the demo's minutes of audio)
# Segmenter for 39-dim MFCC: no PCA (39 dims are already small and nearly decorrelated; PCA would only
# rotate them), 16 k-means clusters, pair pooling. Measured on the default demo corpus (segment_stats):
# 1.63 segments per reference phone on train (per utterance p10 1.45, min 1.21), 1.90 dev, 1.58 test.
# The phonemised text holds 1.13 tokens per phone (<SIL> at the edges and between 25% of words), so every
# utterance keeps room for its phones and silences; 8 clusters leave 4% of train utterances with fewer
# segments than phones, 32 clusters give 1.9 and 64 give 2.1 (more merging for the generator to learn).
pca_dim=0
clusters=16
pool=true
# GAN sweep: the wav2vec-U baseline (cycle weight 0) against the audio cycle, each with `seeds`; runs go
# `parallel` at a time. "auto" values follow --size (tiny: a smoke run of the whole pipeline).
gan_conf=recipes/conf/gan_demo_cpu.yaml
seeds=auto
grid=loss.cycle_audio=0,1
settings=""          # named settings instead of the grid: "base: audio:loss.cycle_audio=1" (NAME:key=value,...)
parallel=2
gan_updates=auto
# The topline's epochs take under a second on the demo; at 25 it was still underfit (dev PER 52.5%, against
# 45.3% at its best epoch of 200), and a topline is only useful as a ceiling if it is trained to one.
topline_epochs=auto
self_train_rounds=1
self_train_epochs=auto
# A small student: a 2 x 256 BiLSTM took minutes per batch of 40k frames on one CPU core.
self_train_hidden=96
self_train_layers=1
decipher_clusters=0  # > 0: warm-start every GAN run from a decipherment of this many clusters (gan_stages.sh)
decipher_order=2     # 3: the decipherment follows the text's phone trigram
decipher_speakers=false  # true: decipher each voice's utterances on their own
recipe_options="stage stop_stage size train_utts exp seed nj pca_dim clusters pool gan_conf seeds grid settings"
recipe_options+=" parallel gan_updates topline_epochs self_train_rounds self_train_epochs self_train_hidden self_train_layers"
recipe_options+=" decipher_clusters decipher_order decipher_speakers text_silences voices"
parse_options "$@"
case "$text_silences" in fixed|audio) ;; *) die "--text-silences $text_silences: expected fixed or audio" ;; esac
if [ "$size" = tiny ]; then auto_values=(1 200 5 3); else auto_values=("1 2" 2000 150 6); fi
[ "$seeds" != auto ] || seeds=${auto_values[0]}
[ "$gan_updates" != auto ] || gan_updates=${auto_values[1]}
[ "$topline_epochs" != auto ] || topline_epochs=${auto_values[2]}
[ "$self_train_epochs" != auto ] || self_train_epochs=${auto_values[3]}
print_settings
py=.venv/bin/python
splits="train dev test"
feats=$exp/feats/mfcc

run_stage 0 "set-up" bash tools/setup.sh
corpus_size=(--size "$size") corpus_desc=$size
if [ "$train_utts" != auto ]; then
  corpus_size+=(--num-train-utts "$train_utts") corpus_desc+=", $train_utts training utterances"
fi
if [ -n "$voices" ]; then  # the stage's signature is unchanged without voices, so finished corpora stay done
  read -r -a voice_list <<< "$voices"
  corpus_size+=(--voices "${voice_list[@]}") corpus_desc+=", voices $voices"
fi
run_stage 1 "build the TTS demo corpus ($corpus_desc)" \
  $py -m data_prep.demo --out "$exp/data" "${corpus_size[@]}" --seed "$seed"
text_manifests=("$exp/data/train.jsonl" "$exp/data/dev.jsonl" "$exp/data/test.jsonl")
text_side_matched() {
  stage_cmd $py -m asr_gan.features.silence_stats --manifest "$exp/data/train.jsonl" \
    --out "$exp/text/audio_silences.json" --no-progress
  stage_cmd $py -m asr_gan.text --corpus-text "$exp/data/text_corpus.txt" --manifests "${text_manifests[@]}" \
    --out "$exp/text" --silence-stats "$exp/text/audio_silences.json"
}
if [ "$text_silences" = audio ]; then
  run_stage 2 "text side: lexicon, phonemised text with the training audio's silences, phone and word LMs" \
    text_side_matched
else  # the stage as it was before --text-silences, so finished experiments stay done
  run_stage 2 "text side: lexicon, phonemised text, phone and word LMs" \
    $py -m asr_gan.text --corpus-text "$exp/data/text_corpus.txt" --manifests "${text_manifests[@]}" --out "$exp/text"
fi

# MFCC: 13 cepstra + deltas + delta-deltas = 39 dims at 100 frames/s, each utterance mean/variance normalised
# (the demo voices differ in pitch and timbre; per-utterance CMVN removes the channel part of that).
extract_frames() {
  for split in $splits; do
    # `extract` keeps a finished feature folder (and resumes an unfinished one); a redone stage starts afresh.
    [ -z "$stage_outputs_stale" ] || stage_cmd rm -rf "$feats/$split"
    stage_cmd $py -m asr_gan.features extract --manifest "$exp/data/$split.jsonl" --out "$feats/$split" \
      --frontend mfcc --num-ceps 13 --cmvn utterance --num-workers "$nj"
  done
}
run_stage 3 "MFCC frames (13 + deltas, utterance CMVN) of $splits into $feats" extract_frames

# k-means on MFCC frames: runs of one cluster id become one segment, then adjacent pairs are pooled. MFCC
# frames at 100/s jump between clusters far more than wav2vec 2.0 frames at 50/s, so fewer clusters than
# wav2vec-U's 128 are needed for segments near phone size; `segment_stats` in stage 5 measures it.
pool_flag=$([ "$pool" = true ] && echo --pool || echo --no-pool)
run_stage 4 "fit the segmenter on $feats/train (PCA $pca_dim, $clusters clusters, pool $pool)" \
  $py -m asr_gan.features fit-transform --features "$feats/train" --out "$feats/transform" \
    --pca-dim "$pca_dim" --clusters "$clusters" "$pool_flag" --seed "$seed"

run_stage 5 "segments of $splits (transform of $feats, PCA $pca_dim, $clusters clusters, pool $pool), segments per phone" \
  segment_splits

# Stages 6-12 (recipes/gan_stages.sh): topline, GAN sweep, bundle, tuning, decoding + scoring, self-training,
# RESULTS. The demo decodes to words with the CMUdict/G2P lexicon and the word LM of the unpaired text.
source recipes/gan_stages.sh
words=true
run_gan_stages 6
