#!/usr/bin/env bash
# Installs the stack tools the tests run for real: prometheus + promtool, amtool, docker-compose.
# Idempotent: installs only what is missing. Non-interactive (CI runs it as root without stdin).
set -euo pipefail

need=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)

if [ ${#need[@]} -eq 0 ]; then
    echo "stack tools present: prometheus, promtool, amtool, docker-compose"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing ${need[*]} and no apt-get here: install them with your package manager" >&2
    exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=(sudo -n env DEBIAN_FRONTEND=noninteractive); else
        echo "missing ${need[*]}: run this script as root (or with sudo) to install them" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() { ${sudo[@]+"${sudo[@]}"} apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null; }
echo "installing ${need[*]}"
# A fresh container has empty package lists: refresh them when the packages are not known yet, and
# once more if the install fails on stale lists.
if ! apt-cache show "${need[@]}" >/dev/null 2>&1; then
    ${sudo[@]+"${sudo[@]}"} apt-get update -q </dev/null
    apt_install
elif ! apt_install; then
    ${sudo[@]+"${sudo[@]}"} apt-get update -q </dev/null
    apt_install
fi
# The packages' post-install scripts may try to start services; nothing here needs them running.
for tool in prometheus promtool amtool docker-compose; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$tool still missing after install" >&2; exit 1; }
done
