#!/usr/bin/env bash
# Install the named Debian packages, but only those `dpkg -s` reports as missing.
#
#   scripts/ensure-debian-packages.sh python3-venv openssh-server ...
#
# Why a script: `make run` / `make test` must work on a fresh Debian machine, and running
# apt-get on every invocation would be slow and need the network. With nothing missing this
# is a no-op that touches neither the network nor apt's state. `apt-get update` runs at most
# once, and only when something has to be installed. Runs apt-get directly as root, through
# sudo otherwise. On a system without dpkg it says what it would need and leaves it to you.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    exit 0
fi

if ! command -v dpkg >/dev/null 2>&1; then
    echo "ensure-debian-packages: not a Debian system (no dpkg); make sure these are installed: $*" >&2
    exit 0
fi

missing=()
for package in "$@"; do
    # `dpkg -s` also succeeds for removed-but-not-purged packages; check the status line.
    if ! dpkg -s "$package" 2>/dev/null | grep -q '^Status: install ok installed$'; then
        missing+=("$package")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

# sudo resets the environment, so the frontend is passed through `env`.
apt() {
    if [[ $(id -u) -eq 0 ]]; then
        env DEBIAN_FRONTEND=noninteractive apt-get "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo env DEBIAN_FRONTEND=noninteractive apt-get "$@"
    else
        echo "ensure-debian-packages: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
}

echo "ensure-debian-packages: installing ${missing[*]}" >&2
apt update -qq
apt install -y -qq --no-install-recommends "${missing[@]}"
