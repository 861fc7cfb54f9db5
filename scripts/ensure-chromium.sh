#!/usr/bin/env bash
# The browser tests drive Debian's Chromium. `npm test` runs this first: when Chromium is missing
# and we may install packages (root with apt-get), it installs it; otherwise it says how.
set -u
chromium="${LLAMACTL_CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "ensure-chromium: installing Debian's chromium for the browser tests (apt-get)" >&2
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) && exit 0
fi
echo "ensure-chromium: the browser tests need Chromium at $chromium: run 'sudo apt-get install chromium' (or set LLAMACTL_CHROMIUM)" >&2
exit 0  # the browser tests then fail with the same message
