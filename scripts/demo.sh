#!/usr/bin/env bash
# The whole pipeline on the embedded default, on the CPU, in a few minutes:
# install what is missing, make a synthetic 37-class set, train the tiny ViT twice with different
# settings, predict a CSV, compare the runs, draw the pictures, measure how far each map can be
# trusted; then train a tiny captioner on synthetic scenes (its ResNet first, then the rest), caption
# three held-out scenes with a map per word, and score its captions and its word maps.
#   bash scripts/demo.sh [OUT_DIR]        (default: demo_out)
set -euo pipefail
OUT=${1:-demo_out}
case $OUT in -*) OUT=./$OUT ;; esac  # a folder name starting with '-' must not read as an option
cd -- "$(dirname -- "$(readlink -f -- "$0")")/.."  # the repository, also through a symbolic link
PY=${PYTHON:-python3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

echo "== installing what is missing"
# A torch already installed is kept, whatever pip would prefer: a research machine's torch is built
# for its CUDA driver. If it does not meet requirements.txt, pip stops and says so; nothing is replaced.
KEEP=()
if TORCH=$($PY -c "import torch; print(torch.__version__)" 2>/dev/null); then
    KEEP=("torch==${TORCH%%+*}")
fi
PIP_ROOT_USER_ACTION=ignore $PY -m pip install -q --disable-pip-version-check -r requirements.txt "${KEEP[@]}"

if [ -e "$OUT/run_a" ] || [ -e "$OUT/data/train" ]; then
    echo "error: $OUT already holds a demo; remove it or pass another folder" >&2
    exit 2
fi

echo "== synthetic data: 37 classes, 40 train + 10 val images each, 64 px, masks of the val shapes"
$PY scripts/make_synthetic_data.py --out "$OUT/data" --masks

TINY=(--data_dir "$OUT/data" --model tiny --no_pretrained --device cpu --num_workers 2 --no_progress)
echo "== run a: tiny ViT from scratch, AdamW 3e-3, cosine with warm-up, label smoothing (about 1.5 minutes)"
$PY p1_train.py "${TINY[@]}" --output_dir "$OUT/run_a" --optimizer adamw --lr 3e-3 --weight_decay 0.05 \
    --schedule cosine --warmup_epochs 1 --label_smoothing 0.1 --augment light --batch_size 32 \
    --epochs 9 --patience 0
echo "== run b: the fine-tuning recipe (SGD 1e-4) on the same from-scratch model, 2 epochs"
$PY p1_train.py "${TINY[@]}" --output_dir "$OUT/run_b" --batch_size 32 --epochs 2 --augment light

echo "== predictions for the validation folder, and the comparison of the two runs"
$PY p1_inference.py --ckpt "$OUT/run_a/best.pt" --img_dir "$OUT/data/val" --out_csv "$OUT/val_pred.csv" \
    --confusion "$OUT/confusion.png" --device cpu
$PY scripts/summarize_runs.py "$OUT/run_a" "$OUT/run_b" --out_md "$OUT/runs_summary.md" --out_png "$OUT/runs_curves.png"

echo "== pictures: position-embedding similarity and attention maps of the tiny model, and the interactive"
echo "   page of every layer, head and map of three images (open it in a browser)"
VAL=("$OUT"/data/val/0_*.png)
$PY p1_vis_pos_embed.py --ckpt "$OUT/run_a/best.pt" --out "$OUT/figures/pos_embed.png"
$PY p1_vis_attention.py --ckpt "$OUT/run_a/best.pt" --images "${VAL[@]:0:3}" --out_dir "$OUT/figures" \
    --html "$OUT/attention_explorer.html" --device cpu
$PY p1_vis_attention.py --ckpt "$OUT/run_a/best.pt" --images "${VAL[0]}" --out_dir "$OUT/figures" --method rollout --device cpu
$PY p1_vis_attention.py --ckpt "$OUT/run_a/best.pt" --images "${VAL[0]}" --out_dir "$OUT/figures" --method relevancy --device cpu

echo "== how far to trust each map: perturbation tests and localisation on the 370 validation images"
$PY scripts/eval_explanations.py --ckpt "$OUT/run_a/best.pt" --img_dir "$OUT/data/val" \
    --masks_dir "$OUT/data/val_masks" --device cpu --no_progress \
    --out_json "$OUT/explanations.json" --out_png "$OUT/explanations.png"

echo "== problem 2: 3000 + 50 synthetic scenes of one coloured shape, 96 px, with captions and polygons"
$PY scripts/make_synthetic_data.py --captions --out "$OUT/scenes" --size 96 --max_shapes 1 --train_scenes 3000
ANN=$OUT/scenes/annotations
echo "== a tiny CATR's ResNet (narrow stages) trained alone to tell each scene's shape and colour (about a minute)"
$PY scripts/pretrain_backbone.py --data_dir "$OUT/scenes" --config tiny_narrow --image_size 96 --steps 800 \
    --device cpu --no_progress --out "$OUT/captioner_backbone.pt"
echo "== the captioner trained on it: backbone frozen, features cached, vocabulary closed to the captions' words"
$PY scripts/train_captioner.py --data_dir "$OUT/scenes" --config tiny_narrow --weights "$OUT/captioner_backbone.pt" \
    --image_size 96 --freeze_backbone --cache_features --closed_vocabulary --lr 5e-3 --weight_decay 0.01 \
    --clip_grad 1 --epochs 2 --warmup_epochs 0.25 --device cpu --no_progress --output_dir "$OUT/captioner"
HELD_OUT=("$OUT"/scenes/val/*.png)
echo "== three held-out scenes captioned, one map per word: decoder attention, then relevancy"
$PY p2_vis_caption.py --images "${HELD_OUT[@]:0:3}" --weights "$OUT/captioner/best.pt" --out_dir "$OUT/caption" \
    --html "$OUT/caption_explorer.html" --beam 3 --device cpu
$PY p2_vis_caption.py --images "${HELD_OUT[@]:0:3}" --weights "$OUT/captioner/best.pt" \
    --out_dir "$OUT/caption_relevancy" --method relevancy --device cpu
echo "== its captions of the 50 held-out scenes, beside the most frequent training caption given to every scene"
$PY scripts/eval_captions.py --annotations "$ANN/captions_val.json" --img_dir "$OUT/scenes/val" \
    --weights "$OUT/captioner/best.pt" --out_results "$OUT/captions_val.json" \
    --baseline_from "$ANN/captions_train.json" --device cpu
echo "== do its word maps point at the shape a word names? (every reference caption, teacher-forced)"
$PY scripts/eval_grounding.py --img_dir "$OUT/scenes/val" --instances "$ANN/instances_val.json" \
    --captions "$ANN/captions_val.json" --words "$ANN/object_words.txt" \
    --weights "$OUT/captioner/best.pt" --no_deletion --device cpu --no_progress \
    --out_json "$OUT/grounding.json" --out_png "$OUT/grounding.png"

echo
echo "done. In $OUT:"
echo "  run_a/, run_b/         config.json, metrics.csv, best.pt, last.pt of each run"
echo "  runs_summary.md        the settings table, best run marked; runs_curves.png its curves"
echo "  val_pred.csv           predictions (filename,label); confusion.png"
echo "  figures/               position-embedding similarity, attention and relevancy maps"
echo "  explanations.json/.png perturbation and localisation scores of each map (docs/explanations.md)"
echo "  scenes/, captioner/    the captioned scenes; the captioner's run folder (config.json, metrics.csv, best.pt)"
echo "  captioner_backbone.pt  its ResNet trained alone on the scenes' shapes and colours, where its training started"
echo "  caption/, caption_relevancy/   three held-out scenes, one attention (relevancy) panel per word"
echo "  captions_val.json      its captions of the held-out scenes; grounding.json/.png its word maps' scores"
echo "  attention_explorer.html, caption_explorer.html   interactive pages of every map: open them in a browser"
