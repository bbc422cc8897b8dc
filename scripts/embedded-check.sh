#!/usr/bin/env bash
# Compiles the pure core (PenWire, then PenSafety against it) in Embedded Swift with
# -no-allocations for each microcontroller triple. A class, an existential, an escaping array or
# untyped throws anywhere in these modules fails this check (reference: swift-tooling.md).
set -euo pipefail
cd "$(dirname "$0")/.."
triples=(${EMBEDDED_TRIPLES:-armv7em-none-none-eabi riscv32-none-none-eabi})
modules=(${EMBEDDED_MODULES:-PenWire PenSafety})
out=.build-embedded
for triple in "${triples[@]}"; do
  dir="$out/$triple"
  mkdir -p "$dir"
  for module in "${modules[@]}"; do
    files=$(find "Sources/$module" -name '*.swift' | sort)
    swiftc -enable-experimental-feature Embedded -wmo -parse-as-library -Osize -no-allocations \
      -target "$triple" -module-name "$module" -I "$dir" \
      -emit-module -emit-module-path "$dir/$module.swiftmodule" \
      -c -o "$dir/$module.o" $files
    size=$(stat -c %s "$dir/$module.o")
    echo "embedded: $module for $triple compiled with -no-allocations ($size bytes of object code)"
  done
done
