#!/usr/bin/env bash
# The browser the web UI's end-to-end test drives (tests/web/test_browser.py).
# Debian: its `chromium` package, installed with apt when missing (as root). Elsewhere (Ubuntu's chromium is a
# snap, which does not run in containers): Playwright's own Chromium, where its download site can be reached.
# FACEWRIGHT_CHROMIUM names another binary. Without any of them this fails: the browser test is never skipped.
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
for candidate in "${FACEWRIGHT_CHROMIUM:-}" /usr/bin/chromium; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    exit 0
  fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium with apt-get (for the web UI's browser test)"
  apt-get update -qq
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    exit 0
  fi
  echo "apt has no usable chromium here; trying Playwright's own build"
fi
if "$PYTHON" -m playwright install --with-deps chromium; then
  exit 0
fi
echo "facewright: the browser test needs Chromium, and none could be installed." >&2
echo "  fix: as root on Debian: apt-get install chromium; elsewhere: $PYTHON -m playwright install chromium," >&2
echo "  or set FACEWRIGHT_CHROMIUM to a Chromium or Chrome binary" >&2
exit 1
