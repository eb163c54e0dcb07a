#!/usr/bin/env bash
# Stops the provider start.sh started, by the pid it recorded.
set -euo pipefail
dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -f "$dir/provider.pid" ]]; then
	kill "$(cat "$dir/provider.pid")" 2>/dev/null || true
	rm -f "$dir/provider.pid"
fi
