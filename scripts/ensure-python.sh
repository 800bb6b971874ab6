#!/usr/bin/env bash
# Makes sure Debian's Python 3 can run the example's Celery services (examples/ecommerce/python):
# installs python3-celery, python3-kombu, python3-attr and python3-cattr with apt when one of them
# is missing. Silent when everything is there; safe to run again. The packages serve Debian's
# interpreter, /usr/bin/python3, not a python3 another tool put first on the PATH.
set -euo pipefail

PYTHON=/usr/bin/python3
PACKAGES=(python3-celery python3-kombu python3-attr python3-cattr)

present() { [ -x "$PYTHON" ] && "$PYTHON" -c 'import celery, kombu, attr, cattr' 2>/dev/null; }

present && exit 0

if ! command -v apt-get >/dev/null; then
  echo "ensure-python: apt-get is not available; install ${PACKAGES[*]} by hand" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-python: installing ${PACKAGES[*]} needs root" >&2
  exit 1
fi

echo "ensure-python: installing ${PACKAGES[*]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "ensure-python: apt-get failed" >&2
  exit 1
fi
if ! present; then
  echo "ensure-python: installed, but $PYTHON still cannot import celery, kombu, attr and cattr" >&2
  exit 1
fi
echo "ensure-python: $("$PYTHON" -c 'import celery, kombu; print(f"celery {celery.__version__}, kombu {kombu.__version__}")')"
