#!/usr/bin/env bash
# Traceability: every safety requirement SR-nnn named in Firmware-Specs must be named by at least
# one test under Tests/. Lists the requirements without a test and fails when there are any
# (SR_CHECK_STRICT=0 only reports).
set -euo pipefail
cd "$(dirname "$0")/.."
strict=${SR_CHECK_STRICT:-1}
ids=$(grep -rhoE 'SR-[0-9]{3}' Firmware-Specs | sort -u)
total=0; missing=(); tests=0
for id in $ids; do
  total=$((total + 1))
  n=$(grep -rlw -- "$id" Tests | wc -l)
  if [ "$n" -eq 0 ]; then missing+=("$id"); fi
done
tests=$(grep -rhE '@Test\("[^"]*SR-[0-9]{3}' Tests 2>/dev/null | wc -l)
echo "sr-check: ${total} safety requirements in Firmware-Specs; $((total - ${#missing[@]})) named by tests; ${tests} tests name a requirement"
if [ ${#missing[@]} -gt 0 ]; then
  echo "sr-check: requirements with no test naming them: ${missing[*]}"
  if [ "$strict" = "1" ]; then exit 1; fi
fi
