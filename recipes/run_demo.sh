#!/usr/bin/env bash
# The demo recipe, end to end on the embedded TTS corpus (no downloads):
#   bash recipes/run_demo.sh [--size tiny|small|default] [--train-utts N] [--voices "ENGINE:VOICE ..."] [--stage N]
#       [--stop-stage M] [--exp DIR] [--features encoder|mfcc] [--encoder-checkpoint PATH] [--layer N]
# Stages (each runs once; a rerun skips finished stages and says so):
#   0 set-up (Debian packages, .venv, KenLM)      1 build the demo corpus (espeak-ng + flite voices)
#   2 text side: lexicon, phonemised text, LMs    3 frames (encoder layer or MFCC) of train, dev, test
#   4 fit the segmenter (k-means) on train frames 5 segments (the GAN input) of every split, segments per phone
#   6 supervised topline (CTC)                    7 GAN sweep, label-free selection
#   8 model bundle                                9 decoder tuned on unlabelled dev audio
#   10 decode and score dev/test                  11 self-training                 12 RESULTS.md + pictures
#   13 unit quality of MFCC and of the encoder layer (all: every layer) on train and test voices, RESULTS again
#   14 the label-free chain: encoder phones -> words -> rounds of a fine-tuned encoder, scored; RESULTS again
# Folders (docs/DESIGN.md): $exp/data, $exp/text, $exp/feats/<encoder|mfcc>/{train,dev,test}, .../transform,
# .../segments/{train,dev,test} (each with segment_stats.json); $exp/unit_quality/; $exp/commands.sh, timings.tsv,
# logs/.
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
nj=1              # worker processes for feature extraction (one is plenty for the demo's minutes of audio)
# Front-end: "encoder" is the cross-lingual phone encoder shipped in the package, trained with CTC on espeak-ng
# speech of eight other languages and never on English (asr_gan.features.encoder; README, "The phone encoder");
# "mfcc" is 13 cepstra + deltas. The encoder's units are more phone-like on the demo's held-out test voices (PNMI
# 0.42 against 0.33 at 100 clusters, layer 4; stage 13 measures it, README "The phone encoder").
features=encoder
encoder_checkpoint=""  # encoder: a checkpoint of `python -m asr_gan.features.encoder train`; empty: the shipped one
layer=auto             # encoder: the layer read (auto: the shipped default, asr_gan.features.encoder.checkpoint)
unit_quality=true      # stage 13: PNMI and a linear probe of MFCC and of the layer read (all: every layer; false: skip)
# stage 14: rounds of the fine-tuned encoder after its first pass (auto: 2; tiny: 1, to run the path). With round 0
# mixed in (refine_anchor) the rounds lowered the label-free score and the test PER on 3 of 3 seeds, and raised the
# WER (the decoder tuned on the student's output takes a lower LM weight): docs/cross_lingual_chain.md.
refine_rounds=auto
refine_epochs=auto     # stage 14: epochs of each round's fine-tuning (auto: 8; tiny 2)
# stage 14: weight of round 0's log-probs mixed into each round's student (0: the student alone); at 0.5 the rounds
# lowered the test PER where the student alone raised it (docs/cross_lingual_chain.md)
refine_anchor=0.5
# Segmenter for 39-dim MFCC: no PCA (39 dims are already small and nearly decorrelated; PCA would only
# rotate them), 16 k-means clusters, pair pooling. Measured on the default demo corpus (segment_stats):
# 1.63 segments per reference phone on train (per utterance p10 1.45, min 1.21), 1.90 dev, 1.58 test.
# The phonemised text holds 1.13 tokens per phone (<SIL> at the edges and between 25% of words), so every
# utterance keeps room for its phones and silences; 8 clusters leave 4% of train utterances with fewer
# segments than phones, 32 clusters give 1.9 and 64 give 2.1 (more merging for the generator to learn).
# Encoder frames (layer 4, 192 dims, 50 frames/s): 64 clusters, pooled, give the same 1.63 (p10 1.45); 32 give
# 1.48, 128 give 1.78.
pca_dim=auto   # auto: 0 for both front-ends
clusters=auto  # auto: mfcc 16, encoder 64 (both give 1.63 segments per reference phone on the demo, pooled)
pool=true
# GAN sweep: the wav2vec-U baseline with `seeds`; runs go `parallel` at a time. "auto" values follow --size
# (tiny: a smoke run of the whole pipeline). No grid: on the encoder's segments the audio cycle raised dev PER
# on 3 of 3 seeds (docs/cross_lingual_chain.md), label-free selection still picked it (lower LM perplexity),
# and it trains 3x slower; `--grid loss.cycle_audio=0,1` puts it back beside the baseline.
gan_conf=recipes/conf/gan_demo_cpu.yaml
seeds=auto
grid=""
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
recipe_options="stage stop_stage size train_utts exp seed nj features encoder_checkpoint layer unit_quality"
recipe_options+=" refine_rounds refine_epochs refine_anchor"
recipe_options+=" pca_dim clusters pool gan_conf seeds grid settings"
recipe_options+=" parallel gan_updates topline_epochs self_train_rounds self_train_epochs self_train_hidden self_train_layers"
recipe_options+=" text_silences voices"
parse_options "$@"
case "$text_silences" in fixed|audio) ;; *) die "--text-silences $text_silences: expected fixed or audio" ;; esac
if [ "$size" = tiny ]; then auto_values=(1 200 5 3 3 1 2); else auto_values=("1 2" 2000 150 6 30 2 8); fi
[ "$seeds" != auto ] || seeds=${auto_values[0]}
[ "$gan_updates" != auto ] || gan_updates=${auto_values[1]}
[ "$topline_epochs" != auto ] || topline_epochs=${auto_values[2]}
[ "$self_train_epochs" != auto ] || self_train_epochs=${auto_values[3]}
quality_epochs=${auto_values[4]}  # stage 13's labelling topline
[ "$refine_rounds" != auto ] || refine_rounds=${auto_values[5]}
[ "$refine_epochs" != auto ] || refine_epochs=${auto_values[6]}
py=.venv/bin/python
splits="train dev test"
case "$features" in
  mfcc|encoder) ;;
  *) die "--features $features: expected encoder or mfcc" ;;
esac
[ -z "$encoder_checkpoint" ] || [ -f "$encoder_checkpoint" ] ||
  die "--encoder-checkpoint $encoder_checkpoint: no such file"
case "$unit_quality" in true|all|false) ;; *) die "--unit-quality $unit_quality: expected true, all or false" ;; esac
[[ "$refine_rounds$refine_epochs" =~ ^[0-9]+$ ]] ||
  die "--refine-rounds $refine_rounds --refine-epochs $refine_epochs: expected whole numbers"
[[ "$refine_anchor" =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] || die "--refine-anchor $refine_anchor: expected a number from 0 to 1"
[ "$pca_dim" != auto ] || pca_dim=0
[ "$clusters" != auto ] || clusters=$([ "$features" = encoder ] && echo 64 || echo 16)
encoder_flags=(--frontend encoder)
[ -z "$encoder_checkpoint" ] || encoder_flags+=(--encoder-checkpoint "$encoder_checkpoint")
[ "$layer" = auto ] || encoder_flags+=(--layer "$layer")
feats=$exp/feats/$features
print_settings

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
# encoder: one layer of the phone encoder at 50 frames/s, each utterance mean/variance normalised too.
extract_mfcc() {  # extract_mfcc FOLDER SPLIT...
  local out=$1 split
  for split in "${@:2}"; do
    stage_cmd $py -m asr_gan.features extract --manifest "$exp/data/$split.jsonl" --out "$out/$split" \
      --frontend mfcc --num-ceps 13 --cmvn utterance --num-workers "$nj"
  done
}
extract_frames() {
  local split
  for split in $splits; do
    # `extract` keeps a finished feature folder (and resumes an unfinished one); a redone stage starts afresh.
    [ -z "$stage_outputs_stale" ] || stage_cmd rm -rf "$feats/$split"
    if [ "$features" = encoder ]; then
      stage_cmd $py -m asr_gan.features extract --manifest "$exp/data/$split.jsonl" --out "$feats/$split" \
        "${encoder_flags[@]}" --cmvn utterance --num-workers "$nj"
    else
      extract_mfcc "$feats" "$split"
    fi
  done
}
frames_desc="MFCC frames (13 + deltas, utterance CMVN)"
[ "$features" = mfcc ] || frames_desc="phone encoder frames (${encoder_checkpoint:-shipped}, layer $layer, utterance CMVN)"
run_stage 3 "$frames_desc of $splits into $feats" extract_frames

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

# Stage 13: how phone-like the units of each front-end are, on the training voices and the held-out test voices.
# The labels are a supervised topline's alignment of unpooled MFCC k-means runs (docs/gan_investigation.md, "How
# phone-like the demo's units are"), the same for every front-end; their errors lower every row alike. They are
# read only to measure: nothing label-free ever sees them.
measure_unit_quality() {
  local q=$exp/unit_quality mfcc=$exp/feats/mfcc split n fronts=()
  extract_mfcc "$mfcc" train dev test
  stage_cmd $py -m asr_gan.features fit-transform --features "$mfcc/train" --out "$q/transform_nopool" --pca-dim 0 \
    --clusters 16 --no-pool --seed "$seed" --device cpu
  for split in train dev test; do
    stage_cmd $py -m asr_gan.features segment --transform "$q/transform_nopool" --features "$mfcc/$split" \
      --out "$q/segments_nopool/$split"
  done
  { printf 'features: %s\ntext: %s\nphones: %s\nphone_lm: %s\nvalid_features: %s\nvalid_labels: %s\n' \
      "$q/segments_nopool/train" "$text/train_text.phn" "$text/phones.txt" "$text/phone_lm.bin" \
      "$q/segments_nopool/dev" "$text/dev.phn"; cat recipes/conf/gan_demo_cpu.yaml; } > "$q/topline.yaml"
  stage_cmd $py -m asr_gan.train.ctc --model generator --gan-config "$q/topline.yaml" \
    --features "$q/segments_nopool/train" --labels "$text/train.phn" --phones "$text/phones.txt" \
    --valid-features "$q/segments_nopool/dev" --valid-labels "$text/dev.phn" --upsample 2 \
    --epochs "$quality_epochs" --batch-frames 1500 --out "$q/topline"
  for split in train test; do
    stage_cmd $py -m asr_gan.scoring.reference_rows --checkpoint "$q/topline/checkpoint_best.pt" \
      --features "$q/segments_nopool/$split" --labels "$text/$split.phn" --out "$q/rows/$split" \
      --no-progress
  done
  fronts=(--frontend "mfcc:-:$mfcc/train:$mfcc/test")
  # The layer read (--layer, or the checkpoint's default), or with --unit-quality all every layer.
  local layers
  if [ "$unit_quality" = all ]; then
    layers=$($py -m asr_gan.features.encoder layers ${encoder_checkpoint:+"$encoder_checkpoint"})
  elif [ "$layer" != auto ]; then
    layers=$layer
  else
    layers=$($py -m asr_gan.features.encoder layers ${encoder_checkpoint:+"$encoder_checkpoint"} --default)
  fi
  for n in $layers; do
    for split in train test; do
      stage_cmd $py -m asr_gan.features extract --manifest "$exp/data/$split.jsonl" --out "$q/encoder/$n/$split" \
        --frontend encoder ${encoder_checkpoint:+--encoder-checkpoint "$encoder_checkpoint"} --layer "$n" \
        --cmvn utterance --num-workers "$nj"
    done
    fronts+=(--frontend "encoder:$n:$q/encoder/$n/train:$q/encoder/$n/test")
  done
  stage_cmd $py -m asr_gan.scoring.frontend_quality --out "$exp/unit_quality.json" "${fronts[@]}" \
    --train-labels "$q/rows/train.segments" --test-labels "$q/rows/test.segments" \
    --label-transform "$q/transform_nopool" --label-frames "$mfcc/train" "$mfcc/test" --clusters 50 100 200
  stage_results
}
if [ "$unit_quality" != false ]; then
  quality_desc="${encoder_checkpoint:-shipped}; labels: topline alignment, $quality_epochs epochs"
  run_stage 13 "unit quality of MFCC and $([ "$unit_quality" = all ] && echo "every encoder layer" || echo "the \
encoder layer") ($quality_desc), RESULTS.md again" \
    measure_unit_quality
fi

# Stage 14: the label-free chain (asr_gan.decode.refine): the encoder's own phones, mapped to the text's ARPAbet,
# decoded to words with the lexicon and word LM; then rounds of the encoder fine-tuned on the last round's words.
# Decoder settings, rounds and the final round are chosen without a transcription; the references only score.
label_free_chain() {
  local r=$exp/refine dir split
  stage_cmd $py -m asr_gan.decode.refine --data "$exp/data" --segments "$feats/segments" --text "$text" \
    --gan-config "$exp/gan.yaml" --references "$text" --rounds "$refine_rounds" --epochs "$refine_epochs" --seed "$seed" \
    --anchor "$refine_anchor" \
    ${encoder_checkpoint:+--encoder-checkpoint "$encoder_checkpoint"} --out "$r" --no-progress
  for dir in "$r"/round* "$r/final"; do
    for split in dev test; do
      stage_cmd $py -m asr_gan.scoring --ref "$text/$split.phn" --hyp "$dir/$split/hyp.phn" --unit phone \
        --remove-silence --out "$dir/score_${split}_phones"
      stage_cmd $py -m asr_gan.scoring --ref "$text/$split.wrd" --hyp "$dir/$split/hyp.wrd" --unit word \
        --out "$dir/score_${split}_words"
    done
  done
  stage_results
}
run_stage 14 "label-free chain: encoder phones -> words, $refine_rounds round(s) of the encoder fine-tuned on them, \
scored; RESULTS.md again" label_free_chain
