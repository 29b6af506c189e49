#!/usr/bin/env bash
# Contract test: schemathesis (pinned in requirements.txt, installed in a
# virtual environment in the cargo target directory) against the OpenAPI
# document of a freshly built medesk, as an admin and as an applicant.
# Arguments go to run.py (`--backend postgres`, `--max-examples N`, `--role applicant` …).
set -euo pipefail
cd "$(dirname "$0")/../.."

# The cargo target directory (CARGO_TARGET_DIR or ./target) holds the
# virtual environment, the binary and the reports.
target=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
venv="$target/contract-venv"
requirements=tests/contract/requirements.txt
# Reinstalled whenever the pinned version changes.
stamp="$venv/.requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    echo "== installing $(grep -v '^#' "$requirements" | tr '\n' ' ')into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi

cargo build --quiet --bin medesk
exec "$venv/bin/python" tests/contract/run.py \
    --binary "$target/debug/medesk" \
    --schemathesis "$venv/bin/schemathesis" \
    --report-dir "$target/contract" \
    "$@"
