#!/usr/bin/env bash
# make demo: the whole job on the built-in simulator, in a temporary data directory (a database,
# the simulated pens' memory, and the reports), so it never touches a clinic's records.
#   1. the specs, and the pens (none on USB here; one simulated)
#   2. a technician calibrates a simulated RF pen (rf200) against its reference fixtures
#   3. a clinician screens patient DEMO-0001 and runs the RF test patch on the forehead
#   4. a full RF forehead session the same day is refused: the test patch must be read first
#   5. the forehead preset on a mechanical pen (mn100): treated, recorded, reported
#   6. the records, the session report, and the audit chain verified
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH="${SCRATCH:-.build}"
BIN="$(swift build --scratch-path "$SCRATCH" --show-bin-path)/penctl"
DATA="${PENCONTROL_DEMO_DIR:-$(mktemp -d -t pencontrol-demo.XXXXXX)}"
DB="$DATA/records.sqlite"
step() { printf '\n\033[1m$ penctl %s\033[0m\n' "$*"; }
run() { step "$@"; "$BIN" "$@"; }

run spec
run devices --sim
run calibrate all --sim --technician 7 --db "$DB"
run treat --area forehead --patient DEMO-0001 --fitzpatrick 2 --test-patch --sim --duration 10 --db "$DB"
step treat --area forehead --patient DEMO-0001 --fitzpatrick 2 --sim --duration 30 --db "$DB"
if "$BIN" treat --area forehead --patient DEMO-0001 --fitzpatrick 2 --sim --duration 30 --db "$DB"; then
  echo "demo: expected the full RF session to be refused before the test patch is read" >&2
  exit 1
fi
echo "(refused as expected: exit 66)"
run treat --area forehead --patient DEMO-0002 --fitzpatrick 3 --sim --sim-model mn100 --duration 30 --db "$DB"
run records list --db "$DB"
run report 3 --db "$DB"
run audit verify --db "$DB"
printf '\ndemo: everything is in %s (records.sqlite, sim/, reports/)\n' "$DATA"
