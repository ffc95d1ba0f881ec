#!/usr/bin/env bash
# Install the project into .venv, then run the demo (examples/demo.sh): train a small model on the demo
# corpus once and gate it with the pytest plugin. The reports land in examples/.demo/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/install.sh"
# shellcheck disable=SC1091
. "${NERROBUST_VENV:-$root/.venv}/bin/activate"
exec bash "$root/examples/demo.sh" "$@"
