#!/usr/bin/env bash
# Builds the hard-negative shards of configs/realfaces_stage7.json: crops of the training photos
# where a trained detector fires but no face is (hands, ears, logos, clothing), pasted into 3,000
# more mosaics. Needs the labels of prepare_data/build_realfaces.sh (run it first) and a frozen
# detector to mine with (stage 4's: see the README, "The shipped model").
# Usage: prepare_data/build_hard_negatives.sh REALFACES_DIR MODEL_PB [OUT_DIR] [ROUND]   (OUT_DIR default: data/realfaces)
# The shards go to OUT_DIR/shards/hardneg, outside the glob of stages 1-4 (shards/train*).
# ROUND (default 1) = 2 is a second round with a later detector (configs/realfaces_stage11.json mines with
# stage 7): crops to negatives_stage7 (the same folder build_small_face_mosaics.sh mines into), mosaics
# with seed 4 to mosaics_negs2, shards to shards/negs2 (outside stage 7's glob, shards/[th]*).
# ROUND = 3 mines with stage 15 (configs/realfaces_stage16.json): crops to negatives_stage15, mosaics with
# seed 5 to mosaics_negs3, shards to shards/mined3 (outside the glob shards/[thn]* of stages 11-15).
# ROUND = 4 mines with stage 16 (configs/realfaces_stage17.json): negatives_stage16, seed 6, mosaics_negs4,
# shards to shards_round4/mined4 (outside stage 16's glob, shards/[thmn]*).
set -euo pipefail
R=${1:?usage: $0 REALFACES_DIR MODEL_PB [OUT_DIR] [ROUND]}
MODEL=${2:?usage: $0 REALFACES_DIR MODEL_PB [OUT_DIR] [ROUND]}
OUT=${3:-data/realfaces}
case "${4:-1}" in
  1) NEG=$OUT/negatives; MOSAICS=$OUT/mosaics_negs; SEED=2; SHARDS=$OUT/shards/hardneg/mosaics_negs ;;
  2) NEG=$OUT/negatives_stage7; MOSAICS=$OUT/mosaics_negs2; SEED=4; SHARDS=$OUT/shards/negs2/mosaics_negs2 ;;
  3) NEG=$OUT/negatives_stage15; MOSAICS=$OUT/mosaics_negs3; SEED=5; SHARDS=$OUT/shards/mined3/mosaics_negs3 ;;
  4) NEG=$OUT/negatives_stage16; MOSAICS=$OUT/mosaics_negs4; SEED=6; SHARDS=$OUT/shards_round4/mined4/mosaics_negs4 ;;
  *) echo "error: ROUND must be 1, 2, 3 or 4, got $4" >&2; exit 2 ;;
esac
L=$OUT/labels
cd "$(dirname "$0")/.."
py() { python3 "$@"; }

# 1. Mine: detections scoring >= 0.3 whose crop (box + 10%) touches no label, no border and no
#    face the YuNet teacher finds (in the photo or in the enlarged crop).
[ -e "$NEG/negatives.json" ] && echo "kept: $NEG" || \
py prepare_data/mine_negatives.py --model "$MODEL" --output_dir "$NEG" --min_score 0.3 --margin 0.1 \
  --sources "$R/helmet_scenes/images:$L/helmet_scenes" --sources "$R/mask_scenes/images:$L/mask_scenes" \
  --sources "$R/lfw:$L/lfw" --sources "$R/portraits:$L/portraits"

# 2. Mosaics as in build_realfaces.sh (seed 2; rounds 2-4: 4, 5, 6), each with 1-4 mined crops pasted away from every face.
py prepare_data/make_mosaics.py --output_dir "$MOSAICS" --num_images 3000 --size 640 --seed "$SEED" \
  --negatives "$NEG" --negative_fraction 1.0 \
  --tiles "$R/lfw:$L/lfw:1.0" --tiles "$R/portraits:$L/portraits:1.0" --tiles "$R/ffhq_masked/images:$L/ffhq_masked:0.3" \
  --scenes "$R/helmet_scenes/images:$L/helmet_scenes:1.0" --scenes "$R/mask_scenes/images:$L/mask_scenes:0.5"

# 3. Shards (a folder with shards.json is complete and kept).
[ -e "$SHARDS/shards.json" ] && echo "kept: $SHARDS" || \
py create_tfrecords.py --image_dir "$MOSAICS/images" --annotations_dir "$MOSAICS/annotations" \
  --output "$SHARDS" --num_shards 12 --overwrite
