# Sourced by bin/test: the browser tests (tests/web/test_browser.py) drive Debian's Chromium at
# /usr/bin/chromium through Playwright. Install it when it is missing; never `playwright install`
# (no browser download). If it cannot be installed, the browser tests fail rather than skip.
if [ ! -x /usr/bin/chromium ]; then
  echo "browser: /usr/bin/chromium is missing, installing it with apt-get" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
  { $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >&2 \
    || echo "browser: could not install chromium; the browser tests will fail" >&2
fi
