# Shared stage machinery for the recipes (sourced, not run).
# Each stage runs once: on success it leaves $exp/.done/<N>, and a rerun skips it and says so.
# Each stage logs to $exp/logs/stage<N>.log and its wall time goes to $exp/timings.tsv.

log() { echo "[$(date +%H:%M:%S)] $*"; }

# run_stage N "description" command...   (the command runs only when stage <= N <= stop_stage)
run_stage() {
  local n=$1 desc=$2; shift 2
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then
    return 0
  fi
  mkdir -p "$exp/.done" "$exp/logs"
  if [ -f "$exp/.done/$n" ]; then
    log "Stage $n: $desc: already done, skipping (rm $exp/.done/$n to redo)"
    return 0
  fi
  log "Stage $n: $desc (log: $exp/logs/stage$n.log)"
  local t0=$SECONDS
  if ! "$@" > >(tee "$exp/logs/stage$n.log") 2>&1; then
    log "Stage $n failed; see $exp/logs/stage$n.log"
    exit 1
  fi
  local dt=$((SECONDS - t0))
  printf '%s\t%s\t%s\n' "$n" "$desc" "$dt" >> "$exp/timings.tsv"
  touch "$exp/.done/$n"
  log "Stage $n done in ${dt}s"
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

# print_settings: the settings of this run, printed at the start and saved beside the results.
print_settings() {
  mkdir -p "$exp"
  { for v in $recipe_options; do printf '%s=%s\n' "$v" "${!v}"; done; } | tee "$exp/settings.txt"
}
