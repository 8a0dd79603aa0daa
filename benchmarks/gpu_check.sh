#!/usr/bin/env bash
# GPU figures in one run: seconds per fine-tuning step (fp16, bf16 = the project's auto choice on
# compute capability >= 8.0, fp32), the streaming real-time factor (scratch:base, scratch:tiny), and the
# notebook end to end with scratch:base through papermill.
#
# Through this workplace's device tool (a bare machine without internet; see /work/.library/device/):
#   1. once, here, in the repo root: echo /.whl/ >> .git/info/exclude, then download the wheels the
#      device lacks into .whl/ for Python 3.12, manylinux x86_64 (`pip download --no-deps
#      --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 ...`):
#      transformers datasets dill multiprocess fsspec regex librosa audioread soxr pooch decorator
#      soundfile cffi pycparser papermill entrypoints tenacity nbclient nbformat jupyter_client
#      jupyter_core ipykernel ipython ipython_pygments_lexers traitlets fastjsonschema jsonschema
#      jsonschema-specifications referencing rpds-py pyzmq tornado comm debugpy matplotlib-inline
#      nest-asyncio2 jedi parso prompt_toolkit wcwidth stack-data executing asttokens pure_eval pexpect
#      ptyprocess platformdirs (the versions of .venv's `pip freeze`; about 30 MB). The device's own
#      huggingface_hub, tokenizers, safetensors, accelerate, pyarrow, torch are used.
#   2. run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=420), then give_back.
# Anywhere else with a GPU and the packages installed: OUT=some/dir bash benchmarks/gpu_check.sh
#
# Writes to $OUT: gpu_figures.json (every figure; a job that failed or ran out of time has its
# status there), gpu_check.log (all output), nb.ipynb (the executed notebook), metrics.json and
# loss_curve.png (the notebook's own outputs).
# Knobs: GPU_CHECK_BUDGET_S (default 390: the jobs' timeouts are cut to end within it),
# PYTHON (default python3), GPU_CHECK_NO_INSTALL=1 (skip the wheel install),
# GPU_CHECK_DRY=1 (a quick CPU rehearsal: scratch:tiny everywhere, 1-2 steps, no fp16).

set -uo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
WORK=$(mktemp -d)
LOG=$OUT/gpu_check.log
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET_S:-390}
START=$(date +%s)
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

if [ -d .whl ] && [ -z "${GPU_CHECK_NO_INSTALL:-}" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    2>&1 | tail -5 | tee -a "$LOG"
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  echo "wheels installed in $(( $(date +%s) - START )) s" | tee -a "$LOG"
fi

{
  nvidia-smi 2>&1 || echo "no nvidia-smi"
  "$PY" - <<'EOF'
import importlib.metadata as md, platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| device", torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
      torch.cuda.get_device_capability() if torch.cuda.is_available() else "")
for name in ("transformers", "accelerate", "datasets", "huggingface_hub", "tokenizers", "safetensors", "pyarrow",
             "fsspec", "numpy", "scipy", "librosa", "soundfile", "papermill", "ipykernel", "matplotlib", "numba"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} MISSING")
import datasets, librosa, soundfile, transformers  # noqa: E401,F401  (fail early, in the log, if one breaks)
import helpers  # noqa: F401
print("import datasets, librosa, soundfile, transformers, helpers: ok")
EOF
} 2>&1 | tee -a "$LOG"

if [ -n "${GPU_CHECK_DRY:-}" ]; then
  BASE=scratch:tiny STEP_ARGS="--batch-size 2 --steps 1" MINUTES=1 NB_STEPS=2 PRECISIONS="auto fp32"
else
  BASE=scratch:base STEP_ARGS="--batch-size 8 --steps 5" MINUTES=1 NB_STEPS=300 PRECISIONS="fp16 auto fp32"
fi

# job NAME CAP_S COMMAND...: runs under `timeout` (cut to what is left of the budget), its output to the
# log and to $WORK/NAME.log; its status, rc and wall seconds to $WORK/jobs.tsv.
job() {
  local name=$1 cap=$2
  shift 2
  local left=$(( BUDGET - ($(date +%s) - START) ))
  [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -lt 20 ]; then
    echo "=== $name: skipped, ${left} s of the budget left" | tee -a "$LOG"
    printf '%s\tskipped\t\t\n' "$name" >>"$WORK/jobs.tsv"
    return
  fi
  echo "=== $name (timeout ${cap} s): $*" | tee -a "$LOG"
  local t0 t1 rc
  t0=$(date +%s.%N)
  timeout -k 10 "$cap" "$@" 2>&1 | tee "$WORK/$name.log" >>"$LOG"
  rc=$?
  t1=$(date +%s.%N)
  local status=ok
  [ "$rc" -ne 0 ] && status=failed
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && status=timeout
  local wall
  wall=$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")
  echo "=== $name: $status, rc $rc, $wall s" | tee -a "$LOG"
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$wall" >>"$WORK/jobs.tsv"
}

# 1. seconds per fine-tuning step (the first CUDA run of a precision is the untimed step)
for precision in $PRECISIONS; do
  [ "$precision" = fp32 ] && continue  # fp32 last, if time allows
  job "step_$precision" 100 "$PY" benchmarks/step_time.py --model "$BASE" $STEP_ARGS --precision "$precision"
done
# 2. streaming real-time factor
job stream_base 100 "$PY" benchmarks/streaming.py --model "$BASE" --minutes "$MINUTES"
job stream_tiny 80 "$PY" benchmarks/streaming.py --model scratch:tiny --minutes "$MINUTES"
# 3. the notebook end to end
NB_OUT_DIR=$WORK/nbout
job notebook 240 "$PY" -m papermill wav2vec2_noise_cancellation.ipynb "$OUT/nb.ipynb" -k python3 --cwd . \
  -p MODEL_NAME "$BASE" -p AUDIO_PATH sample_audio/colobot_076.wav -p OUTPUT_DIR "$NB_OUT_DIR" -p MAX_STEPS "$NB_STEPS"
cp "$NB_OUT_DIR/metrics.json" "$NB_OUT_DIR/loss_curve.png" "$OUT/" 2>/dev/null
# 1b. fp32 step time
case " $PRECISIONS " in *" fp32 "*)
  job step_fp32 90 "$PY" benchmarks/step_time.py --model "$BASE" $STEP_ARGS --precision fp32 ;;
esac

WORK=$WORK NB_OUT_DIR=$NB_OUT_DIR "$PY" - <<'EOF' 2>&1 | tee -a "$LOG"
import ast, csv, json, os, re
from pathlib import Path

work, out = Path(os.environ["WORK"]), Path(os.environ["OUT"])
figures = {"jobs": {}}
for name, status, rc, seconds in csv.reader(open(work / "jobs.tsv"), delimiter="\t"):
    figures["jobs"][name] = {"status": status, "rc": int(rc) if rc else None,
                             "wall_s": round(float(seconds), 1) if seconds else None}
    log = work / f"{name}.log"
    if name.startswith(("step_", "stream_")) and log.exists():
        results = [ast.literal_eval(line) for line in log.read_text().splitlines() if line.startswith("{'model'")]
        if results:
            figures["jobs"][name]["result"] = results[-1]
try:
    import torch
    import transformers

    figures["environment"] = {"gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                              "capability": list(torch.cuda.get_device_capability()) if torch.cuda.is_available() else None,
                              "torch": torch.__version__, "cuda": torch.version.cuda, "transformers": transformers.__version__}
except Exception as error:  # noqa: BLE001
    figures["environment"] = {"error": repr(error)}
steps = {j["result"]["precision"]: j["result"]["seconds_per_step"] for j in figures["jobs"].values()
         if "result" in j and "seconds_per_step" in j["result"]}
figures["seconds_per_step"] = steps
figures["real_time_factor"] = {j["result"]["model"]: j["result"]["real_time_factor"] for j in figures["jobs"].values()
                               if "result" in j and "real_time_factor" in j["result"]}
metrics = Path(os.environ["NB_OUT_DIR"]) / "metrics.json"
if metrics.exists():
    m = json.loads(metrics.read_text())
    training = m.get("training", {})
    figures["notebook"] = {"wall_s": figures["jobs"].get("notebook", {}).get("wall_s"), "model_name": m.get("model_name"),
                           "max_steps": m.get("max_steps"), "heldout_nr_db_before": training.get("heldout_nr_db_before"),
                           "heldout_nr_db_after": training.get("heldout_nr_db_after"),
                           "noise_reduction_db": m.get("noise_reduction_db"),
                           "wiener_nr_db": m.get("methods", {}).get("wiener", {}).get("nr_db")}
nb = out / "nb.ipynb"
if nb.exists():
    cells = json.loads(nb.read_text())["cells"]
    durations = [round(c.get("metadata", {}).get("papermill", {}).get("duration") or 0.0, 2) for c in cells if c["cell_type"] == "code"]
    figures.setdefault("notebook", {})["cell_seconds"] = durations
    text = "".join("".join(o.get("text", "")) for c in cells if c["cell_type"] == "code" for o in c.get("outputs", []))
    found = re.search(r"real-time factor ([0-9.]+) on (\w+)", text)
    if found:
        figures["notebook"]["streamed_real_time_factor"] = float(found.group(1))
        figures["notebook"]["streamed_on"] = found.group(2)
(out / "gpu_figures.json").write_text(json.dumps(figures, indent=1))
print(json.dumps({k: v for k, v in figures.items() if k != "jobs"}, indent=1))
EOF
echo "gpu_check done in $(( $(date +%s) - START )) s" | tee -a "$LOG"
rm -rf "$WORK"
