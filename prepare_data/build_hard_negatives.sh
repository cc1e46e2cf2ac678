#!/usr/bin/env bash
# Builds the hard-negative shards of configs/realfaces_stage7.json: crops of the training photos
# where a trained detector fires but no face is (hands, ears, logos, clothing), pasted into 3,000
# more mosaics. Needs the labels of prepare_data/build_realfaces.sh (run it first) and a frozen
# detector to mine with (stage 4's: see the README, "The shipped model").
# Usage: prepare_data/build_hard_negatives.sh REALFACES_DIR MODEL_PB [OUT_DIR]   (OUT_DIR default: data/realfaces)
# The shards go to OUT_DIR/shards/hardneg, outside the glob of stages 1-4 (shards/train*).
set -euo pipefail
R=${1:?usage: $0 REALFACES_DIR MODEL_PB [OUT_DIR]}
MODEL=${2:?usage: $0 REALFACES_DIR MODEL_PB [OUT_DIR]}
OUT=${3:-data/realfaces}
L=$OUT/labels
cd "$(dirname "$0")/.."
py() { python3 "$@"; }

# 1. Mine: detections scoring >= 0.3 whose crop (box + 10%) touches no label, no border and no
#    face the YuNet teacher finds (in the photo or in the enlarged crop).
[ -e "$OUT/negatives/negatives.json" ] && echo "kept: $OUT/negatives" || \
py prepare_data/mine_negatives.py --model "$MODEL" --output_dir "$OUT/negatives" --min_score 0.3 --margin 0.1 \
  --sources "$R/helmet_scenes/images:$L/helmet_scenes" --sources "$R/mask_scenes/images:$L/mask_scenes" \
  --sources "$R/lfw:$L/lfw" --sources "$R/portraits:$L/portraits"

# 2. Mosaics as in build_realfaces.sh (seed 2), each with 1-4 mined crops pasted away from every face.
py prepare_data/make_mosaics.py --output_dir "$OUT/mosaics_negs" --num_images 3000 --size 640 --seed 2 \
  --negatives "$OUT/negatives" --negative_fraction 1.0 \
  --tiles "$R/lfw:$L/lfw:1.0" --tiles "$R/portraits:$L/portraits:1.0" --tiles "$R/ffhq_masked/images:$L/ffhq_masked:0.3" \
  --scenes "$R/helmet_scenes/images:$L/helmet_scenes:1.0" --scenes "$R/mask_scenes/images:$L/mask_scenes:0.5"

# 3. Shards (a folder with shards.json is complete and kept).
[ -e "$OUT/shards/hardneg/mosaics_negs/shards.json" ] && echo "kept: $OUT/shards/hardneg/mosaics_negs" || \
py create_tfrecords.py --image_dir "$OUT/mosaics_negs/images" --annotations_dir "$OUT/mosaics_negs/annotations" \
  --output "$OUT/shards/hardneg/mosaics_negs" --num_shards 12 --overwrite
