#!/usr/bin/env bash
# The official-client tests with the 8.x client. Creates .venv-es8 once (client 8.x, pytest,
# pytest-asyncio); the sidecar under test runs from the project's .venv as a subprocess on a free
# port and is stopped by its PID (tests/api/sidecar_process.py).
#   tests/api/run_es8.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-es8
REQUIREMENTS=(-r tests/api/requirements-es8.txt)

if ! "$VENV/bin/python" -c 'import sys, elasticsearch, pytest_asyncio; sys.exit(elasticsearch.__versionstr__[:2] != "8.")' 2>/dev/null; then
  rm -rf "$VENV"
  .venv/bin/python -m venv "$VENV"  # same interpreter version as the project
  "$VENV/bin/python" -m pip install -q "${REQUIREMENTS[@]}"
fi
"$VENV/bin/python" -c 'import elasticsearch; print("elasticsearch client", elasticsearch.__versionstr__)'
# --confcutdir keeps the project's own conftest (and its imports) out of this environment.
SIDECAR_SERVER_PYTHON="$PWD/.venv/bin/python" exec "$VENV/bin/python" -m pytest tests/api/test_es_client.py \
  --confcutdir=tests/api -p no:cacheprovider -q "$@"
