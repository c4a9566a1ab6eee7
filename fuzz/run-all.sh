#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 180) from the seed corpus. Needs `cargo install cargo-fuzz`.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-180}
for t in request_body patch query spdy websocket protobuf crd_schema; do
    mkdir -p corpus/$t
    cargo fuzz run --sanitizer none "$t" corpus/$t seeds/$t -- -max_total_time="$secs" -rss_limit_mb=4096
done
