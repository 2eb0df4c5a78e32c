#!/usr/bin/env bash
# The test command of the README: installs the test tools (scripts/test-tools.sh),
# then runs every test of the workspace, the browser and API fuzz tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-tools.sh
cargo test --workspace --locked "$@"
