#!/usr/bin/env bash
# The browser the web UI's end-to-end test drives (tests/web/test_browser.py): Debian's or Ubuntu's Chromium.
# Playwright's own browser download is not reachable on these machines, so the distribution's package is used.
# Installs it with apt when missing (as root); otherwise says how. FACEWRIGHT_CHROMIUM names another binary.
set -euo pipefail
for candidate in "${FACEWRIGHT_CHROMIUM:-}" /usr/bin/chromium "$(command -v chromium || true)" \
                 "$(command -v chromium-browser || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    exit 0
  fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium with apt-get (for the web UI's browser test)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "facewright: the browser test needs Chromium, and it is not installed." >&2
echo "  fix: sudo apt-get install chromium (Debian; on Ubuntu: chromium-browser), or set FACEWRIGHT_CHROMIUM" >&2
exit 1
