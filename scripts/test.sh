#!/usr/bin/env bash
# Install the project into .venv, then run the test suite. Extra arguments go to pytest.
#
# pytest exits with 5 when it collected no test; that fails here too, so a broken collection cannot
# pass as green.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/install.sh"
cd "$root"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

status=0
"${NERROBUST_VENV:-$root/.venv}/bin/python" -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test: pytest collected no tests (exit 5); check the test paths and the -k/-m filters" >&2
    exit 1
fi
exit "$status"
