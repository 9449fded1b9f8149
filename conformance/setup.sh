#!/usr/bin/env bash
# Installs the Autobahn|Testsuite fuzzing server (Python 2.7) in a virtualenv
# under target/autobahn/ (ignored by git). Idempotent: an existing
# virtualenv whose packages match requirements.txt is left as it is.
#
#   PYTHON2=/path/to/python2.7 conformance/setup.sh
#
# Default interpreter: pyenv's 2.7.18, else python2.7 on PATH.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here="$root/conformance"
dir="$root/target/autobahn"
venv="$dir/venv"

python2=${PYTHON2:-}
if [[ -z "$python2" ]]; then
    if [[ -x "$HOME/.pyenv/versions/2.7.18/bin/python" ]]; then
        python2="$HOME/.pyenv/versions/2.7.18/bin/python"
    else
        python2=$(command -v python2.7 || true)
    fi
fi
if [[ -z "$python2" ]] || ! "$python2" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
    echo "setup.sh: no Python 2.7 found (set PYTHON2=/path/to/python2.7)" >&2
    exit 1
fi

mkdir -p "$dir"
# virtualenv 16.7 is the last that runs on Python 2.7; installed beside the
# virtualenv, not into the interpreter.
if [[ ! -x "$venv/bin/python" ]]; then
    if [[ ! -f "$dir/bootstrap/virtualenv.py" ]]; then
        timeout 300 "$python2" -m pip install --disable-pip-version-check -q \
            --target "$dir/bootstrap" 'virtualenv==16.7.12'
    fi
    PYTHONPATH="$dir/bootstrap" timeout 300 "$python2" -m virtualenv -q --no-download "$venv"
fi

# Installed only when the pins changed since the last install.
stamp="$venv/.requirements"
if ! cmp -s "$here/requirements.txt" "$stamp"; then
    timeout 900 "$venv/bin/pip" install --disable-pip-version-check -q --no-deps \
        -r "$here/requirements.txt"
    "$venv/bin/pip" check --disable-pip-version-check
    cp "$here/requirements.txt" "$stamp"
fi
echo "fuzzing server: $("$venv/bin/python" -c 'import autobahntestsuite; print(autobahntestsuite.__version__)' 2>/dev/null) in $venv"
