#!/usr/bin/env bash
# The ablation of benchmarks/README.md: benchmarks/ablation.py on the test set at 1 ms, in two lanes of one core
# each (as run_test_set.sh), the none scene's clips split between them, then a saturating loudspeaker (η̂ as
# identified, 20 % low and high). About 1 h 35 min on 2 CPU cores; run it alone.
# `python benchmarks/report.py benchmarks/results/ablation_*.json` prints the tables.
source "$(dirname "$0")/lanes.sh"
first=white_test,pink_test,brown_test,mains_hum_60hz,engine_fast_drift,colobot_021.wav
second=engine_ferrari_f360.wav,engine_ford_gt40.wav,engine_lamborghini_diablo.wav,engine_lotus.wav,slide_leaves.wav
lane_a() {
  run benchmarks/ablation.py --scene room --out $out/ablation_room.json
  run benchmarks/ablation.py --scene none --only $first --out $out/ablation_none_1.json
  run benchmarks/ablation.py --scene bandpass --loudspeaker sat:2 --out $out/ablation_bandpass_sat2.json
}
lane_b() {
  run benchmarks/ablation.py --scene bandpass --out $out/ablation_bandpass.json
  run benchmarks/ablation.py --scene none --only $second --out $out/ablation_none_2.json
  run benchmarks/ablation.py --scene bandpass --loudspeaker sat:2 --eta-error 0.8 --out $out/ablation_bandpass_sat2_eta0.8.json
  run benchmarks/ablation.py --scene bandpass --loudspeaker sat:2 --eta-error 1.2 --out $out/ablation_bandpass_sat2_eta1.2.json
}
lane_a > "$logs/ablation_a.log" 2>&1 &
lane_b > "$logs/ablation_b.log" 2>&1 &
wait
