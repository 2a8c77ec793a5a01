#!/usr/bin/env bash
# Build KenLM's lmplz and build_binary from the kenlm sdist on PyPI into $KENLM_DIR/bin.
# Needs cmake, a C++ compiler and Debian's boost/zlib dev packages (tools/setup.sh installs them).
# Reruns are free: an existing build is kept.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
KENLM_DIR=${KENLM_DIR:-$root/.cache/kenlm}
python=${PYTHON:-$root/.venv/bin/python}
if [ -x "$KENLM_DIR/bin/lmplz" ] && [ -x "$KENLM_DIR/bin/build_binary" ]; then
  echo "kenlm: lmplz and build_binary already built in $KENLM_DIR/bin"
  exit 0
fi
mkdir -p "$KENLM_DIR/src"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Fetch the sdist itself: `pip download` would build the Python module just to read its metadata.
"$python" - "$work" <<'PY'
import json, sys, urllib.request
release = json.load(urllib.request.urlopen("https://pypi.org/pypi/kenlm/json", timeout=60))
url = next(u["url"] for u in release["urls"] if u["packagetype"] == "sdist")
urllib.request.urlretrieve(url, f"{sys.argv[1]}/kenlm.tar.gz")
PY
tar -xzf "$work/kenlm.tar.gz" -C "$work"
src=$(find "$work" -maxdepth 1 -type d -name 'kenlm-*' | head -n 1)
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=8 >"$KENLM_DIR/cmake.log" 2>&1 \
  || { echo "kenlm: cmake failed, see $KENLM_DIR/cmake.log" >&2; exit 1; }
cmake --build "$work/build" --target lmplz build_binary -j "$(nproc)" >"$KENLM_DIR/build.log" 2>&1 \
  || { echo "kenlm: build failed, see $KENLM_DIR/build.log" >&2; exit 1; }
mkdir -p "$KENLM_DIR/bin"
cp "$work/build/bin/lmplz" "$work/build/bin/build_binary" "$KENLM_DIR/bin/"
echo "kenlm: built lmplz and build_binary in $KENLM_DIR/bin"
