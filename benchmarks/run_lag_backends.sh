#!/usr/bin/env bash
# What real time costs in NR (benchmarks/README.md, "Real time"): benchmarks/lag_backends.py on the test set at 1 ms,
# one model per timing (an update every 50 ms without lag, the reference; every 100 ms with a lag of 50 ms, the
# shipped timing; every 100 ms with a lag of 100 ms) and the shipped one on every backend, in two lanes of one core
# each, on the four clips where the encoder or the bank matters most (pink noise, the hum, the drifting engine, an
# engine recording): without a scene and in the room (about 30 min alone), then the band-pass scene, two clips a
# lane (about 15 min). RESUME=1 skips a finished lane's file.
source "$(dirname "$0")/lanes.sh"
clips=pink_test,mains_hum_60hz,engine_fast_drift,engine_lotus.wav
run benchmarks/lag_backends.py --scene none --only $clips --out $out/lag_backends_none.json > "$logs/lag_backends_none.log" 2>&1 &
run benchmarks/lag_backends.py --scene room --only $clips --out $out/lag_backends_room.json > "$logs/lag_backends_room.log" 2>&1 &
wait
run benchmarks/lag_backends.py --scene bandpass --only pink_test,mains_hum_60hz --out $out/lag_backends_bandpass_1.json \
  > "$logs/lag_backends_bandpass_1.log" 2>&1 &
run benchmarks/lag_backends.py --scene bandpass --only engine_fast_drift,engine_lotus.wav \
  --out $out/lag_backends_bandpass_2.json > "$logs/lag_backends_bandpass_2.log" 2>&1 &
wait
