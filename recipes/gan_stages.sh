# The stages every recipe shares after its segments exist (sourced, not run): supervised topline, GAN sweep
# with label-free selection, model bundle, label-free decoder tuning, decoding and scoring, self-training,
# RESULTS. Each function is one stage body for run_stage (recipes/stages.sh).
#
# The recipe sets, before sourcing this file:
#   py        the Python of .venv                 exp        the experiment folder
#   feats     the features folder: frames in $feats/<split>, segments in $feats/segments/<split>, the fitted
#             transform in $feats/transform (docs/DESIGN.md); text/ is $exp/text
# and before calling them:
#   gan_conf  the GAN settings template (conf/*.yaml)
#   seeds     GAN seeds ("1 2 3")                 grid       sweep grid ("loss.cycle_audio=0,1"), may be empty
#   settings  optional named settings instead of the grid ("base: audio:loss.cycle_audio=1"; asr_gan.train.sweep)
#   parallel  concurrent GAN runs (over the GPUs) gan_updates  max_updates of each run
#   topline_epochs, self_train_rounds, self_train_epochs, self_train_hidden, self_train_layers (BiLSTM student)
#   words     true: word decoding with lexicon + word LM (and WER); false: phones only (TIMIT)
#   train_split, dev_split, test_splits   split names (default train, dev, "test"; LibriSpeech keeps its
#             subset names, e.g. train-clean-100, dev-clean, "test-clean test-other")

text=$exp/text
frames=$feats
segs=$feats/segments
transform=$feats/transform
train_split=${train_split:-train}
dev_split=${dev_split:-dev}
test_splits=${test_splits:-test}
self_train_hidden=${self_train_hidden:-256}
self_train_layers=${self_train_layers:-2}

# Paths of this experiment + the template's settings -> $exp/gan.yaml, the sweep's base config.
write_gan_config() {
  {
    echo "# written by recipes/gan_stages.sh from $gan_conf"
    echo "features: $segs/$train_split"
    echo "text: $text/train_text.phn"
    echo "phones: $text/phones.txt"
    echo "phone_lm: $text/phone_lm.bin"
    echo "valid_features: $segs/$dev_split"
    # References only make the logged PER; selection never reads them (asr_gan/train/selection.py).
    echo "valid_labels: $text/$dev_split.phn"
    echo "max_updates: $gan_updates"
    cat "$gan_conf"
  } > "$exp/gan.yaml"
}

stage_topline() {
  write_gan_config
  local split evals=()
  for split in $test_splits; do evals+=("$split=$segs/$split:$text/$split.phn"); done
  stage_cmd $py -m asr_gan.train.ctc --model generator --gan-config "$exp/gan.yaml" --features "$segs/$train_split" \
    --labels "$text/$train_split.phn" --phones "$text/phones.txt" --valid-features "$segs/$dev_split" \
    --valid-labels "$text/$dev_split.phn" --eval "${evals[@]}" --upsample 2 --epochs "$topline_epochs" \
    --batch-frames 1500 --out "$exp/topline"
  for split in $test_splits; do
    stage_cmd $py -m asr_gan.scoring --ref "$text/$split.phn" --hyp "$exp/topline/${split}_hyp.phn" --unit phone \
      --remove-silence --out "$exp/topline/score_$split"
  done
}

stage_sweep() {
  write_gan_config
  local what=(${grid:+--grid $grid})
  # Named settings (NAME:key=value,...) replace the grid.
  [ -z "${settings:-}" ] || what=(--settings $settings)
  # shellcheck disable=SC2086
  stage_cmd $py -m asr_gan.train.sweep --config "$exp/gan.yaml" --out "$exp/sweep" --seeds $seeds --parallel "$parallel" \
    "${what[@]}"
}

stage_bundle() {
  local extra=()
  if [ "$words" = true ]; then
    extra=(--lexicon "$text/lexicon.txt" --word-lm "$text/word_lm.bin")
  fi
  stage_cmd $py -m asr_gan.decode.make_bundle --sweep "$exp/sweep/sweep.json" --transform "$transform" \
    --phones "$text/phones.txt" --phone-lm "$text/phone_lm.bin" "${extra[@]}" --out "$exp/bundle"
}

# LM weight and insertion score chosen on unlabelled dev segments by wav2vec-U's rule (asr_gan/decode/tune.py).
stage_tune() {
  local decoder=phone_lm
  [ "$words" = true ] && decoder=words
  stage_cmd $py -m asr_gan.decode.tune --model "$exp/bundle" --features-dir "$segs/$dev_split" --decoder "$decoder" \
    --update-bundle --out "$exp/tune/report.json"
}

stage_decode() {
  local split
  for split in $dev_split $test_splits; do
    stage_cmd $py -m asr_gan.decode --features-dir "$segs/$split" --model "$exp/bundle" --out "$exp/decode/$split"
    stage_cmd $py -m asr_gan.scoring --ref "$text/$split.phn" --hyp "$exp/decode/$split/hyp.phn" --unit phone --remove-silence \
      --out "$exp/decode/$split/score_phones"
    if [ "$words" = true ]; then
      stage_cmd $py -m asr_gan.scoring --ref "$text/$split.wrd" --hyp "$exp/decode/$split/hyp.wrd" --unit word \
        --out "$exp/decode/$split/score_words"
    fi
  done
  # Chance level: unpaired text phones cut to a share of each reference's length, the share with the lowest PER
  # (shorter random text trades substitutions for deletions), scored like the system (asr_gan.scoring.chance).
  for split in $dev_split $test_splits; do
    stage_cmd $py -m asr_gan.scoring.chance --ref "$text/$split.phn" --text "$text/train_text.phn" \
      --out "$exp/chance/${split}_hyp.phn"
    stage_cmd $py -m asr_gan.scoring --ref "$text/$split.phn" --hyp "$exp/chance/${split}_hyp.phn" --unit phone \
      --remove-silence --out "$exp/chance/score_$split"
  done
  # Phones in time for the alignment pictures of stage_results: a few utterances of the first test set, their
  # reference times from the corpus (TIMIT's .PHN, as data/<split>.ref.ctm) or else from a forced alignment of the
  # reference phones with the supervised topline.
  local first_test=${test_splits%% *} reference
  reference=(--ctc-checkpoint "$exp/topline/checkpoint_best.pt" --references "$text/$first_test.phn")
  [ -f "$exp/data/$first_test.ref.ctm" ] && reference=(--reference-ctm "$exp/data/$first_test.ref.ctm")
  stage_cmd $py -m asr_gan.decode.align --manifest "$exp/data/$first_test.jsonl" --model "$exp/bundle" \
    "${reference[@]}" --num 3 --out "$exp/decode/$first_test/align"
  # Greedy GAN transcripts of the training audio: round 0 of self-training.
  stage_cmd $py -m asr_gan.decode --features-dir "$segs/$train_split" --model "$exp/bundle" --decoder greedy \
    --out "$exp/decode/$train_split"
}

stage_self_train() {
  local split evals=("$dev_split=$frames/$dev_split:$text/$dev_split.phn")
  for split in $test_splits; do evals+=("$split=$frames/$split:$text/$split.phn"); done
  stage_cmd $py -m asr_gan.decode.self_train --frames "$frames/$train_split" \
    --pseudo-labels "$exp/decode/$train_split/hyp.phn" --phones "$text/phones.txt" \
    --train-references "$text/$train_split.phn" --eval "${evals[@]}" \
    --rounds "$self_train_rounds" --epochs "$self_train_epochs" --hidden-dim "$self_train_hidden" \
    --num-layers "$self_train_layers" --batch-frames 8000 --out "$exp/self_train"
}

stage_results() {
  local align=$exp/decode/${test_splits%% *}/align pictures=()
  if [ -f "$align/ref.ctm" ] && [ -f "$align/hyp.ctm" ]; then
    pictures=(--manifest "$exp/data/${test_splits%% *}.jsonl" --ref-ctm "$align/ref.ctm" --hyp-ctm "$align/hyp.ctm")
  fi
  stage_cmd $py -m asr_gan.results --exp "$exp" "${pictures[@]}"
}

# run_gan_stages FIRST: the shared stages numbered FIRST, FIRST+1, ...
run_gan_stages() {
  local n=$1 runs="grid: ${grid:-none}"
  [ -n "$settings" ] && runs="settings: $settings"
  run_stage "$n" "supervised topline: the GAN's generator trained with CTC on the reference phones ($topline_epochs epochs, $gan_conf)" stage_topline
  run_stage $((n + 1)) "GAN sweep ($gan_conf, $gan_updates updates; seeds: $seeds; $runs), label-free selection" stage_sweep
  run_stage $((n + 2)) "model bundle of the selected run" stage_bundle
  run_stage $((n + 3)) "decoder settings tuned on unlabelled dev audio" stage_tune
  run_stage $((n + 4)) "decode and score $dev_split $test_splits (and their chance level at its best hypothesis length); phones in time for pictures; greedy transcripts of $train_split" stage_decode
  run_stage $((n + 5)) "self-training: $self_train_rounds round(s) of a frame-level BiLSTM CTC student ($self_train_layers x $self_train_hidden, $self_train_epochs epochs)" stage_self_train
  run_stage $((n + 6)) "RESULTS.md, RESULTS.json and pictures" stage_results
}
