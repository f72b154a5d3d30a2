#!/usr/bin/env bash
# Create .venv/ in the project root and install the service into it (idempotent).
#   bash scripts/setup.sh          the service and the web app
#   bash scripts/setup.sh --test   also the test tools and Debian's chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"
# torch first, pinned in requirements.txt only: a bare torch requirement would pull GBs of CUDA packages
$PIP install "$(grep -E '^torch==' requirements.txt)"
if [ "${1:-}" = "--test" ]; then
  $PIP install -e '.[app,build,test]'
  # chromium for the browser tests; an emoji font so that screenshots show the chat's 👍 / 👎 as a user sees them
  if [ ! -x /usr/bin/chromium ] || [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
  fi
else
  $PIP install -e '.[app,build]'
fi
