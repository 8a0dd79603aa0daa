#!/usr/bin/env bash
# The README's headline figures: every benchmark of the honest protocol on the test set, one after another
# (each uses both cores; run alone). About 2 hours on 2 CPU cores. Each writes its records (with commit and
# command) to benchmarks/results/; `python benchmarks/report.py FILE...` prints the tables and the targets.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
out=benchmarks/results
run() { echo "== $*"; start=$SECONDS; "$py" "$@"; echo "== $((SECONDS - start)) s"; }
# Linear loudspeaker, the room and the band-pass scene, 0 and 1 ms.
run benchmarks/cancellation.py --suite test --scene room --latency-ms 0,1 --out $out/test_room.json --plot $out/test_room.png
run benchmarks/cancellation.py --suite test --scene bandpass --latency-ms 0,1 --out $out/test_bandpass.json --plot $out/test_bandpass.png
# A saturating loudspeaker (sat:2), as identified and with its η mis-estimated by ±20 %.
run benchmarks/cancellation.py --suite test --scene bandpass --loudspeaker sat:2 --latency-ms 1 --out $out/test_bandpass_sat2.json
for error in 0.8 1.2; do
  run benchmarks/cancellation.py --suite test --scene bandpass --loudspeaker sat:2 --latency-ms 1 --eta-error $error \
    --out $out/test_bandpass_sat2_eta$error.json
done
# Robustness: Ŝ (and η̂) identified with the excitation only 20 dB above the place's noise.
run benchmarks/cancellation.py --suite test --scene room,bandpass --latency-ms 1 --identification-snr-db 20 \
  --out $out/test_snr20.json
# Noise that changes: the test set's switching library in the room at 1 ms.
run benchmarks/switching.py --suite test --scene room --latency-ms 1 --out $out/test_switching_room.json \
  --plot $out/test_switching_room.png
