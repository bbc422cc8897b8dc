#!/usr/bin/env bash
# libFuzzer targets of the nested package Fuzz/ (one per folder Fuzz/Sources/Fuzz*/).
#
#   scripts/fuzz.sh build            build every fuzz target (release, libFuzzer + AddressSanitizer)
#   scripts/fuzz.sh run [SECONDS]    build, replay Fuzz/Regressions/<target>/, then fuzz each target
#                                    for SECONDS (default 60) from Fuzz/Corpus/<target>/; exits
#                                    non-zero on any crash, whose input lands in Fuzz/artifacts/<target>/
#   scripts/fuzz.sh regress          build and replay only the saved reproducers (Fuzz/Regressions/)
#   scripts/fuzz.sh seed             rewrite the seed files of Fuzz/Corpus/FuzzFrameDecoder/ from
#                                    Firmware-Specs/vectors/frames.json
#   scripts/fuzz.sh merge            fold the inputs that `run` found (Fuzz/.build/new-corpus/) into
#                                    the committed corpus, keeping only those that add edge coverage
#
# `run` never writes to the committed corpus: new inputs go to Fuzz/.build/new-corpus/<target>/
# and crashes to Fuzz/artifacts/<target>/ (both git-ignored), so a CI run leaves the tree clean.
# Set FUZZ_TARGETS="FuzzA FuzzB" to pick targets, FUZZ_MAX_LEN to change the input size limit
# (default 1024 bytes; 4096 for FuzzPresetFile, whose seeds are whole preset files). A target with
# a libFuzzer dictionary, Fuzz/Dictionaries/<target>.dict, is run with it.
# Build recipe and run environment: shared/reference/swift-tooling.md, 'Fuzzing (libFuzzer)'.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/Fuzz"
SWIFT="${SWIFT:-swift}"
BIN_DIR="$FUZZ/.build/release"
NEW_CORPUS="$FUZZ/.build/new-corpus"
LOGS="$FUZZ/.build/fuzz-logs"
ARTIFACTS="$FUZZ/artifacts"
# Swift's own backtracer would catch the crash before libFuzzer saves the input.
export SWIFT_BACKTRACE=enable=no

# The input size limit of a target.
max_len() {
  case "$1" in
    FuzzPresetFile) echo "${FUZZ_MAX_LEN:-4096}" ;;
    *) echo "${FUZZ_MAX_LEN:-1024}" ;;
  esac
}

# The dictionary of a target, Fuzz/Dictionaries/<target>.dict; nothing when it has none.
dictionary() {
  local file="$FUZZ/Dictionaries/$1.dict"
  if [ -f "$file" ]; then echo "$file"; fi
}

targets() {
  if [ -n "${FUZZ_TARGETS:-}" ]; then
    echo "$FUZZ_TARGETS"
    return
  fi
  local dir
  for dir in "$FUZZ"/Sources/Fuzz*/; do
    basename "$dir"
  done
}

build() {
  local target
  for target in $(targets); do
    echo "fuzz: building $target"
    (cd "$FUZZ" && "$SWIFT" build -c release --product "$target" \
      --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address)
  done
}

# Prints 'execs executed, execs/s, seconds' from libFuzzer's final stats in a log.
stats() {
  local log=$1 execs rate
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  echo "${execs:-?} execs, ${rate:-?} execs/s"
}

regress() {
  local failed=0 target files
  for target in $(targets); do
    [ -d "$FUZZ/Regressions/$target" ] || continue
    files=("$FUZZ/Regressions/$target"/*)
    [ -e "${files[0]}" ] || continue
    echo "fuzz: $target: replaying ${#files[@]} reproducer(s) from Fuzz/Regressions/$target/"
    if ! "$BIN_DIR/$target" "${files[@]}" >"$LOGS/$target.regress.log" 2>&1; then
      echo "fuzz: $target: a saved reproducer still crashes (log: $LOGS/$target.regress.log)" >&2
      grep -E "^Running:|invariant violated|bytes checked|Fatal error|ERROR: (AddressSanitizer|libFuzzer)|#[0-9]+ 0x[0-9a-f]+ in [$]s" \
        "$LOGS/$target.regress.log" | head -20 | { "$SWIFT" demangle --simplified 2>/dev/null || cat; } >&2 || true
      failed=1
    fi
  done
  return $failed
}

# True when a run stopped on a libFuzzer timeout whose input, replayed alone, runs in time. On a
# loaded machine a process can be descheduled for longer than -timeout (seen here: 17-26 s stalls
# in a malloc or a string append, on inputs that take 20 ms). The decoders are deterministic, so a
# real hang reproduces, and stays a failure.
stalled() {
  local target=$1 log=$2 input
  grep -q "ERROR: libFuzzer: timeout" "$log" || return 1
  input=$(sed -n 's/.*Test unit written to \(.*timeout-[0-9a-f]*\)$/\1/p' "$log" | tail -1)
  [ -n "$input" ] && [ -f "$input" ] || return 1
  "$BIN_DIR/$target" -timeout=10 "$input" >"$log.replay" 2>&1
}

run() {
  local seconds=${1:-60} failed=0 target corpus log status dict
  mkdir -p "$LOGS"
  regress || failed=1
  for target in $(targets); do
    corpus="$FUZZ/Corpus/$target"
    mkdir -p "$NEW_CORPUS/$target" "$ARTIFACTS/$target" "$corpus"
    log="$LOGS/$target.log"
    echo "fuzz: $target for ${seconds}s (corpus Fuzz/Corpus/$target, new inputs in ${NEW_CORPUS#"$ROOT"/}/$target)"
    status=0
    # The first corpus folder receives new inputs; the committed one is only read.
    dict=()
    if [ -n "$(dictionary "$target")" ]; then dict=(-dict="$(dictionary "$target")"); fi
    "$BIN_DIR/$target" -max_total_time="$seconds" -use_value_profile=1 \
      -max_len="$(max_len "$target")" "${dict[@]}" -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$ARTIFACTS/$target/" \
      "$NEW_CORPUS/$target" "$corpus" >"$log" 2>&1 || status=$?
    grep -E "^#[0-9]+[[:space:]]+DONE" "$log" | tail -1 || true
    if [ "$status" -ne 0 ] && stalled "$target" "$log"; then
      echo "fuzz: $target: stopped after $(stats "$log") by a timeout that does not reproduce: the" \
        "input runs in time alone, so the machine stalled (log: $log); not counted" >&2
    elif [ "$status" -ne 0 ]; then
      failed=1
      echo "fuzz: $target CRASHED (exit $status) after $(stats "$log"); log: $log" >&2
      # The message, the Swift frames of the stack (demangled) and where the input was saved.
      grep -E "invariant violated|bytes checked|Fatal error|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY|#[0-9]+ 0x[0-9a-f]+ in [$]s|Test unit written" \
        "$log" | head -20 | { "$SWIFT" demangle --simplified 2>/dev/null || cat; } >&2 || true
    else
      echo "fuzz: $target: no crash in ${seconds}s: $(stats "$log")"
    fi
  done
  return $failed
}

merge() {
  local target
  for target in $(targets); do
    [ -d "$NEW_CORPUS/$target" ] || continue
    mkdir -p "$FUZZ/Corpus/$target"
    echo "fuzz: merging ${NEW_CORPUS#"$ROOT"/}/$target into Fuzz/Corpus/$target"
    # Edge and counter features only (no value profile), and a set cover of them: far fewer files
    # than the run kept (FuzzPresetFile: 1 226 instead of 2 322 from the same inputs).
    "$BIN_DIR/$target" -set_cover_merge=1 -max_len="$(max_len "$target")" \
      "$FUZZ/Corpus/$target" "$NEW_CORPUS/$target"
    rm -rf "${NEW_CORPUS:?}/$target"
  done
}

# One seed per golden vector: mode A (byte 0 even, bytes as-is) for every vector, and mode B
# (byte 0 odd, length and CRC fixed up) for the valid ones as well.
seed() {
  python3 - "$ROOT/Firmware-Specs/vectors/frames.json" "$FUZZ/Corpus/FuzzFrameDecoder" <<'PY'
import json, pathlib, re, sys

vectors = json.loads(pathlib.Path(sys.argv[1]).read_text())
out = pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for old in out.glob("seed-*"):
    old.unlink()

MODE_A, MODE_B = 0x10, 0x11  # byte 0: even = as-is, odd = CRC fix-up; 0x10 >> 1 = 8 feeds the stream a header's worth first
def write(name, mode, frame):
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    (out / f"seed-{safe}").write_bytes(bytes([mode]) + frame)

count = 0
for v in vectors["valid"]:
    frame = bytes.fromhex(v["hex"])
    write(f"valid-{v['name']}-A", MODE_A, frame)
    write(f"valid-{v['name']}-B", MODE_B, frame)
    count += 2
for v in vectors["malformed"]:
    write(f"malformed-{v['name']}-A", MODE_A, bytes.fromhex(v["hex"]))
    count += 1
print(f"fuzz: wrote {count} seeds to {out} "
      f"({len(vectors['valid'])} valid x 2 modes, {len(vectors['malformed'])} malformed)")
PY
}

case "${1:-}" in
  build) build ;;
  run)
    build
    run "${2:-60}"
    ;;
  regress)
    build
    mkdir -p "$LOGS"
    regress
    ;;
  seed) seed ;;
  merge)
    build
    merge
    ;;
  *)
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
