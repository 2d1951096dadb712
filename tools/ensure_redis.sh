#!/usr/bin/env bash
# Make sure `redis-server` is installed: the online store's redis backend and its tests run a
# real one. Installs Debian's package when it is missing and this user may (root with apt-get);
# otherwise prints the command to run and fails. Does nothing when the binary is there.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "redis-server is missing: installing Debian's redis-server package"
    apt-get update
    # No service start: the project starts its own redis-server (athlete-platform online-store up).
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server
    command -v redis-server >/dev/null 2>&1 || { echo "apt-get installed redis-server but it is not on PATH" >&2; exit 1; }
    exit 0
fi
cat >&2 <<'MSG'
redis-server is not installed, and this user cannot install it (not root, or no apt-get).
The online store's redis backend and its tests need it. Install it, then run make again:
    sudo apt-get update && sudo apt-get install -y redis-server
(on other systems: the distribution's redis package, or https://redis.io/docs/latest/operate/oss_and_stack/install/)
MSG
exit 1
