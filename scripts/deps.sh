#!/usr/bin/env bash
# Installs the system packages the build needs, only when they are missing (idempotent).
# libusb for PenUSB; umockdev (whose preload library is needed even to link) and its headers for
# the emulated USB device; pkg-config to find them (reference: usb-emulation.md); SQLite's headers
# for GRDB (the records store).
set -euo pipefail
packages=(libusb-1.0-0-dev umockdev libumockdev-dev pkg-config libsqlite3-dev python3)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present (${packages[*]})"
  exit 0
fi
echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
