#!/usr/bin/env bash
# Look at tools/serve.py's upload page in a real headless browser (Debian's chromium).
#
#   bash tools/check_page.sh MODEL_DIR [OUT_DIR]        # apt-get install -y chromium
#
# Starts the server on a free 127.0.0.1 port, lets chromium load / (its script fetches /model
# and fills the model line), writes OUT_DIR/page.png (screenshot) and OUT_DIR/page.html (the DOM
# after the script ran), checks the model line was filled, and stops the server.
set -euo pipefail
model_dir=${1:?usage: tools/check_page.sh MODEL_DIR [OUT_DIR]}
out=${2:-output/page_check}
cd "$(dirname "$0")/.."
mkdir -p "$out"
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "chromium not found (apt-get install -y chromium)" >&2; exit 2; }
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python tools/serve.py --model_dir "$model_dir" --port "$port" > "$out/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  python -c "import httpx, sys; sys.exit(httpx.get('http://127.0.0.1:$port/health').status_code != 200)" \
    2>/dev/null && break
  sleep 0.5
done
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --no-first-run
       --disable-extensions --disable-sync --virtual-time-budget=5000 --window-size=900,600)
"$browser" "${flags[@]}" --screenshot="$out/page.png" "http://127.0.0.1:$port/" 2> "$out/chromium.log"
"$browser" "${flags[@]}" --dump-dom "http://127.0.0.1:$port/" > "$out/page.html" 2>> "$out/chromium.log"
if grep -q "loading model info" "$out/page.html"; then
  echo "the page's script did not fill the model line (see $out/page.html)" >&2; exit 1
fi
grep -o '<p id="model">[^<]*</p>' "$out/page.html"
echo "wrote $out/page.png and $out/page.html"
