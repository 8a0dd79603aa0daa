# Sourced by the run_*.sh scripts: the repository as the working folder, the Python to use, where results and logs
# go, torch at one thread (each lane is one core: the tiny encoder gains nothing from a second), and `run`, which
# prints each command and its time and, with RESUME=1, skips a command whose --out file exists.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
out=benchmarks/results
logs=${LOGS:-/tmp}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
run() {
  local file=""
  for ((i = 1; i <= $#; i++)); do [ "${!i}" = "--out" ] && { j=$((i + 1)); file=${!j}; }; done
  if [ "${RESUME:-0}" = 1 ] && [ -n "$file" ] && [ -f "$file" ]; then echo "== skip (done): $file"; return; fi
  echo "== $*"; local start=$SECONDS; "$py" "$@"; echo "== $((SECONDS - start)) s"
}
