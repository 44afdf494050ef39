#!/usr/bin/env bash
# Prove the GPU figures in one short run on a bare CUDA machine (torch installed, no internet).
#
#   bash scripts/gpu_check.sh OUT_DIR [--dry_run]
#   WHEELS=DIR bash scripts/gpu_check.sh OUT_DIR        # install missing packages from DIR first
#
# Records the machine (CPUs, memory, /dev/shm, nvidia-smi, torch and CUDA), then runs, each step
# under its own time limit and within BUDGET_S seconds in all (default 420, 7 minutes): the CUDA
# tests (pytest -m cuda); ViT-L/16 at 384 training rows (fast bf16 at batch 64 and 16; fast without
# the fused q/k/v projection; the package's explicit fp32 path) and inference at batch 128; the whole
# scripts/p1_inference.sh over 2,169 JPEGs; p1_train.py for 2 epochs over 3,680 + 1,500 Pets-sized
# JPEGs with its default settings, images/s including data loading; the data-loading benchmark;
# last, the training rows with torch.compile at batch 64 and 16. The inputs of the whole-script
# steps are made on the CPU while the GPU steps run.
#
# OUT_DIR receives four files and nothing else: bench.jsonl (one JSON object per benchmark row),
# checks.jsonl (the machine, the other measurements and each step's outcome), summary.md (the tables
# and the targets, from scripts/dev/bench_table.py) and logs.tar.gz (every step's log, refreshed after
# each step, so a run stopped from outside still leaves the logs of what ran). Installed wheels, the
# inductor cache and the steps' inputs live in a temporary folder that is removed at the end.
# A failed or skipped step is recorded and the run goes on.
# --dry_run runs the same steps on the CPU with the micro model and tiny counts; there
# TORCHDYNAMO_DISABLE=1 makes the --compile rows run eagerly (compiling is what takes time).
# Set PYTHON to choose the interpreter (default: python3). An OUT_DIR holding the results of an
# earlier run is refused: they are never overwritten. Nothing is written there before the
# interpreter, the packages and the device have been checked.
set -u
PY=${PYTHON:-python3}

if [[ $# -eq 1 && ( $1 == -h || $1 == --help ) ]]; then  # this header, as every script's --help
  sed -n '2,/^[^#]/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
  exit 0
fi
usage() { echo "usage: bash scripts/gpu_check.sh OUT_DIR [--dry_run]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
OUT=$1
DRY=0
if [[ $# -eq 2 ]]; then [[ $2 == --dry_run ]] && DRY=1 || usage; fi
[[ $OUT == --dry_run ]] && usage
case $OUT in -*) OUT=./$OUT ;; esac  # a name starting with '-' must not read as an option
RESULTS="summary.md bench.jsonl checks.jsonl logs.tar.gz"
for earlier in $RESULTS; do
  if [[ -e $OUT/$earlier ]]; then
    echo "error: $OUT already holds $earlier of an earlier run; give a new OUT_DIR or move it away" >&2; exit 2
  fi
done
# OUT_DIR and WHEELS are taken from the folder the script is called from, before moving to the repository.
if [[ -n ${WHEELS:-} ]]; then
  [[ -d $WHEELS ]] || { echo "error: WHEELS=$WHEELS is not a folder of wheels" >&2; exit 2; }
  WHEELS=$(cd -- "$WHEELS" && pwd)
fi
OUT=$(realpath -m -- "$OUT")
cd -- "$(dirname -- "$(readlink -f -- "$0")")/.."  # the repository, also through a symbolic link
BENCH=$OUT/bench.jsonl
CHECKS=$OUT/checks.jsonl
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX") || { echo "error: cannot make a temporary folder" >&2; exit 2; }
LOGS=$WORK/logs
mkdir "$LOGS"
trap 'rm -rf -- "$WORK"' EXIT
export PYTHONUNBUFFERED=1  # a step stopped at its limit still leaves everything it printed

# 1. Packages: install what is missing from WHEELS (into the temporary folder, nothing else is
# touched), else name what is missing and stop.
REQUIRED="torch torchvision numpy scipy PIL tqdm pytest pytorch_pretrained_vit"
missing() {  # a package that cannot even be looked up counts as missing
  "$PY" -c 'import importlib.util, sys
def found(module):
    try:
        return importlib.util.find_spec(module) is not None
    except Exception:
        return False
print(" ".join(m for m in sys.argv[1:] if not found(m)))' $REQUIRED
}
command -v "$PY" >/dev/null || { echo "error: $PY not found; set PYTHON to a Python with torch" >&2; exit 2; }
MISSING=$(missing)
PIP_NOTE=""
if [[ -n $MISSING && -n ${WHEELS:-} ]]; then
  export PYTHONPATH="$WORK/site-packages${PYTHONPATH:+:$PYTHONPATH}"
  for module in $MISSING; do
    package=${module//_/-}; [[ $module == PIL ]] && package=Pillow
    # --no-build-isolation: a source archive builds with the setuptools already here, offline
    "$PY" -m pip install --quiet --no-index --no-deps --no-build-isolation --find-links "$WHEELS" \
      --target "$WORK/site-packages" "$package" >>"$LOGS/pip.log" 2>&1 || true
  done
  MISSING=$(missing)
  [[ -n $MISSING ]] && PIP_NOTE="; pip could not install them from $WHEELS: $(grep -v '^\s*$' "$LOGS/pip.log" | tail -n 1 | cut -c1-200)"
fi
if [[ -n $MISSING ]]; then
  echo "error: missing Python packages: $MISSING; put their wheels in a folder and run with WHEELS=DIR" \
       "(pytorch-pretrained-vit, pure Python: pip wheel pytorch-pretrained-vit==0.0.7 --no-deps -w DIR)$PIP_NOTE" >&2
  exit 2
fi

# 2. The device: a CUDA GPU, or the CPU with --dry_run.
if [[ $DRY == 1 ]]; then
  DEV=cpu; MODEL=micro; SIZE=32; TIMING="--steps 1 --warmup 1"
  TRAIN_IMAGES=40; VAL_IMAGES=10; TEST_IMAGES=20; DATA_ARGS="--image_size 32 --count 4 --rounds 1"
  export CUDA_VISIBLE_DEVICES="" TORCHDYNAMO_DISABLE=1
else
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null || {
    echo "error: no CUDA GPU visible to torch; run with --dry_run to check the steps on the CPU" >&2; exit 2; }
  DEV=cuda; MODEL=L_16_imagenet1k; SIZE=384; TIMING="--steps 10 --warmup 3"
  TRAIN_IMAGES=3680; VAL_IMAGES=1500; TEST_IMAGES=2169; DATA_ARGS="--image_size 384 --count 150 --rounds 2"
fi
mkdir -p -- "$OUT" 2>/dev/null || { echo "error: cannot create $OUT" >&2; exit 2; }
: >"$BENCH"  # only now: a wrong PYTHON, a missing package or no GPU leaves no empty results behind
: >"$CHECKS"
# The logs travel as one archive, rewritten whole after every step (a partial archive is never left).
pack_logs() {
  tar -czf "$OUT/.logs.tar.gz.part" -C "$WORK" logs 2>/dev/null && mv -f -- "$OUT/.logs.tar.gz.part" "$OUT/logs.tar.gz"
}
trap 'pack_logs; rm -rf -- "$WORK"' EXIT
trap 'exit 143' TERM  # so that the EXIT trap packs the logs
trap 'exit 130' INT
BUDGET_S=${BUDGET_S:-420}
START=$SECONDS
now() { echo "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
export TORCHINDUCTOR_CACHE_DIR="$WORK/inductor_cache"  # compiled rows share their kernels

# check NAME KEY=VALUE...: one JSON object in checks.jsonl (values parsed as JSON where they are).
check() {
  "$PY" -c 'import datetime, json, sys
record = {"check": sys.argv[1], "date": datetime.date.today().isoformat(), "device": sys.argv[2]}
for pair in sys.argv[3:]:
    key, value = pair.split("=", 1)
    try:
        record[key] = json.loads(value)
    except ValueError:
        record[key] = value
print(json.dumps(record))' "$1" "$DEV" "${@:2}" >>"$CHECKS"
}

# step NAME LIMIT_S COMMAND...: run under a time limit and within the budget; log to logs/NAME.log and
# one line (name, exit code, seconds, limit) to logs/steps.tsv. Sets STEP_RC (124 when the limit stopped it, 125 when the budget left no room to start it).
step() {
  local name=$1 limit=$2; shift 2
  local left=$(( BUDGET_S - (SECONDS - START) ))
  if (( left < limit / 2 )); then
    echo "== $name: skipped, ${left}s left of the ${BUDGET_S}s budget"
    check "$name" status=skipped reason="time budget" command="$*"
    STEP_RC=125; return
  fi
  (( limit > left )) && limit=$left
  echo "== $name (limit ${limit}s): $*"
  local t0; t0=$(now)
  timeout --kill-after=10 "$limit" "$@" >"$LOGS/$name.log" 2>&1
  STEP_RC=$?
  STEP_S=$(elapsed "$t0")
  tail -n 3 "$LOGS/$name.log" | cut -c1-300
  if (( STEP_RC != 0 )); then
    local reason; reason=$(grep -v '^\s*$' "$LOGS/$name.log" | tail -n 1 | cut -c1-300)
    (( STEP_RC == 124 || STEP_RC == 137 )) && reason="stopped at its ${limit}s limit"
    echo "   failed ($STEP_RC): $reason"
    check "$name" status=failed exit_code=$STEP_RC reason="$reason" seconds=$STEP_S command="$*"
  fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$STEP_RC" "$STEP_S" "$limit" >>"$LOGS/steps.tsv"
  pack_logs
}

# background NAME COMMAND...: start a CPU-only step (making inputs) while the GPU steps run;
# finish NAME waits for it and sets STEP_RC, recording a failure as `step` does.
declare -A BACKGROUND
background() {
  local name=$1; shift
  echo "== $name (in the background): $*"
  ( timeout --kill-after=10 "$BUDGET_S" "$@" >"$LOGS/$name.log" 2>&1 ) &
  BACKGROUND[$name]=$!
}
finish() {
  local name=$1
  wait "${BACKGROUND[$name]}"
  STEP_RC=$?
  tail -n 1 "$LOGS/$name.log" | cut -c1-300
  if (( STEP_RC != 0 )); then
    local reason; reason=$(grep -v '^\s*$' "$LOGS/$name.log" | tail -n 1 | cut -c1-300)
    echo "   failed ($STEP_RC): $reason"
    check "$name" status=failed exit_code=$STEP_RC reason="$reason"
  fi
  pack_logs
}

# bench NAME LIMIT SCRIPT ARGS...: a benchmark row; the last line of its log that starts with '{' (its
# JSON record; a warning may follow it) goes to bench.jsonl.
bench() {
  local name=$1 limit=$2; shift 2
  step "$name" "$limit" "$PY" "$@"
  (( STEP_RC == 0 )) || return 0
  local row; row=$(grep '^{' "$LOGS/$name.log" | tail -n 1)
  if [[ -n $row ]]; then
    echo "$row" >>"$BENCH"
  else
    check "$name" status=failed reason="no JSON row in its log"
  fi
}

VIT="--model $MODEL --image_size $SIZE --device $DEV $TIMING"
# The machine first: every figure below is read against it.
{ echo "\$ nproc"; nproc; echo "\$ free -g"; free -g; echo "\$ df -h /dev/shm"; df -h /dev/shm
  echo "\$ nvidia-smi"; nvidia-smi 2>&1; } >"$LOGS/system.log" 2>&1
step machine 60 "$PY" scripts/dev/machine.py
(( STEP_RC == 0 )) && grep '^{' "$LOGS/machine.log" | tail -n 1 >>"$CHECKS"

# Inputs for the whole-script steps, made on the CPU while the GPU is busy with the steps before them.
background inference_inputs "$PY" scripts/dev/make_inference_bench_inputs.py --out "$WORK/inference" --count $TEST_IMAGES --model $MODEL
background train_inputs "$PY" scripts/make_synthetic_data.py --out "$WORK/pets_sized" --pets_sized $TRAIN_IMAGES $VAL_IMAGES

step cuda_tests 150 "$PY" -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider
(( STEP_RC == 0 )) && check cuda_tests status=ok result="$(tail -n 1 "$LOGS/cuda_tests.log")" seconds=$STEP_S
bench train_fast_b64 60 scripts/dev/bench_train.py $VIT --attention fast --precision bf16 --batch_size 64
bench train_explicit_fp32_b16 60 scripts/dev/bench_train.py $VIT --attention explicit --precision fp32 --batch_size 16
bench train_fast_b16 60 scripts/dev/bench_train.py $VIT --attention fast --precision bf16 --batch_size 16
bench train_sdpa_b64 60 scripts/dev/bench_train.py $VIT --attention sdpa --precision bf16 --batch_size 64
bench infer_fast_b128 60 scripts/dev/bench_infer.py $VIT --attention fast --precision bf16 --batch_size 128

# The grader's command, from process start to CSV, over Pets-sized JPEGs and a random-weight checkpoint.
finish inference_inputs
if (( STEP_RC == 0 )); then
  step p1_inference 90 bash scripts/p1_inference.sh "$WORK/inference/images" "$WORK/inference/pred.csv" "$WORK/inference/$MODEL.pt"
  (( STEP_RC == 0 )) && check p1_inference status=ok images=$TEST_IMAGES seconds=$STEP_S \
    rows=$(( $(wc -l <"$WORK/inference/pred.csv") - 1 )) command="bash scripts/p1_inference.sh IMG_DIR OUT_CSV CKPT"
fi
rm -rf "$WORK/inference"

# A real training run: default settings, random weights (no internet for the pretrained ones).
finish train_inputs
if (( STEP_RC == 0 )); then
  step p1_train 150 "$PY" p1_train.py --data_dir "$WORK/pets_sized" --output_dir "$WORK/p1_train_run" --model $MODEL \
    --image_size $SIZE --no_pretrained --epochs 2 --patience 0 --no_progress
  rates=$(grep -o '[0-9.]* train images/s' "$LOGS/p1_train.log" | cut -d' ' -f1 | paste -sd, -)
  [[ -n $rates ]] && check p1_train status=$([[ $STEP_RC == 0 ]] && echo ok || echo failed) \
    train_img_per_s="[$rates]" train_images=$TRAIN_IMAGES val_images=$VAL_IMAGES batch_size=16 seconds=$STEP_S \
    command="p1_train.py --model $MODEL --no_pretrained --epochs 2 (defaults otherwise)"
fi
rm -rf "$WORK/pets_sized" "$WORK/p1_train_run"

step data 60 "$PY" scripts/dev/bench_data.py $DATA_ARGS --out_dir "$WORK/data_bench"
(( STEP_RC == 0 )) && tail -n 1 "$LOGS/data.log" >>"$CHECKS"
rm -rf "$WORK/data_bench"

# Compiled rows last: compiling ViT-L/16 takes the longest of all steps.
bench train_fast_b64_compile 150 scripts/dev/bench_train.py $VIT --attention fast --precision bf16 --batch_size 64 --compile
bench train_fast_b16_compile 150 scripts/dev/bench_train.py $VIT --attention fast --precision bf16 --batch_size 16 --compile

"$PY" scripts/dev/bench_table.py "$BENCH" "$CHECKS" >"$OUT/.summary.md.part" 2>>"$LOGS/summary.log" \
  && mv -f -- "$OUT/.summary.md.part" "$OUT/summary.md" \
  || { rm -f -- "$OUT/.summary.md.part"; echo "error: could not summarise; see summary.log in $OUT/logs.tar.gz" >&2; }
[[ -e $OUT/summary.md ]] && cat "$OUT/summary.md"
echo "total $(( SECONDS - START )) s; results in $OUT (summary.md, bench.jsonl, checks.jsonl, logs.tar.gz)"
