#!/usr/bin/env bash
# PenWire benchmarks (ordo-one/benchmark), in the nested package Benchmarks/.
#
#   scripts/bench.sh run [ARGS...]   full run, prints the table (wallClock and throughput are per
#                                    frame: each iteration handles 1,000 frames and the output is
#                                    scaled); extra ARGS go to `swift package benchmark run`
#   scripts/bench.sh check           the allocation gate: a short run checked against
#                                    Benchmarks/Thresholds/ (mallocCountTotal only, expected 0);
#                                    exits non-zero when a benchmark allocates
#   scripts/bench.sh update          rewrites Benchmarks/Thresholds/ from a fresh run, keeping only
#                                    mallocCountTotal (review the diff before committing it)
#
# Works from any directory. The build goes to Benchmarks/.build (git-ignored); the first build of
# the benchmark tool takes about a minute.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SWIFT="${SWIFT:-swift}"
cd "$ROOT/Benchmarks"

case "${1:-}" in
  run)
    shift
    "$SWIFT" package benchmark run --no-progress "$@"
    ;;
  check)
    # PENWIRE_BENCH_QUICK caps each benchmark at a few hundred iterations (see the benchmark's
    # configuration): enough samples for an allocation count, a few seconds in all.
    status=0
    PENWIRE_BENCH_QUICK=1 "$SWIFT" package benchmark thresholds check --no-progress || status=$?
    case $status in
      0) echo "bench: allocation thresholds hold (mallocCountTotal)" ;;
      4)
        # 4 means better than the thresholds only: not a failure, but the thresholds are stale.
        echo "bench: fewer allocations than Benchmarks/Thresholds/ records; run scripts/bench.sh update"
        ;;
      *)
        echo "bench: allocation thresholds FAILED (exit $status): a benchmark now allocates;" \
          "find where with: (cd Benchmarks && swift package benchmark run --allocation-stacks)" >&2
        exit "$status"
        ;;
    esac
    ;;
  update)
    "$SWIFT" package --allow-writing-to-package-directory benchmark thresholds update --no-progress
    # Keep only the allocation count: time and throughput vary too much between machines to gate on.
    python3 - Thresholds <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    data = json.loads(path.read_text())
    if "mallocCountTotal" not in data:  # benchmarks that measure speed only carry no gate
        path.unlink()
        continue
    path.write_text(json.dumps({"mallocCountTotal": data["mallocCountTotal"]}, indent=2, separators=(",", " : ")) + "\n")
    print(f"bench: {path}: mallocCountTotal = {data['mallocCountTotal']}")
PY
    ;;
  *)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
