#!/usr/bin/env bash
# The test command of the README (and of CI): set up, then run the whole pytest suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/tools/setup.sh"
cd "$root"
exec .venv/bin/python -m pytest -q "$@"
