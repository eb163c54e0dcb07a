#!/usr/bin/env bash
# Starts an independent OpenID Provider (panva/oidc-provider) on loopback for
# writ's operator sign-in integration test, and prints its issuer URL:
#
#   export WRIT_OIDC_PROVIDER_URL=$(.ci/oidc/start.sh)
#   go test ./broker/operator/ -run Integration
#   .ci/oidc/stop.sh
#
# Needs node >= 20 and npm. Installs into .ci/oidc/node_modules (npm ci from
# the committed lock file). The port is WRIT_OIDC_PORT, or a free one. The
# provider runs in the background; its pid is in .ci/oidc/provider.pid and its
# log in .ci/oidc/provider.log. Everything but the URL goes to stderr.
set -euo pipefail

dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$dir"

command -v node >/dev/null || { echo "start.sh: node is not installed (need >= 20)" >&2; exit 1; }
command -v npm >/dev/null || { echo "start.sh: npm is not installed" >&2; exit 1; }

if [[ ! -d node_modules/oidc-provider ]]; then
	echo "start.sh: installing oidc-provider into $dir/node_modules" >&2
	npm ci --no-audit --no-fund --loglevel=error >&2
fi

if [[ -f provider.pid ]] && kill -0 "$(cat provider.pid)" 2>/dev/null; then
	echo "start.sh: a provider is already running (pid $(cat provider.pid)); stop it with $dir/stop.sh" >&2
	exit 1
fi

port=${WRIT_OIDC_PORT:-$(node -e '
const s = require("node:net").createServer();
s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')}
url="http://127.0.0.1:${port}"

PORT=$port nohup node provider.mjs >provider.log 2>&1 </dev/null &
echo $! >provider.pid

# Wait until discovery answers (at most 30 s).
if ! node -e '
const url = process.argv[1] + "/.well-known/openid-configuration";
const deadline = Date.now() + 30000;
(async () => {
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok && (await r.json()).issuer === process.argv[1]) process.exit(0);
    } catch {}
    if (Date.now() > deadline) process.exit(1);
    await new Promise((ok) => setTimeout(ok, 200));
  }
})();' "$url"; then
	echo "start.sh: the provider did not answer discovery at $url within 30 s; its log:" >&2
	cat provider.log >&2
	kill "$(cat provider.pid)" 2>/dev/null || true
	rm -f provider.pid
	exit 1
fi

echo "start.sh: oidc-provider is up at $url (pid $(cat provider.pid))" >&2
echo "$url"
