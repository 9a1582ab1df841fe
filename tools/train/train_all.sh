#!/usr/bin/env bash
# `make models`: trains both small models from scratch (seeded; on 2 cores about 30 min for the LM
# and 23 min for the speech model),
# then exports them into models/ with apr's own import/convert (tools/train/export.sh) and says
# when the speech model is short of its word error rate target.
# usage: tools/train/train_all.sh APR_BINARY [WORK_DIR]
set -euo pipefail
apr=${1:?usage: train_all.sh APR_BINARY [WORK_DIR]}
work=${2:-build/train}
here=$(cd "$(dirname "$0")" && pwd)
"$here/install-deps.sh"
mkdir -p "$work"
/usr/bin/python3 "$here/train_lm.py" "$work/fortune-lm" | tee "$work/fortune-lm.log"
/usr/bin/python3 "$here/train_whisper.py" "$work/speech-commands" | tee "$work/speech-commands.log"
"$here/export.sh" "$apr" "$work" lm
"$here/export.sh" "$apr" "$work" whisper
wer=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["heldout"]["wer"])' "$work/speech-commands/metrics.json")
if ! /usr/bin/python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 0.10 else 1)' "$wer"; then
  echo "train_all: speech-commands reached a held-out WER of $wer, short of the 0.10 target" >&2
fi
