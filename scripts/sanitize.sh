#!/usr/bin/env bash
# The driver, USB, simulator, clinic and end-to-end tests under ThreadSanitizer and
# AddressSanitizer (with LeakSanitizer).
#
#   scripts/sanitize.sh thread     build with --sanitize=thread into .build-tsan, run the tests
#   scripts/sanitize.sh address    the same with --sanitize=address into .build-asan
#   scripts/sanitize.sh all        both, one after the other (the default)
#
# Each run builds the tests (and penctl, which the end-to-end tests start, so it runs sanitized
# too) in its own scratch folder, so the normal .build is never invalidated; then runs Swift
# Testing only (--disable-xctest) over SANITIZE_FILTER (a --filter regex; by default
# PenDriverTests, PenUSBTests, PenSimulatorTests, PenClinicTests and EndToEndTests, less
# PenSimulatorTests under TSan, for the reason given below). Sanitizer reports go to files, one
# per process, under <scratch>/sanitizer-reports/ — not to stderr, where they would mix with what
# the end-to-end tests read from penctl (and could fill its pipe). A run fails when a test fails
# or any process left a report; the reports' summaries are printed, demangled, with the path of
# each full report. Prints the wall time of the build and of the tests, and closes with one line
# per sanitizer.
#
# Third-party false positives are suppressed in scripts/sanitize/*.supp, each with its reason.
# Swift's Synchronization.Mutex is made visible to TSan by scripts/sanitize/tsan-mutex.c (see
# there), preloaded into the test processes; nothing of ours is suppressed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUPP="$ROOT/scripts/sanitize"
SWIFT="${SWIFT:-swift}"
SUITES="PenDriverTests|PenUSBTests|PenSimulatorTests|PenClinicTests|EndToEndTests"
# PenSimulatorTests start no thread: they drive the firmware synchronously through HostScript on
# the test's own thread, and the PenSimulator module has no @unchecked Sendable, so the compiler
# already rules out races there. Under TSan they are CPU-bound simulation at 10 kHz control ticks:
# about 130 of 230 s of the TSan test time here, checking nothing TSan can check. The firmware
# does run on other threads (the Pen's thread, umockdev's worker) in PenDriverTests,
# PenClinicTests, PenUSBTests and EndToEndTests, which TSan runs. ASan runs all five.
TSAN_SUITES="PenDriverTests|PenUSBTests|PenClinicTests|EndToEndTests"
cd "$ROOT"

# The toolchain's own clang (it knows swiftcall) and runtime directory.
TOOLCHAIN_BIN="$(dirname "$(readlink -f "$(command -v "$SWIFT")")")"
SWIFTC="$TOOLCHAIN_BIN/swiftc"
CLANG="$TOOLCHAIN_BIN/clang"
[ -x "$CLANG" ] || CLANG=clang
SYNCHRONIZATION_LIB="$TOOLCHAIN_BIN/../lib/swift/linux/libswiftSynchronization.so"

# Builds the Mutex annotations for TSan and checks that they still wrap what the runtime has.
build_tsan_mutex() {
  local out=$1 symbol defined
  defined=$(nm -D --defined-only "$SYNCHRONIZATION_LIB")
  for symbol in \
    '$s15Synchronization12_MutexHandleV9_lockSlowyys6UInt32VF' \
    '$s15Synchronization12_MutexHandleV12_tryLockSlowSbyF' \
    '$s15Synchronization12_MutexHandleV11_unlockSlowyyF'; do
    if ! grep -qF " $symbol" <<<"$defined"; then
      echo "sanitize: $SYNCHRONIZATION_LIB no longer defines $symbol: update" \
        "scripts/sanitize/tsan-mutex.c for this toolchain (its Mutex slow paths have moved)" >&2
      return 1
    fi
  done
  "$CLANG" -O1 -fPIC -shared -Wall -Werror -o "$out" "$SUPP/tsan-mutex.c"
}

# Proves the TSan set-up before trusting a clean run: with the annotations preloaded, a contended
# Mutex gives no report and a real race still gives one (scripts/sanitize/tsan-canary.swift).
tsan_canary() {
  local dir=$1 preload=$2 status
  "$SWIFTC" -sanitize=thread -g -o "$dir/tsan-canary" "$SUPP/tsan-canary.swift"
  status=0
  LD_PRELOAD="$preload" TSAN_OPTIONS=log_path="$dir/canary-mutex" \
    "$dir/tsan-canary" mutex >/dev/null || status=$?
  if [ "$status" -ne 0 ] || compgen -G "$dir/canary-mutex.*" >/dev/null; then
    echo "sanitize: canary: a contended Mutex was reported as a race (exit $status):" \
      "scripts/sanitize/tsan-mutex.c no longer annotates this toolchain's Mutex" >&2
    return 1
  fi
  status=0
  LD_PRELOAD="$preload" TSAN_OPTIONS=log_path="$dir/canary-race" \
    "$dir/tsan-canary" race >/dev/null || status=$?
  if [ "$status" -ne 66 ] || ! compgen -G "$dir/canary-race.*" >/dev/null; then
    echo "sanitize: canary: an unsynchronised write was NOT reported (exit $status):" \
      "ThreadSanitizer is not seeing races in this set-up" >&2
    return 1
  fi
  echo "sanitize: canary: a contended Mutex is clean and a real race is reported"
}

# Prints each report's summary (demangled) and where the full report is, to stderr; prints the
# number of reports.
show_reports() {
  local dir=$1 count=0 report
  for report in "$dir"/*; do
    [ -e "$report" ] || continue
    count=$((count + 1))
    echo "--- $report" >&2
    { grep -E "^(WARNING|ERROR): |^SUMMARY: " "$report" || head -5 "$report"; } |
      { "$SWIFT" demangle --simplified 2>/dev/null || cat; } >&2
  done
  echo "$count"
}

SUMMARY=()
FAILED=0

# Records a run's closing line (and prints it at once).
record() {
  SUMMARY+=("$1")
  echo "$1"
}

run() {
  local sanitizer=$1 scratch reports start built finished status=0 count=0 verdict
  case $sanitizer in
    thread) scratch=.build-tsan ;;
    address) scratch=.build-asan ;;
  esac
  reports="$ROOT/$scratch/sanitizer-reports"
  echo "sanitize: $sanitizer: building into $scratch"
  start=$(date +%s)
  # Checked by hand: `run` is called in an `||` list by `all`, where set -e does not apply.
  if ! "$SWIFT" build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch"; then
    record "sanitize: $sanitizer: FAILED to build ($(($(date +%s) - start)) s)"
    FAILED=1
    return
  fi
  built=$(date +%s)
  echo "sanitize: $sanitizer: build took $((built - start)) s"
  rm -rf "$reports"
  mkdir -p "$reports"

  local -a env=()
  case $sanitizer in
    thread)
      rm -rf "$ROOT/$scratch/canary"
      mkdir -p "$ROOT/$scratch/canary"
      if ! build_tsan_mutex "$ROOT/$scratch/libpencontrol-tsan-mutex.so" ||
        ! tsan_canary "$ROOT/$scratch/canary" "$ROOT/$scratch/libpencontrol-tsan-mutex.so"; then
        record "sanitize: thread: FAILED: the TSan set-up did not pass its canary"
        FAILED=1
        return
      fi
      # Every race of a run, not only the first; both stacks of a lock-order inversion.
      local tsan="log_path=$reports/tsan:suppressions=$SUPP/tsan.supp"
      tsan+=":halt_on_error=0:second_deadlock_stack=1"
      env+=(
        "LD_PRELOAD=$ROOT/$scratch/libpencontrol-tsan-mutex.so${LD_PRELOAD:+:$LD_PRELOAD}"
        "TSAN_OPTIONS=$tsan"
      )
      ;;
    address)
      # The sanitizer runtime is linked statically into each binary, so umockdev's preload (in
      # the test binary's NEEDED list) does not trip ASan's library-order check. Stack
      # use-after-return catches a pointer that escaped a withUnsafe… closure.
      env+=(
        "ASAN_OPTIONS=log_path=$reports/asan:detect_leaks=1:detect_stack_use_after_return=1"
        "LSAN_OPTIONS=suppressions=$SUPP/lsan.supp:print_suppressions=0"
      )
      ;;
  esac
  local filter=${SANITIZE_FILTER:-$SUITES}
  if [ "$sanitizer" = thread ] && [ -z "${SANITIZE_FILTER:-}" ]; then
    filter=$TSAN_SUITES
    echo "sanitize: thread: not running PenSimulatorTests: no threads there (single-threaded" \
      "simulation; see scripts/sanitize.sh); set SANITIZE_FILTER to run them anyway"
  fi
  echo "sanitize: $sanitizer: running $filter"
  # --skip-build: the build above is the one to test (and was timed on its own); the preload is
  # only for the test processes, not for the compilers.
  env "${env[@]}" "$SWIFT" test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" \
    --disable-xctest --filter "$filter" || status=$?
  finished=$(date +%s)
  count=$(show_reports "$reports")
  if [ "$status" -eq 0 ] && [ "$count" -eq 0 ]; then
    verdict="passed"
  else
    verdict="FAILED (tests exit $status, $count process(es) with reports in"
    verdict+=" $scratch/sanitizer-reports/)"
    FAILED=1
  fi
  verdict+="; build $((built - start)) s, tests $((finished - built)) s"
  record "sanitize: $sanitizer: $verdict"
}

case "${1:-all}" in
  thread | address) run "$1" ;;
  all)
    run thread || true
    run address || true
    printf '%s\n' "${SUMMARY[@]}"
    ;;
  *)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
exit $FAILED
