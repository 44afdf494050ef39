#!/usr/bin/env bash
# Prove the GPU figures in one short run on a bare CUDA machine (torch installed, no internet).
#
#   bash scripts/gpu_check.sh OUT_DIR [--dry_run]
#   WHEELS=DIR bash scripts/gpu_check.sh OUT_DIR        # install missing packages from DIR first
#
# Runs, each step under its own time limit and within BUDGET_S seconds in all (default 470, under
# 8 minutes on an H100): the CUDA tests (pytest -m cuda); ViT-L/16 at 384 training rows (fast bf16
# at batch 64 and 16; fast without the fused q/k/v projection; the package's explicit fp32 path) and
# inference at batch 128; the whole scripts/p1_inference.sh over 2,169 JPEGs; p1_train.py for 2
# epochs over 3,680 + 1,500 Pets-sized JPEGs with its default settings, images/s including data
# loading; the data-loading benchmark; last, the training rows with torch.compile at batch 64 and 16.
# The inputs of the whole-script steps are made on the CPU while the GPU steps run.
#
# Writes OUT_DIR/bench.jsonl (one JSON object per benchmark row), OUT_DIR/checks.jsonl (the other
# measurements and each step's outcome), OUT_DIR/summary.md (the tables and the targets, from
# scripts/dev/bench_table.py) and OUT_DIR/logs/. A failed or skipped step is recorded and the run goes on.
# --dry_run runs the same steps on the CPU with the micro model and tiny counts (36 s on 2 idle cores);
# there TORCHDYNAMO_DISABLE=1 makes the --compile rows run eagerly (compiling is what takes time).
# Set PYTHON to choose the interpreter (default: python3). An OUT_DIR holding bench.jsonl or
# checks.jsonl of an earlier run is refused: its results are never overwritten. Nothing is written
# there before the interpreter, the packages and the device have been checked.
set -u
PY=${PYTHON:-python3}

usage() { echo "usage: bash scripts/gpu_check.sh OUT_DIR [--dry_run]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
OUT=$1
DRY=0
if [[ $# -eq 2 ]]; then [[ $2 == --dry_run ]] && DRY=1 || usage; fi
[[ $OUT == --dry_run ]] && usage
case $OUT in -*) OUT=./$OUT ;; esac  # a name starting with '-' must not read as an option
for earlier in bench.jsonl checks.jsonl; do
  if [[ -e $OUT/$earlier ]]; then
    echo "error: $OUT already holds $earlier of an earlier run; give a new OUT_DIR or move it away" >&2; exit 2
  fi
done
# OUT_DIR and WHEELS are taken from the folder the script is called from, before moving to the repository.
if [[ -n ${WHEELS:-} ]]; then
  [[ -d $WHEELS ]] || { echo "error: WHEELS=$WHEELS is not a folder of wheels" >&2; exit 2; }
  WHEELS=$(cd -- "$WHEELS" && pwd)
fi
mkdir -p -- "$OUT/logs" 2>/dev/null || { echo "error: cannot create $OUT" >&2; exit 2; }
OUT=$(cd -- "$OUT" && pwd)
cd -- "$(dirname -- "$(readlink -f -- "$0")")/.."  # the repository, also through a symbolic link
BENCH=$OUT/bench.jsonl
CHECKS=$OUT/checks.jsonl

# 1. Packages: install what is missing from WHEELS (into OUT_DIR/site-packages, nothing else is
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
if [[ -n $MISSING && -n ${WHEELS:-} ]]; then
  export PYTHONPATH="$OUT/site-packages${PYTHONPATH:+:$PYTHONPATH}"
  for module in $MISSING; do
    package=${module//_/-}; [[ $module == PIL ]] && package=Pillow
    # --no-build-isolation: a source archive builds with the setuptools already here, offline
    "$PY" -m pip install --quiet --no-index --no-deps --no-build-isolation --find-links "$WHEELS" \
      --target "$OUT/site-packages" "$package" \
      >>"$OUT/logs/pip.log" 2>&1 || true
  done
  MISSING=$(missing)
fi
if [[ -n $MISSING ]]; then
  echo "error: missing Python packages: $MISSING; put their wheels in a folder and run with WHEELS=DIR" \
       "(pytorch-pretrained-vit, pure Python: pip wheel pytorch-pretrained-vit==0.0.7 --no-deps -w DIR)" >&2
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
: >"$BENCH"  # only now: a wrong PYTHON, a missing package or no GPU leaves no empty results behind
: >"$CHECKS"
BUDGET_S=${BUDGET_S:-470}
START=$SECONDS
now() { echo "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
export TORCHINDUCTOR_CACHE_DIR="$OUT/inductor_cache"  # compiled rows share their kernels

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

# step NAME LIMIT_S COMMAND...: run under a time limit and within the budget; log to logs/NAME.log.
# Sets STEP_RC (124 when the limit stopped it, 125 when the budget left no room to start it).
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
  timeout --kill-after=10 "$limit" "$@" >"$OUT/logs/$name.log" 2>&1
  STEP_RC=$?
  STEP_S=$(elapsed "$t0")
  tail -n 3 "$OUT/logs/$name.log" | cut -c1-300
  if (( STEP_RC != 0 )); then
    local reason; reason=$(grep -v '^\s*$' "$OUT/logs/$name.log" | tail -n 1 | cut -c1-300)
    (( STEP_RC == 124 || STEP_RC == 137 )) && reason="stopped at its ${limit}s limit"
    echo "   failed ($STEP_RC): $reason"
    check "$name" status=failed exit_code=$STEP_RC reason="$reason" seconds=$STEP_S command="$*"
  fi
}

# background NAME COMMAND...: start a CPU-only step (making inputs) while the GPU steps run;
# finish NAME waits for it and sets STEP_RC, recording a failure as `step` does.
declare -A BACKGROUND
background() {
  local name=$1; shift
  echo "== $name (in the background): $*"
  ( timeout --kill-after=10 "$BUDGET_S" "$@" >"$OUT/logs/$name.log" 2>&1 ) &
  BACKGROUND[$name]=$!
}
finish() {
  local name=$1
  wait "${BACKGROUND[$name]}"
  STEP_RC=$?
  tail -n 1 "$OUT/logs/$name.log" | cut -c1-300
  if (( STEP_RC != 0 )); then
    local reason; reason=$(grep -v '^\s*$' "$OUT/logs/$name.log" | tail -n 1 | cut -c1-300)
    echo "   failed ($STEP_RC): $reason"
    check "$name" status=failed exit_code=$STEP_RC reason="$reason"
  fi
}

# bench NAME LIMIT SCRIPT ARGS...: a benchmark row; the last line of its log that starts with '{' (its
# JSON record; a warning may follow it) goes to bench.jsonl.
bench() {
  local name=$1 limit=$2; shift 2
  step "$name" "$limit" "$PY" "$@"
  (( STEP_RC == 0 )) || return 0
  local row; row=$(grep '^{' "$OUT/logs/$name.log" | tail -n 1)
  if [[ -n $row ]]; then
    echo "$row" >>"$BENCH"
  else
    check "$name" status=failed reason="no JSON row in its log"
  fi
}

VIT="--model $MODEL --image_size $SIZE --device $DEV $TIMING"
# Inputs for the whole-script steps, made on the CPU while the GPU is busy with the steps before them.
background inference_inputs "$PY" scripts/dev/make_inference_bench_inputs.py --out "$OUT/inference" --count $TEST_IMAGES --model $MODEL
background train_inputs "$PY" scripts/make_synthetic_data.py --out "$OUT/pets_sized" --pets_sized $TRAIN_IMAGES $VAL_IMAGES

step cuda_tests 150 "$PY" -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider
(( STEP_RC == 0 )) && check cuda_tests status=ok result="$(tail -n 1 "$OUT/logs/cuda_tests.log")" seconds=$STEP_S
bench train_fast_b64 60 scripts/dev/bench_train.py $VIT --attention fast --precision bf16 --batch_size 64
bench train_explicit_fp32_b16 60 scripts/dev/bench_train.py $VIT --attention explicit --precision fp32 --batch_size 16
bench train_fast_b16 60 scripts/dev/bench_train.py $VIT --attention fast --precision bf16 --batch_size 16
bench train_sdpa_b64 60 scripts/dev/bench_train.py $VIT --attention sdpa --precision bf16 --batch_size 64
bench infer_fast_b128 60 scripts/dev/bench_infer.py $VIT --attention fast --precision bf16 --batch_size 128

# The grader's command, from process start to CSV, over Pets-sized JPEGs and a random-weight checkpoint.
finish inference_inputs
if (( STEP_RC == 0 )); then
  step p1_inference 90 bash scripts/p1_inference.sh "$OUT/inference/images" "$OUT/inference/pred.csv" "$OUT/inference/$MODEL.pt"
  (( STEP_RC == 0 )) && check p1_inference status=ok images=$TEST_IMAGES seconds=$STEP_S \
    rows=$(( $(wc -l <"$OUT/inference/pred.csv") - 1 )) command="bash scripts/p1_inference.sh IMG_DIR OUT_CSV CKPT"
fi
rm -rf "$OUT/inference"

# A real training run: default settings, random weights (no internet for the pretrained ones).
finish train_inputs
if (( STEP_RC == 0 )); then
  step p1_train 150 "$PY" p1_train.py --data_dir "$OUT/pets_sized" --output_dir "$OUT/p1_train_run" --model $MODEL \
    --image_size $SIZE --no_pretrained --epochs 2 --patience 0 --no_progress
  rates=$(grep -o '[0-9.]* train images/s' "$OUT/logs/p1_train.log" | cut -d' ' -f1 | paste -sd, -)
  [[ -n $rates ]] && check p1_train status=$([[ $STEP_RC == 0 ]] && echo ok || echo failed) \
    train_img_per_s="[$rates]" train_images=$TRAIN_IMAGES val_images=$VAL_IMAGES batch_size=16 seconds=$STEP_S \
    command="p1_train.py --model $MODEL --no_pretrained --epochs 2 (defaults otherwise)"
fi
rm -rf "$OUT/pets_sized" "$OUT/p1_train_run"

step data 60 "$PY" scripts/dev/bench_data.py $DATA_ARGS --out_dir "$OUT/data_bench"
(( STEP_RC == 0 )) && tail -n 1 "$OUT/logs/data.log" >>"$CHECKS"
rm -rf "$OUT/data_bench"

# Compiled rows last: compiling ViT-L/16 takes the longest of all steps.
bench train_fast_b64_compile 150 scripts/dev/bench_train.py $VIT --attention fast --precision bf16 --batch_size 64 --compile
bench train_fast_b16_compile 150 scripts/dev/bench_train.py $VIT --attention fast --precision bf16 --batch_size 16 --compile

"$PY" scripts/dev/bench_table.py "$BENCH" "$CHECKS" >"$OUT/summary.md" 2>>"$OUT/logs/summary.log" \
  || echo "error: could not summarise; see $OUT/logs/summary.log" >&2
cat "$OUT/summary.md"
echo "total $(( SECONDS - START )) s; results in $OUT (bench.jsonl, checks.jsonl, summary.md, logs/)"
