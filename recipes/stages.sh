# Shared stage machinery for the recipes (sourced, not run).
# Each stage runs once: on success it leaves $exp/.done/<N>, and a rerun skips it and says so.
# A done stage runs again when its description or command changed (the settings it shows differ), or when
# an earlier stage was redone after it (its inputs are newer), as make would; stage 0, the set-up in every
# recipe, makes no inputs and redoing it outdates nothing.
# Each stage logs to $exp/logs/stage<N>.log, its wall time goes to $exp/timings.tsv and the commands it
# ran go to $exp/commands.sh (shell-quoted, runnable from the repository root).

log() { echo "[$(date +%H:%M:%S)] $*"; }
die() { echo "error: $*" >&2; exit 2; }

# stage_cmd command...: run one command of a stage and append it to $exp/commands.sh.
# Recipe functions given to run_stage call their commands through it so the record stays exact.
stage_cmd() {
  { printf '%q' "$1"; [ $# -gt 1 ] && printf ' %q' "${@:2}"; printf '\n'; } >> "$exp/commands.sh"
  "$@"
}

# _stage_status N signature: 0 = done with this signature (an empty marker, left by older versions of
# this file, matches any) and no earlier stage redone after it; 1 = never finished; 2 = done but outdated.
_stage_status() {
  local marker=$exp/.done/$1 signature=$2 other m
  [ -f "$marker" ] || return 1
  if [ -s "$marker" ] && [ "$(cat "$marker")" != "$signature" ]; then
    log "Stage $1: settings changed since it was done (was: $(head -n 1 "$marker")); running it again"
    return 2
  fi
  for other in "$exp"/.done/*; do
    m=${other##*/}
    if [[ $m =~ ^[0-9]+$ ]] && [ "$m" -gt 0 ] && [ "$m" -lt "$1" ] && [ "$other" -nt "$marker" ]; then
      log "Stage $1: stage $m was redone after it; running it again"
      return 2
    fi
  done
  return 0
}

# run_stage N "description" command...   (the command runs only when stage <= N <= stop_stage)
# The command is a program or a recipe function; a function's commands go through stage_cmd. The command
# runs with `set -e` in a subshell, so a failing command inside a function fails the stage. It sees
# stage_outputs_stale=1 when the stage had finished before but is outdated, so that steps which keep
# finished outputs (resumable extraction) know to start over; after a failure it is empty (resume).
run_stage() {
  local n=$1 desc=$2; shift 2
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then
    return 0
  fi
  mkdir -p "$exp/.done" "$exp/logs"
  local signature status=0
  signature=$(printf '%s\n%s' "$desc" "$*")
  _stage_status "$n" "$signature" || status=$?
  if [ "$status" -eq 0 ]; then
    log "Stage $n: $desc: already done, skipping (rm $exp/.done/$n to redo)"
    return 0
  fi
  if [ ! -f "$exp/commands.sh" ]; then
    printf '#!/usr/bin/env bash\n# Commands run by the stages of %s, appended as each stage runs.\nset -euo pipefail\ncd %q\n' \
      "$exp" "$PWD" > "$exp/commands.sh"
  fi
  printf '\n# Stage %s: %s (%s)\n' "$n" "$desc" "$(date '+%Y-%m-%d %H:%M:%S')" >> "$exp/commands.sh"
  log "Stage $n: $desc (log: $exp/logs/stage$n.log)"
  local t0=$SECONDS rc=0 errexit=""
  [[ $- == *e* ]] && errexit=1
  set +e
  # In the condition of an `if` or beside `||` bash ignores `set -e` even inside functions, so the stage
  # body runs as a plain command in a subshell of its own with `set -e`, and its status is read after.
  (
    set -e
    stage_number=$n
    stage_outputs_stale=$([ "$status" -eq 2 ] && echo 1 || true)
    if declare -F "$1" > /dev/null; then "$@"; else stage_cmd "$@"; fi
  ) 2>&1 | tee "$exp/logs/stage$n.log"
  rc=${PIPESTATUS[0]}
  [ -n "$errexit" ] && set -e
  if [ "$rc" -ne 0 ]; then
    log "Stage $n failed; see $exp/logs/stage$n.log"
    exit 1
  fi
  local dt=$((SECONDS - t0))
  printf '%s\t%s\t%s\n' "$n" "$desc" "$dt" >> "$exp/timings.tsv"
  printf '%s\n' "$signature" > "$exp/.done/$n"
  log "Stage $n done in ${dt}s"
}

# run_on_gpus N command...: inside a stage, N > 1 runs N copies of the command at once, copy i on GPU i
# with `--shard i/N` appended (as `python -m asr_gan.features extract` takes it: shards round-robin, the
# copy that finishes last merges); each copy logs to $exp/logs/stage<N>.gpu<i>.log. N <= 1 runs it once.
run_on_gpus() {
  local n=$1 i failed=0; shift
  if [ "$n" -le 1 ]; then
    stage_cmd "$@"
    return
  fi
  local pids=()
  for ((i = 0; i < n; i++)); do
    stage_cmd env CUDA_VISIBLE_DEVICES="$i" "$@" --shard "$i/$n" > "$exp/logs/stage${stage_number:-x}.gpu$i.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      log "GPU $i copy failed; see $exp/logs/stage${stage_number:-x}.gpu$i.log"
      failed=1
    fi
  done
  return $failed
}

# parse_options "$@": every `--some-name value` sets the variable some_name, which the recipe must
# have defined with its default first (as Kaldi's parse_options.sh does); `--help` prints them.
parse_options() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --help|-h)
        echo "options (current values):"
        for v in $recipe_options; do printf '  --%s %s\n' "${v//_/-}" "${!v}"; done
        exit 0 ;;
      --*)
        local name=${1#--}; name=${name//-/_}
        if [[ " $recipe_options " != *" $name "* ]]; then
          echo "unknown option $1 (see --help)" >&2; exit 2
        fi
        [ $# -ge 2 ] || { echo "option $1 needs a value" >&2; exit 2; }
        printf -v "$name" '%s' "$2"; shift 2 ;;
      *) echo "unexpected argument $1 (see --help)" >&2; exit 2 ;;
    esac
  done
}

# training_profile: gpu when nvidia-smi lists a GPU, else cpu (the recipes' `--profile auto`).
training_profile() {
  if command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi -L 2> /dev/null | grep -q GPU; then echo gpu; else echo cpu; fi
}

# fill_auto NAME VALUE ...: every variable NAME still set to `auto` takes its VALUE.
fill_auto() {
  while [ $# -ge 2 ]; do
    [ "${!1}" != auto ] || printf -v "$1" '%s' "$2"
    shift 2
  done
}

# declare_gan_options: the GAN-stage options of run_timit.sh and run_librispeech.sh with their defaults (sizes
# `auto`, filled by apply_training_profile after parse_options), added to recipe_options.
declare_gan_options() {
  profile=auto
  gan_conf=auto
  seeds=auto
  grid=loss.cycle_audio=0,1
  settings=""       # named settings instead of the grid: "base: audio:loss.cycle_audio=1" (NAME:key=value,...)
  parallel=auto     # GAN runs at a time (CPU processes; with GPUs dealt over them, at least one per GPU)
  gan_updates=auto
  topline_epochs=auto
  self_train_rounds=auto
  self_train_epochs=auto
  self_train_hidden=auto
  self_train_layers=auto
  recipe_options+=" profile gan_conf seeds grid settings parallel gan_updates topline_epochs self_train_rounds"
  recipe_options+=" self_train_epochs self_train_hidden self_train_layers"
}

# apply_training_profile: the GAN-stage sizes a recipe left at `auto`, from $profile (auto: training_profile) and
# $features (ssl or mfcc):
#   gpu: wav2vec-U's scale: 3 seeds x 150k updates of wav2vec-U's generator (SSL features) or a deeper one (MFCC,
#        recipes/conf/gan_mfcc.yaml), 4 runs at a time (on one H100 a wav2vec-U-size toy run kept ~385 updates/s
#        beside three others, README "Speed"), a 40-epoch topline, 2 self-training rounds of a 2 x 256 BiLSTM student;
#   cpu: the demo's scale, so a TIMIT-sized corpus finishes on a 2-core machine (README): 2 seeds x 2000 updates
#        of recipes/conf/gan_demo_cpu.yaml, 2 runs at a time, a 25-epoch topline, 1 round of a 1 x 96 student
#        for 6 epochs.
apply_training_profile() {
  [ "$profile" != auto ] || profile=$(training_profile)
  case "$profile" in
    gpu) fill_auto gan_conf "recipes/conf/$([ "$features" = ssl ] && echo gan_wav2vec_u.yaml || echo gan_mfcc.yaml)" \
           seeds "1 2 3" parallel 4 gan_updates 150000 topline_epochs 40 self_train_rounds 2 self_train_epochs 20 \
           self_train_hidden 256 self_train_layers 2 ;;
    cpu) fill_auto gan_conf recipes/conf/gan_demo_cpu.yaml seeds "1 2" parallel 2 gan_updates 2000 topline_epochs 25 \
           self_train_rounds 1 self_train_epochs 6 self_train_hidden 96 self_train_layers 1 ;;
    *) die "--profile $profile: expected auto, gpu or cpu" ;;
  esac
}

# print_settings: the settings of this run, printed at the start and saved beside the results.
print_settings() {
  mkdir -p "$exp"
  { for v in $recipe_options; do printf '%s=%s\n' "$v" "${!v}"; done; } | tee "$exp/settings.txt"
}

# run_frame_stages TRAIN_SPLIT NOTE [EXTRACT_FLAG ...]: stages 3-5 of run_timit.sh and run_librispeech.sh: frames of
# $splits (39-dim MFCC with utterance CMVN, or layer $layer of $ssl_checkpoint on $ngpu GPUs), the segmenter
# (PCA, k-means) fitted on TRAIN_SPLIT's frames, segments of every split. NOTE goes into stage 3's description;
# the EXTRACT_FLAGs (LibriSpeech: --vad) into every `asr_gan.features extract`.
run_frame_stages() {
  local train=$1 note=$2 frames_desc pool_flag
  extract_flags=("${@:3}")
  case "$features" in
    ssl) frames_desc="SSL layer $layer of $ssl_checkpoint" ;;
    encoder) frames_desc="phone encoder (${encoder_checkpoint:-shipped}) layer $layer, utterance CMVN," ;;
    *) frames_desc="MFCC (13 + deltas, utterance CMVN)" ;;
  esac
  run_stage 3 "$frames_desc frames$note of $splits into $feats" extract_frames
  pool_flag=$([ "$pool" = true ] && echo --pool || echo --no-pool)
  run_stage 4 "fit the segmenter on $feats/$train (PCA $pca_dim, $clusters clusters, pool $pool)" \
    $py -m asr_gan.features fit-transform --features "$feats/$train" --out "$feats/transform" \
      --pca-dim "$pca_dim" --clusters "$clusters" "$pool_flag" --seed "$seed" $([ "$ngpu" -gt 0 ] || echo --device cpu)
  run_stage 5 "segments of $splits (transform of $feats, PCA $pca_dim, $clusters clusters, pool $pool), segments per phone" \
    segment_splits
}

# Stage 3 body of run_frame_stages (run_demo.sh defines its own, MFCC only, under the same name).
extract_frames() {
  local split
  for split in $splits; do
    # `extract` keeps a finished feature folder (and resumes an unfinished one); a redone stage starts afresh.
    [ -z "$stage_outputs_stale" ] || stage_cmd rm -rf "$feats/$split"
    if [ "$features" = ssl ]; then
      # wav2vec-U feeds the raw layer output (no CMVN); float16 halves the disk and page cache of 1024-dim frames.
      run_on_gpus "$ngpu" $py -m asr_gan.features extract --manifest "$exp/data/$split.jsonl" --out "$feats/$split" \
        --ssl-checkpoint "$ssl_checkpoint" --layer "$layer" --cmvn none --dtype float16 --num-workers "$nj" \
        "${extract_flags[@]}" $([ "$ngpu" -gt 0 ] || echo --device cpu)
    elif [ "$features" = encoder ]; then
      # The shipped phone encoder (asr_gan.features.encoder): small enough for the CPU workers.
      stage_cmd $py -m asr_gan.features extract --manifest "$exp/data/$split.jsonl" --out "$feats/$split" \
        --frontend encoder ${encoder_checkpoint:+--encoder-checkpoint "$encoder_checkpoint"} \
        $([ "$layer" = auto ] || echo --layer "$layer") --cmvn utterance --num-workers "$nj" "${extract_flags[@]}"
    else
      stage_cmd $py -m asr_gan.features extract --manifest "$exp/data/$split.jsonl" --out "$feats/$split" \
        --frontend mfcc --num-ceps 13 --cmvn utterance --num-workers "$nj" "${extract_flags[@]}"
    fi
  done
}

# Stage body every recipe shares: segments of each of $splits with the fitted transform of $feats, and the
# segments per reference phone of each (asr_gan.features.segment_stats).
segment_splits() {
  local split
  for split in $splits; do
    stage_cmd $py -m asr_gan.features segment --transform "$feats/transform" --features "$feats/$split" \
      --out "$feats/segments/$split"
    stage_cmd $py -m asr_gan.features.segment_stats --segments "$feats/segments/$split" --labels "$exp/text/$split.phn"
  done
}
