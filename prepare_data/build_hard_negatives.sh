#!/usr/bin/env bash
# One round of hard negatives for the real-photo recipe: crops of the training photos where a
# trained detector fires but no face is (hands, ears, logos, clothing), pasted into 3,000 more
# mosaics. Needs the labels of prepare_data/build_realfaces.sh (run it first) and a frozen
# detector to mine with (a model trained on those shards, exported by save.py + create_pb.py).
# Usage: prepare_data/build_hard_negatives.sh REALFACES_DIR MODEL_PB [OUT_DIR] [NAME]
#   OUT_DIR default data/realfaces; NAME default hardneg: crops to OUT_DIR/negatives_NAME, mosaics
#   to OUT_DIR/mosaics_NAME, shards to OUT_DIR/shards/NAME/ (add shards/NAME/*/shard-*.tfrecords to
#   a recipe's train_dataset glob to train on them). SEED (environment, default 2) seeds the mosaics:
#   give each round its own.
# Only the training part of the photos is mined and tiled (OUT_DIR/split/train, written by
# build_realfaces.sh): the held-out photos stay unseen.
# Re-running is cheap: a finished mining or shard folder is kept and reported.
case "${1:-}" in -h|--help) sed -n '2,/^[^#]/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;; esac  # the comments above
set -euo pipefail
R=${1:?usage: $0 REALFACES_DIR MODEL_PB [OUT_DIR] [NAME]}
MODEL=${2:?usage: $0 REALFACES_DIR MODEL_PB [OUT_DIR] [NAME]}
OUT=${3:-data/realfaces}
NAME=${4:-hardneg}
NEG=$OUT/negatives_$NAME
MOSAICS=$OUT/mosaics_$NAME
SHARDS=$OUT/shards/$NAME/mosaics_$NAME
L=$OUT/split/train
cd "$(dirname "$0")/.."
py() { python3 "$@"; }

# 1. Mine: detections scoring >= 0.3 whose crop (box + 10%) touches no label, no border and no
#    face the YuNet teacher finds (in the photo or in the enlarged crop).
[ -e "$NEG/negatives.json" ] && echo "kept: $NEG" || \
py prepare_data/mine_negatives.py --model "$MODEL" --output_dir "$NEG" --min_score 0.3 --margin 0.1 \
  --sources "$R/helmet_scenes/images:$L/helmet_scenes" --sources "$R/mask_scenes/images:$L/mask_scenes" \
  --sources "$R/lfw:$L/lfw" --sources "$R/portraits:$L/portraits"

# 2. Mosaics as in build_realfaces.sh, each with 1-4 mined crops pasted away from every face.
py prepare_data/make_mosaics.py --output_dir "$MOSAICS" --num_images 3000 --size 640 --seed "${SEED:-2}" \
  --negatives "$NEG" --negative_fraction 1.0 \
  --tiles "$R/lfw:$L/lfw:1.0" --tiles "$R/portraits:$L/portraits:1.0" --tiles "$R/ffhq_masked/images:$L/ffhq_masked:0.3" \
  --scenes "$R/helmet_scenes/images:$L/helmet_scenes:1.0" --scenes "$R/mask_scenes/images:$L/mask_scenes:0.5"

# 3. Shards (a folder with shards.json is complete and kept).
[ -e "$SHARDS/shards.json" ] && echo "kept: $SHARDS" || \
py create_tfrecords.py --image_dir "$MOSAICS/images" --annotations_dir "$MOSAICS/annotations" \
  --output "$SHARDS" --num_shards 12 --overwrite
