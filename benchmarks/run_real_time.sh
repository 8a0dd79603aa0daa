#!/usr/bin/env bash
# The real-time figures of benchmarks/README.md ("Real time"): benchmarks/streaming.py, one run at a time, alone on
# the machine (2 CPU cores), about 20 min. The targets ask for 10 minutes of audio; these runs are 3 minutes (the
# comparisons 1), so the README's figures say over how long each was measured.
# RESUME=1 skips a run whose result exists.
source "$(dirname "$0")/lanes.sh"
stream() { run benchmarks/streaming.py --latency-ms 1 "$@"; }
# Before: the encoder on the audio path, in one thread, as fast as blocks are processed.
stream --model scratch:base --block-ms 20 --minutes 1 --out $out/streaming_base_20ms_unpaced_torch.json
# The targets: paced as a sound card delivers blocks, the encoder on a worker, the fastest backend.
stream --model scratch:base --block-ms 20 --paced --backend int8 --minutes 3 --out $out/streaming_base_20ms_int8.json
stream --model scratch:tiny --block-ms 8 --paced --backend int8 --minutes 3 --out $out/streaming_tiny_8ms_int8.json
stream --model scratch:tiny --block-ms 8 --paced --backend int8 --minutes 1 --load-cores 1 \
  --out $out/streaming_tiny_8ms_int8_load1.json
# The backends side by side, and the goal beyond (base, 4-ms blocks).
for backend in torch onnx; do
  stream --model scratch:base --block-ms 20 --paced --backend $backend --minutes 1 --out $out/streaming_base_20ms_$backend.json
  stream --model scratch:tiny --block-ms 8 --paced --backend $backend --minutes 1 --out $out/streaming_tiny_8ms_$backend.json
done
stream --model scratch:base --block-ms 4 --paced --backend int8 --minutes 1 --out $out/streaming_base_4ms_int8.json
# The audio path of the shipped room model: a bank of 17 judged by its errors at the ear through Ŝ, every block.
stream --model scratch:base --block-ms 20 --paced --backend int8 --minutes 1 --scene room --bank 17 \
  --out $out/streaming_base_20ms_int8_room_bank17.json
# A lag of two update periods: twice the worker's time.
stream --model scratch:base --block-ms 20 --paced --backend int8 --minutes 1 --update-lag-ms 100 \
  --out $out/streaming_base_20ms_int8_lag100.json
# Less recompute: updates every 100 ms (the lag one period), or a context of 0.125 s.
stream --model scratch:base --block-ms 20 --paced --backend int8 --minutes 1 --update-ms 100 --update-lag-ms 100 \
  --out $out/streaming_base_20ms_int8_update100.json
stream --model scratch:base --block-ms 20 --paced --backend int8 --minutes 1 --context-seconds 0.125 \
  --out $out/streaming_base_20ms_int8_context125.json
