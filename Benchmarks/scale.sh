#!/bin/sh
# Scale benchmark (SPEC §8): 1000 idle devices on 10 TCP buses at 5 Hz, accessgw vs collectd, 3 runs.
# Needs collectd-core (apt-get install collectd-core); pass --no-collectd to measure the gateway alone.
set -e
cd "$(dirname "$0")/.."
swift build -c release --product accessgw
for run in 1 2 3; do .build/release/accessgw bench --scale "$@"; done
