#!/usr/bin/env bash
# The ablation of benchmarks/README.md: benchmarks/ablation.py on the test set at 1 ms, in two lanes of one core
# each (as run_test_set.sh), the none scene's clips split between them. About 55 min on 2 CPU cores; run it alone.
# `python benchmarks/report.py --ablation benchmarks/results/ablation_*.json` prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
out=benchmarks/results
logs=${LOGS:-/tmp}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
first=white_test,pink_test,brown_test,mains_hum_60hz,engine_fast_drift,colobot_021.wav
second=engine_ferrari_f360.wav,engine_ford_gt40.wav,engine_lamborghini_diablo.wav,engine_lotus.wav,slide_leaves.wav
lane_a() {
  "$py" benchmarks/ablation.py --scene room --out $out/ablation_room.json
  "$py" benchmarks/ablation.py --scene none --only $first --out $out/ablation_none_1.json
}
lane_b() {
  "$py" benchmarks/ablation.py --scene bandpass --out $out/ablation_bandpass.json
  "$py" benchmarks/ablation.py --scene none --only $second --out $out/ablation_none_2.json
}
lane_a > "$logs/ablation_a.log" 2>&1 &
lane_b > "$logs/ablation_b.log" 2>&1 &
wait
