#!/usr/bin/env bash
# The README's headline figures: every benchmark of the honest protocol on the test set. Two lanes run side by
# side, each on one core (torch at one thread: the tiny encoder gains nothing from a second, and two lanes finish
# the set in about half the time); run it alone. About 1 h 45 min on 2 CPU cores. Each command writes its records
# (with commit and command) to benchmarks/results/; `python benchmarks/report.py FILE...` prints the tables and
# the targets. Logs go to $LOGS (default /tmp). With RESUME=1 a command whose results file exists is skipped.
source "$(dirname "$0")/lanes.sh"
lane_a() {
  # Linear loudspeaker in the room, 0 and 1 ms; sat:2 as identified and with η̂ 20 % low; noise that changes.
  run benchmarks/cancellation.py --suite test --scene room --latency-ms 0,1 --out $out/test_room.json --plot $out/test_room.png
  run benchmarks/cancellation.py --suite test --scene bandpass --loudspeaker sat:2 --latency-ms 1 --out $out/test_bandpass_sat2.json
  run benchmarks/cancellation.py --suite test --scene bandpass --loudspeaker sat:2 --latency-ms 1 --eta-error 0.8 \
    --out $out/test_bandpass_sat2_eta0.8.json
  run benchmarks/switching.py --suite test --scene room --latency-ms 1 --out $out/test_switching_room.json \
    --plot $out/test_switching_room.png
}
lane_b() {
  # Linear loudspeaker in the band-pass scene, 0 and 1 ms; η̂ 20 % high; Ŝ identified at 20 dB (in the band-pass
  # scene, where Ŝ matters most: the room's reverberation limits it first); no scene at 1 ms.
  run benchmarks/cancellation.py --suite test --scene bandpass --latency-ms 0,1 --out $out/test_bandpass.json --plot $out/test_bandpass.png
  run benchmarks/cancellation.py --suite test --scene bandpass --loudspeaker sat:2 --latency-ms 1 --eta-error 1.2 \
    --out $out/test_bandpass_sat2_eta1.2.json
  run benchmarks/cancellation.py --suite test --scene bandpass --latency-ms 1 --identification-snr-db 20 \
    --out $out/test_snr20.json
  run benchmarks/cancellation.py --suite test --scene none --latency-ms 1 --out $out/test_none.json
}
lane_a > "$logs/test_set_a.log" 2>&1 &
lane_b > "$logs/test_set_b.log" 2>&1 &
wait
