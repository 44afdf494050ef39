#!/usr/bin/env bash
# The whole pipeline on the embedded default, on the CPU, in a few minutes:
# install what is missing, make a synthetic 37-class set, train the tiny ViT twice with different
# settings, predict a CSV, compare the runs, draw the pictures, measure how far each map can be
# trusted, caption an image.
#   bash scripts/demo.sh [OUT_DIR]        (default: demo_out)
set -euo pipefail
OUT=${1:-demo_out}
case $OUT in -*) OUT=./$OUT ;; esac  # a folder name starting with '-' must not read as an option
cd -- "$(dirname -- "$(readlink -f -- "$0")")/.."  # the repository, also through a symbolic link
PY=${PYTHON:-python3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

echo "== installing what is missing"
PIP_ROOT_USER_ACTION=ignore $PY -m pip install -q --disable-pip-version-check -r requirements.txt

if [ -e "$OUT/run_a" ] || [ -e "$OUT/data/train" ]; then
    echo "error: $OUT already holds a demo; remove it or pass another folder" >&2
    exit 2
fi

echo "== synthetic data: 37 classes, 40 train + 10 val images each, 64 px, masks of the val shapes"
$PY scripts/make_synthetic_data.py --out "$OUT/data" --masks

TINY=(--data_dir "$OUT/data" --model tiny --no_pretrained --device cpu --num_workers 2 --no_progress)
echo "== run a: tiny ViT from scratch, AdamW 3e-3, cosine with warm-up, label smoothing (about 1 minute)"
$PY p1_train.py "${TINY[@]}" --output_dir "$OUT/run_a" --optimizer adamw --lr 3e-3 --weight_decay 0.05 \
    --schedule cosine --warmup_epochs 1 --label_smoothing 0.1 --augment light --batch_size 32 \
    --epochs 15 --patience 0
echo "== run b: the fine-tuning recipe (SGD 1e-4) on the same from-scratch model, 4 epochs"
$PY p1_train.py "${TINY[@]}" --output_dir "$OUT/run_b" --batch_size 32 --epochs 4 --augment light

echo "== predictions for the validation folder, and the comparison of the two runs"
$PY p1_inference.py --ckpt "$OUT/run_a/best.pt" --img_dir "$OUT/data/val" --out_csv "$OUT/val_pred.csv" \
    --confusion "$OUT/confusion.png" --device cpu
$PY scripts/summarize_runs.py "$OUT/run_a" "$OUT/run_b" --out_md "$OUT/runs_summary.md" --out_png "$OUT/runs_curves.png"

echo "== pictures: position-embedding similarity and attention maps of the tiny model"
VAL=("$OUT"/data/val/0_*.png)
$PY p1_vis_pos_embed.py --ckpt "$OUT/run_a/best.pt" --out "$OUT/figures/pos_embed.png"
$PY p1_vis_attention.py --ckpt "$OUT/run_a/best.pt" --images "${VAL[@]:0:3}" --out_dir "$OUT/figures" --device cpu
$PY p1_vis_attention.py --ckpt "$OUT/run_a/best.pt" --images "${VAL[0]}" --out_dir "$OUT/figures" --method rollout --device cpu
$PY p1_vis_attention.py --ckpt "$OUT/run_a/best.pt" --images "${VAL[0]}" --out_dir "$OUT/figures" --method relevancy --device cpu
echo "== the interactive page of every layer, head and map of three images (open it in a browser)"
$PY p1_vis_attention.py --ckpt "$OUT/run_a/best.pt" --images "${VAL[@]:0:3}" --html "$OUT/attention_explorer.html" --device cpu

echo "== how far to trust each map: perturbation tests and localisation on the 370 validation images"
$PY scripts/eval_explanations.py --ckpt "$OUT/run_a/best.pt" --img_dir "$OUT/data/val" \
    --masks_dir "$OUT/data/val_masks" --device cpu --no_progress \
    --out_json "$OUT/explanations.json" --out_png "$OUT/explanations.png"

echo "== problem 2: caption one image with a tiny CATR of RANDOM weights (shows the pipeline only)"
$PY p2_vis_caption.py --images "${VAL[0]}" --out_dir "$OUT/caption" --html "$OUT/caption_explorer.html" \
    --random_weights --config tiny --max_steps 8 --beam 3 --device cpu
echo "   That caption is noise: the model has random weights. Real captions: bash scripts/p2_vis_caption.sh IMG_DIR OUT_DIR"

echo
echo "done. In $OUT:"
echo "  run_a/, run_b/         config.json, metrics.csv, best.pt, last.pt of each run"
echo "  runs_summary.md        the settings table, best run marked; runs_curves.png its curves"
echo "  val_pred.csv           predictions (filename,label); confusion.png"
echo "  figures/               position-embedding similarity, attention and relevancy maps"
echo "  explanations.json/.png perturbation and localisation scores of each map (docs/explanations.md)"
echo "  caption/               a random-weight CATR caption (noise) with one attention panel per token"
echo "  attention_explorer.html, caption_explorer.html   interactive pages of every map: open them in a browser"
