#!/usr/bin/env bash
# Installs a Vulkan driver that Dawn accepts on a Debian bookworm machine without a GPU: Mesa 25's
# lavapipe (llvmpipe) from bookworm-backports (Mesa 22 from bookworm itself is rejected by Dawn).
# The backports entry is derived from the machine's own debian.sources, changing only the Suites line.
set -euo pipefail
src=/etc/apt/sources.list.d/debian.sources
dst=/etc/apt/sources.list.d/credo-backports.sources
if [ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] && dpkg -s mesa-vulkan-drivers 2>/dev/null | grep -q '^Version: 25'; then
  echo "Mesa Vulkan driver already installed"
  exit 0
fi
[ -f "$src" ] || { echo "no $src: cannot derive a backports entry" >&2; exit 1; }
if [ ! -f "$dst" ]; then
  # first stanza of debian.sources (the main archive), Suites replaced
  awk 'BEGIN { RS = ""; ORS = "\n" } NR == 1 { print }' "$src" | sed 's/^Suites:.*/Suites: bookworm-backports/' > "$dst"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq -t bookworm-backports libvulkan1 mesa-vulkan-drivers >/dev/null
echo "installed: $(dpkg -s mesa-vulkan-drivers | grep '^Version')"
