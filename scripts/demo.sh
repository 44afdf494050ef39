#!/usr/bin/env bash
# The whole pipeline on the embedded default, on the CPU, in a few minutes:
# install what is missing, make a synthetic 37-class set, train the tiny ViT twice with different
# settings, predict a CSV, compare the runs, draw the pictures, measure how far each map can be
# trusted; then train a tiny captioner on synthetic scenes (its ResNet first, then the rest), caption
# three held-out scenes with a map per word, and score its captions and its word maps. Last, the
# demo checks its own numbers against the ranges it gives on every CPU it was run on.
#   bash scripts/demo.sh [OUT_DIR]        (default: demo_out, taken from the folder it is called from)
# Each problem's steps run in one Python process (scripts/run_steps.py): every process would
# otherwise spend seconds importing torch. Each step prints the command it stands for and its time.
set -euo pipefail
if [[ $# -eq 1 && ( $1 == -h || $1 == --help ) ]]; then  # this header, as every script's --help
    sed -n '2,/^[^#]/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit 0
fi
OUT=$(realpath -m -- "${1:-demo_out}")
cd -- "$(dirname -- "$(readlink -f -- "$0")")/.."  # the repository, also through a symbolic link
PY=${PYTHON:-python3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
START=$SECONDS

echo "== installing what is missing"
# pip is asked only when something is missing (scripts/unmet_requirements.py): it takes seconds to find
# nothing to do. A torch already installed is kept, whatever pip would prefer: a research machine's
# torch is built for its CUDA driver. If it does not meet requirements.txt, pip stops and says so;
# nothing is replaced.
if [ -n "$($PY scripts/unmet_requirements.py requirements.txt)" ]; then
    KEEP=()
    if TORCH=$($PY -c "import torch; print(torch.__version__)" 2>/dev/null); then
        KEEP=("torch==${TORCH%%+*}")
    fi
    PIP_ROOT_USER_ACTION=ignore $PY -m pip install -q --disable-pip-version-check -r requirements.txt "${KEEP[@]}"
fi

if [ -e "$OUT/run_a" ] || [ -e "$OUT/data/train" ]; then
    echo "error: $OUT already holds a demo; remove it or pass another folder" >&2
    exit 2
fi
steps() { $PY scripts/run_steps.py "$@"; }

problem1() {
    steps --title "synthetic data: 37 classes, 40 train + 10 val images each, 64 px, masks of the val shapes" \
        scripts/make_synthetic_data.py --out "$OUT/data" --masks

    local TINY=(--data_dir "$OUT/data" --model tiny --no_pretrained --device cpu --num_workers 2 --no_progress)
    local VAL=("$OUT"/data/val/0_*.png)
    steps --title "run a: tiny ViT from scratch, AdamW 3e-3, cosine with warm-up, label smoothing, 6 epochs" \
        p1_train.py "${TINY[@]}" --output_dir "$OUT/run_a" --optimizer adamw --lr 3e-3 --weight_decay 0.05 \
        --schedule cosine --warmup_epochs 1 --label_smoothing 0.1 --augment light --batch_size 32 --epochs 6 --patience 0 \
    ::: --title "run b: the fine-tuning recipe (SGD 1e-4) on the same from-scratch model, 1 epoch" \
        p1_train.py "${TINY[@]}" --output_dir "$OUT/run_b" --batch_size 32 --epochs 1 --augment light \
    ::: --title "predictions for the validation folder, and the comparison of the two runs" \
        p1_inference.py --ckpt "$OUT/run_a/best.pt" --img_dir "$OUT/data/val" --out_csv "$OUT/val_pred.csv" \
        --confusion "$OUT/confusion.png" --device cpu \
    ::: scripts/summarize_runs.py "$OUT/run_a" "$OUT/run_b" --out_md "$OUT/runs_summary.md" --out_png "$OUT/runs_curves.png" \
    ::: --title "pictures: position-embedding similarity; attention, rollout and relevancy maps; the interactive page" \
        p1_vis_pos_embed.py --ckpt "$OUT/run_a/best.pt" --out "$OUT/figures/pos_embed.png" \
    ::: p1_vis_attention.py --ckpt "$OUT/run_a/best.pt" --images "${VAL[@]:0:3}" --out_dir "$OUT/figures" \
        --method last rollout relevancy --html "$OUT/attention_explorer.html" --device cpu \
    ::: --title "how far to trust each map: perturbation tests, localisation and the sanity check, 148 validation images" \
        scripts/eval_explanations.py --ckpt "$OUT/run_a/best.pt" --img_dir "$OUT/data/val" \
        --masks_dir "$OUT/data/val_masks" --limit 148 --device cpu --no_progress \
        --out_json "$OUT/explanations.json" --out_png "$OUT/explanations.png" \
    ::: --title "the report's first claim: do the worse run's maps land worse? both runs on the same 74 images" \
        scripts/eval_explanations.py --ckpt "$OUT/run_a/best.pt" "$OUT/run_b/best.pt" --img_dir "$OUT/data/val" \
        --masks_dir "$OUT/data/val_masks" --limit 74 --sanity_images 0 --device cpu --no_progress \
        --out_json "$OUT/explanations_runs.json" --out_png "$OUT/explanations_runs.png"
}

problem2() {
    steps --title "problem 2's data: 3000 + 50 synthetic scenes of one coloured shape, 96 px, captions and polygons" \
        scripts/make_synthetic_data.py --captions --out "$OUT/scenes" --size 96 --max_shapes 1 --train_scenes 3000

    local ANN=$OUT/scenes/annotations
    local HELD_OUT=("$OUT"/scenes/val/*.png)
    steps --title "a tiny CATR's ResNet (narrow stages) trained alone to tell each scene's shape and colour" \
        scripts/pretrain_backbone.py --data_dir "$OUT/scenes" --config tiny_narrow --image_size 96 --steps 800 \
        --device cpu --no_progress --out "$OUT/captioner_backbone.pt" \
    ::: --title "the captioner trained on it for 2 epochs: backbone frozen, features cached, vocabulary closed to the captions' words" \
        scripts/train_captioner.py --data_dir "$OUT/scenes" --config tiny_narrow --weights "$OUT/captioner_backbone.pt" \
        --image_size 96 --freeze_backbone --cache_features --closed_vocabulary --lr 5e-3 --weight_decay 0.01 \
        --clip_grad 1 --epochs 2 --warmup_epochs 0.25 --device cpu --no_progress --output_dir "$OUT/captioner" \
    ::: --title "three held-out scenes captioned, one map per word: decoder attention, then relevancy" \
        p2_vis_caption.py --images "${HELD_OUT[@]:0:3}" --weights "$OUT/captioner/best.pt" --out_dir "$OUT/caption" \
        --html "$OUT/caption_explorer.html" --beam 3 --device cpu \
    ::: p2_vis_caption.py --images "${HELD_OUT[@]:0:3}" --weights "$OUT/captioner/best.pt" \
        --out_dir "$OUT/caption_relevancy" --method relevancy --device cpu \
    ::: --title "its captions of the 50 held-out scenes, beside the most frequent training caption given to every scene" \
        scripts/eval_captions.py --annotations "$ANN/captions_val.json" --img_dir "$OUT/scenes/val" \
        --weights "$OUT/captioner/best.pt" --out_results "$OUT/captions_val.json" \
        --baseline_from "$ANN/captions_train.json" --device cpu \
    ::: --title "do its word maps point at the shape a word names, and which layer's best? (beside its untrained decoder)" \
        scripts/eval_grounding.py --img_dir "$OUT/scenes/val" --instances "$ANN/instances_val.json" \
        --captions "$ANN/captions_val.json" --words "$ANN/object_words.txt" \
        --weights "$OUT/captioner/best.pt" "$OUT/captioner_backbone.pt" --no_deletion --device cpu --no_progress \
        --out_json "$OUT/grounding.json" --out_png "$OUT/grounding.png"
}

# The two problems share nothing until the last check, so they run side by side, each on half the
# cores: a tiny model gains little from a second thread (the ViT's training nothing, its loader
# workers keeping the other core busy), so two steps at once end sooner than one after the other.
# Problem 2's lines go to a log, printed when problem 1 is done.
mkdir -p "$OUT"
HALF=$(( OMP_NUM_THREADS > 1 ? OMP_NUM_THREADS / 2 : 1 ))
echo "== problem 2 runs beside problem 1, on $HALF of the $OMP_NUM_THREADS threads each; its steps are printed after"
echo "   problem 1's (to follow them as they run: tail -f $OUT/problem2.log)"
OMP_NUM_THREADS=$HALF problem2 > "$OUT/problem2.log" 2>&1 &
PROBLEM2=$!
stop_problem2() {  # a failed or interrupted problem 1 stops problem 2 too, keeping its exit status
    local status=$?
    pkill -TERM -P "$PROBLEM2" 2>/dev/null || true
    kill "$PROBLEM2" 2>/dev/null || true
    exit "$status"
}
trap stop_problem2 EXIT
OMP_NUM_THREADS=$HALF problem1
STATUS=0
wait $PROBLEM2 || STATUS=$?
trap - EXIT
cat "$OUT/problem2.log"
if [ $STATUS -ne 0 ]; then
    echo "error: problem 2 stopped (exit status $STATUS); its log: $OUT/problem2.log" >&2
    exit $STATUS
fi

echo "== the demo's numbers against the ranges it gives on every CPU it was run on"
$PY scripts/check_demo.py "$OUT"

echo
echo "done in $((SECONDS - START)) s. In $OUT:"
echo "  run_a/, run_b/         config.json, metrics.csv, best.pt, last.pt of each run"
echo "  runs_summary.md        the settings table, best run marked; runs_curves.png its curves"
echo "  val_pred.csv           predictions (filename,label); confusion.png"
echo "  figures/               position-embedding similarity, attention, rollout and relevancy maps"
echo "  explanations.json/.png perturbation and localisation scores of each map, with intervals and sanity verdicts"
echo "  explanations_runs.json/.png  both runs on the same images: accuracy against each measure (docs/explanations.md)"
echo "  scenes/, captioner/    the captioned scenes; the captioner's run folder (config.json, metrics.csv, best.pt)"
echo "  captioner_backbone.pt  its ResNet trained alone on the scenes' shapes and colours, where its training started"
echo "  caption/, caption_relevancy/   three held-out scenes, one attention (relevancy) panel per word"
echo "  captions_val.json      its captions of the held-out scenes; grounding.json/.png its word maps' scores"
echo "  attention_explorer.html, caption_explorer.html   interactive pages of every map: open them in a browser"
echo "  problem2.log           what problem 2's steps printed while problem 1 ran"
