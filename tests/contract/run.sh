#!/usr/bin/env bash
# Contract test: schemathesis (pinned in requirements.txt, installed in a
# virtual environment under target/) against the OpenAPI document of a
# freshly built medesk, as an admin and as an applicant. Arguments go to
# run.py (`--backend postgres`, `--max-examples N`, `--role applicant` …).
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/contract-venv
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
    --binary target/debug/medesk \
    --schemathesis "$venv/bin/schemathesis" \
    "$@"
