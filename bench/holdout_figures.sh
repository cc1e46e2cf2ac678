#!/usr/bin/env bash
# The held-out figures of a model, per part and in all: AP@0.5, and recall / false positives at
# start.py's score threshold 0.7 (src/evaluation/evaluate_model.py; ignore regions honoured); then
# the mean of the parts' AP, each part weighing the same (the mosaics' many small faces do not
# outweigh the news photos of LFW). Recipes and steps are chosen on these, never on FDDB
# (bench/fddb_figures.sh).
# Usage: bench/holdout_figures.sh MODEL.pb [SHARDS_DIR] [JSON_DIR]
#   SHARDS_DIR: the held-out shards of prepare_data/build_realfaces.sh (default data/realfaces/shards/holdout)
#   JSON_DIR: where to keep the metrics as JSON, one file per part (default: not kept)
# A train.py checkpoint is exported first: python save.py --config C --checkpoint CKPT --output_dir E
#   && python create_pb.py -s E/STEP -o MODEL.pb
case "${1:-}" in -h|--help) sed -n '2,/^[^#]/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;; esac  # the comments above
set -euo pipefail
MODEL=$(realpath -m "${1:?usage: $0 MODEL.pb [SHARDS_DIR] [JSON_DIR]}")  # (paths given: from where it was started)
SHARDS=$(realpath -m "${2:-$(dirname "$0")/../data/realfaces/shards/holdout}")
JSON=$(realpath -m "${3:-$(mktemp -d)}")
cd "$(dirname "$0")/.."
[ -d "$SHARDS" ] || { echo "error: $SHARDS: no such folder of held-out shards (prepare_data/build_realfaces.sh)" >&2; exit 2; }
mkdir -p "$JSON"
parts=()
for part in "$SHARDS"/*/ all; do
  name=$(basename "$part")
  source=$part
  [ "$name" = all ] && source="$SHARDS/*/shard-*.tfrecords"
  if ! line=$(python3 -m src.evaluation.evaluate_model --model "$MODEL" --tfrecords "$source" \
      --json "$JSON/$name.json" --overwrite 2>&1); then
    echo "${line##*$'\n'}" >&2; exit 2  # the evaluator's one-line error
  fi
  line=${line##*$'\n'}
  echo "$name: ${line#*"$MODEL": }"
  [ "$name" = all ] || parts+=("$JSON/$name.json")
done
python3 - "${parts[@]}" <<'PY'
import json, sys
aps = [json.load(open(path))["AP"] for path in sys.argv[1:]]
print(f"mean of {len(aps)} parts: AP@0.5 {sum(aps) / len(aps):.4f}")
PY
