#!/usr/bin/env bash
# Debian packages the tests use: the GStreamer RTSP server (run with the system python3
# and python3-gi), rtsp-server-perl, the ffmpeg CLI that pushes into it, and chromium,
# which the dashboard's browser tests drive headless through Playwright (never
# `playwright install`: no browser is downloaded outside the package manager), and the
# Mosquitto MQTT broker (the MQTT tests stop and start one of their own, too).
set -euo pipefail
pkgs=(ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
      gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools rtsp-server-perl
      chromium mosquitto)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[system-deps] installing: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
