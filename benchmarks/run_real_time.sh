#!/usr/bin/env bash
# The real-time figures of benchmarks/README.md ("Real time"): benchmarks/streaming.py, one run at a time, alone on
# the machine (2 CPU cores), about 1 h. The targets' runs are 10 minutes of audio (under load 3), the comparisons 1.
# RESUME=1 skips a run whose result exists.
source "$(dirname "$0")/lanes.sh"
stream() { run benchmarks/streaming.py --latency-ms 1 "$@"; }
# The targets: paced as a sound card delivers blocks, the encoder in a worker process, the shipped timing (an
# encoder update every 100 ms from input 50 ms older than its block), the fastest backend.
stream --model scratch:base --block-ms 20 --paced --backend int8 --minutes 10 --out $out/streaming_base_20ms_int8.json
stream --model scratch:tiny --block-ms 8 --paced --backend int8 --minutes 10 --out $out/streaming_tiny_8ms_int8.json
stream --model scratch:tiny --block-ms 8 --paced --backend int8 --minutes 3 --load-cores 1 \
  --out $out/streaming_tiny_8ms_int8_load1.json
# The same with the audio path's thread at real-time priority, as a deployed canceller's (where the OS permits).
stream --model scratch:tiny --block-ms 8 --paced --backend int8 --minutes 10 --priority fifo \
  --out $out/streaming_tiny_8ms_int8_fifo.json
stream --model scratch:tiny --block-ms 8 --paced --backend int8 --minutes 3 --load-cores 1 --priority fifo \
  --out $out/streaming_tiny_8ms_int8_load1_fifo.json
# Before: the encoder on the audio path, in one thread, as fast as blocks are processed (updates every 50 ms).
stream --model scratch:base --block-ms 20 --minutes 1 --encoder-update-ms 50 --out $out/streaming_base_20ms_unpaced_torch.json
# What each step gained: a worker thread instead of a process; updates every 50 ms (the earlier timing).
stream --model scratch:base --block-ms 20 --paced --backend int8 --minutes 1 --worker thread \
  --out $out/streaming_base_20ms_int8_thread.json
stream --model scratch:base --block-ms 20 --paced --backend int8 --minutes 1 --encoder-update-ms 50 \
  --out $out/streaming_base_20ms_int8_update50.json
# The backends side by side, and the goal beyond (base, 4-ms blocks).
for backend in torch onnx; do
  stream --model scratch:base --block-ms 20 --paced --backend $backend --minutes 1 --out $out/streaming_base_20ms_$backend.json
done
stream --model scratch:tiny --block-ms 8 --paced --backend onnx --minutes 1 --out $out/streaming_tiny_8ms_onnx.json
stream --model scratch:base --block-ms 4 --paced --backend int8 --minutes 1 --out $out/streaming_base_4ms_int8.json
# The audio path of the shipped room model: a bank of 17 judged by its errors at the ear through Ŝ, every block.
stream --model scratch:base --block-ms 20 --paced --backend int8 --minutes 1 --scene room --bank 17 \
  --out $out/streaming_base_20ms_int8_room_bank17.json
# The machine's own misses: the same paced loop with nothing to compute.
for block in 8 20; do
  run benchmarks/wake_up.py --block-ms $block --minutes 3 --out $out/wake_up_${block}ms.json
done
# The same fixed numpy work every 8-ms block (about the audio path's median), at real-time priority: how often the
# machine stretches work that never changes.
run benchmarks/wake_up.py --block-ms 8 --minutes 10 --work-ms 1.6 --priority fifo --out $out/wake_up_8ms_work_fifo.json
