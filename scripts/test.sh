#!/usr/bin/env bash
# Install the project into .venv, then run the test suite with two pytest-xdist workers. Extra
# arguments go to pytest after the defaults, so `-n 0` runs the tests in one process.
#
# pytest exits with 5 when it runs no test. This script then exits with 1, so a broken collection or
# an over-eager -k filter cannot pass as green.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/install.sh"
cd "$root"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

status=0
"${NERROBUST_VENV:-$root/.venv}/bin/python" -m pytest -n 2 "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test: pytest ran no tests (exit 5); check the test paths and the -k/-m filters" >&2
    exit 1
fi
exit "$status"
