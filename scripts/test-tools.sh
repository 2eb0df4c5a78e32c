#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, on a fresh Debian machine:
# - procps (kill(1), used by the access tests to send SIGHUP),
# - Chromium and ChromeDriver from Debian (the console's browser tests),
# - playwright-core from npm, exactly as tests/browser/package-lock.json pins it,
# - schemathesis from PyPI into target/test-tools/venv (the API fuzz test).
# Safe to run again: what is there is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
packages=()
{ [ -x /bin/kill ] || [ -x /usr/bin/kill ]; } || packages+=(procps)
[ -x /usr/bin/chromium ] || packages+=(chromium chromium-driver)
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)
# Debian splits venv (and its ensurepip) out of python3.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || packages+=(python3 python3-venv)
if [ ${#packages[@]} -gt 0 ]; then
  echo "== apt-get install ${packages[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}"
fi

if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "== npm ci (tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ ! -x target/test-tools/venv/bin/schemathesis ]; then
  echo "== pip install schemathesis (target/test-tools/venv)"
  python3 -m venv target/test-tools/venv
  target/test-tools/venv/bin/pip install -q --disable-pip-version-check 'schemathesis==4.32.5'
fi
