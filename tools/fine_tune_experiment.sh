#!/usr/bin/env bash
# Fine-tuning the shipped model on a folder of one theme, measured on held-out photos
# (README "Training on your own captions"). The theme folder holds Flickr8k dev photos only
# (the shipped model never trained on them), with their captions as .txt sidecars. Five folds:
# each fold holds out a fifth of the photos, fine-tunes on the rest (90% train, 10% dev for
# early stopping), and scores the shipped and the fine-tuned model on the held-out fifth.
#
#   bash tools/fine_tune_experiment.sh [THEME] [-- extra `captioner train` arguments]
#   e.g. bash tools/fine_tune_experiment.sh dog -- --lr 0.0001 --epochs 3 --patience 0
#
# BASE=models/merge fine-tunes the shipped merge model instead of the default (the README's
# figures were measured on the merge model, the default at the time).
set -euo pipefail
cd "$(dirname "$0")/.."
THEME=${1:-dog}
shift || true
[ "${1:-}" = "--" ] && shift
EXTRA=("$@")
[ ${#EXTRA[@]} -eq 0 ] && EXTRA=(--lr 0.0001 --epochs 3 --patience 0)
BIN=${BIN:-target/release/captioner}
FLICKR=${FLICKR:-../shared/flickr8k}
BASE=${BASE:-models/default}
WORK=${WORK:-$(mktemp -d)}
export XDG_DATA_HOME=${XDG_DATA_HOME:-$WORK/data}
python3 tools/make_theme_folder.py "$FLICKR" "$WORK/all" --theme "$THEME"
mapfile -t photos < <(cd "$WORK/all" && ls -- *.jpg | sort)
echo "theme $THEME: ${#photos[@]} photos; train arguments: ${EXTRA[*]}" >&2
bleu4() { grep -o 'BLEU-4 [0-9.]*' | awk '{print $2}'; }
cider() { grep -o 'CIDEr-D [0-9.]*' | awk '{print $2}'; }
for k in 0 1 2 3 4; do
  tune="$WORK/fold$k/tune"; held="$WORK/fold$k/heldout"
  mkdir -p "$tune" "$held"
  for i in "${!photos[@]}"; do
    p=${photos[$i]}; stem=${p%.jpg}
    if [ $((i % 5)) -eq $k ]; then dest=$held; else dest=$tune; fi
    cp "$WORK/all/$p" "$WORK/all/$stem.txt" "$dest/"
  done
  "$BIN" train "$tune" --from "$BASE" --split-fractions 90/10/0 --out "$WORK/fold$k/run" \
    "${EXTRA[@]}" > "$WORK/fold$k/train.log" 2>&1
  base=$("$BIN" eval "$held" --split test --split-fractions 0/0/100 --model "$BASE" 2>&1 \
    | grep 'test split')
  tuned=$("$BIN" eval "$held" --split test --split-fractions 0/0/100 \
    --model "$WORK/fold$k/run/best" 2>&1 | grep 'test split')
  n=$(ls "$held"/*.jpg | wc -l)
  echo "{\"theme\":\"$THEME\",\"fold\":$k,\"heldout_photos\":$n,\"base_bleu4\":$(echo "$base" | bleu4),\"base_cider_d\":$(echo "$base" | cider),\"tuned_bleu4\":$(echo "$tuned" | bleu4),\"tuned_cider_d\":$(echo "$tuned" | cider)}"
done | tee "$WORK/folds.jsonl"
python3 - "$WORK/folds.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
mean = lambda k: sum(r[k] for r in rows) / len(rows)
better = sum(r["tuned_bleu4"] > r["base_bleu4"] for r in rows)
print(f"mean over {len(rows)} folds: BLEU-4 {mean('base_bleu4'):.4f} -> {mean('tuned_bleu4'):.4f}, "
      f"CIDEr-D {mean('base_cider_d'):.4f} -> {mean('tuned_cider_d'):.4f}; "
      f"BLEU-4 better in {better} of {len(rows)} folds")
PY
