#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real (idempotent).
# Each area appends what it needs to PACKAGES; nothing is downloaded outside the
# package registries. Packaging (make package, deploy/package-test.sh): mmdebstrap or
# debootstrap (the clean Debian 12 root), lintian, apt-utils (apt-ftparchive), binutils
# (strip), python3.11 (the interpreter the packaged environments are made with).
set -euo pipefail
PACKAGES=(iproute2 openjdk-17-jdk-headless maven prometheus openssh-server nmap tcpdump libpcap0.8 tcpreplay tshark aide util-linux bsdutils systemd stress-ng prometheus-alertmanager chromium chromium-driver
  mmdebstrap debootstrap lintian apt-utils binutils python3.11)
# The annual report: its PDF embeds DejaVu, which carries every Vietnamese letter;
# poppler-utils (pdftotext, pdftoppm) reads the PDFs back in the tests.
PACKAGES+=(fonts-dejavu-core poppler-utils)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
