#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the console's page tests (headless, driven by
# playwright-core, which downloads no browser of its own): installs the chromium package with apt
# when /usr/bin/chromium is missing. Silent when it is there; safe to run again.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

[ -x "$CHROMIUM" ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "ensure-chromium: apt-get is not available; install Chromium by hand" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-chromium: installing chromium needs root" >&2
  exit 1
fi

echo "ensure-chromium: installing chromium"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "ensure-chromium: apt-get failed" >&2
  exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure-chromium: installed, but $CHROMIUM is still missing" >&2
  exit 1
fi
echo "ensure-chromium: $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
