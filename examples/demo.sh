#!/usr/bin/env bash
# Run the demo in the active Python environment: write the demo corpus, train a small MiniLM tagger on it
# once, and gate it with the pytest plugin. scripts/demo.sh installs the project into .venv, activates it
# and then runs this script.
#
# Everything the demo writes lives under examples/.demo/: data/, model/, cache/, report.json and
# report.md. Delete examples/.demo/model/ to train again.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
demo="examples/.demo"
data="$demo/data"
model="$demo/model"

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
threads="$(nproc 2>/dev/null || echo 2)"

echo "demo: writing the demo corpus to $data"
python -c 'import sys; from pytest_nerrobust.demo import write_demo_corpus; write_demo_corpus(sys.argv[1])' "$data"

# The model is trained once. nerrobust_model.json is written last, so its presence means a whole model.
if [ -f "$model/nerrobust_model.json" ]; then
    echo "demo: using the trained model in $model"
else
    echo "demo: training MiniLM on $data/train.conll (a few minutes on 2 cores)"
    rm -rf "$model.partial"
    nerrobust train "$data/train.conll" --output "$model.partial" \
        --valid "$data/valid.conll" --epochs "${DEMO_EPOCHS:-4}" --learning-rate 2e-4 --threads "$threads"
    rm -rf "$model"
    mv "$model.partial" "$model"
fi

echo "demo: attacking the model with pytest"
exec python -m pytest examples/test_robustness.py -v \
    --ner-model="$model" \
    --ner-data="$data/test.conll" \
    --attack-k=3 \
    --attack-sample=40 \
    --min-f1-under-attack=0.7 \
    --max-attack-success-rate=0.35 \
    --nerrobust-cache-dir="$demo/cache" \
    --nerrobust-report="$demo/report.json" \
    --nerrobust-markdown="$demo/report.md" \
    --nerrobust-offline
