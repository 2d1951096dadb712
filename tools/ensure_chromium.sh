#!/usr/bin/env bash
# Make sure a headless Chromium is installed: the report pages are checked in a real browser in
# `make test` (tests/browser.py: a screenshot that is not blank, no console errors). Installs
# Debian's package when it is missing and this user may (root with apt-get); otherwise prints
# the command to run and fails. Does nothing when the binary is there.
set -euo pipefail
for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
        exit 0
    fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "chromium is missing: installing Debian's chromium package (about 80 MB)"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
    command -v chromium >/dev/null 2>&1 || { echo "apt-get installed chromium but it is not on PATH" >&2; exit 1; }
    exit 0
fi
cat >&2 <<'MSG'
chromium is not installed, and this user cannot install it (not root, or no apt-get).
The report pages are checked in a headless browser by `make test`. Install it, then run make again:
    sudo apt-get update && sudo apt-get install -y chromium
(on other systems: the distribution's chromium or google-chrome package)
MSG
exit 1
