// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets for PenControl's decoders, kept in a nested package so the root build never
// needs the sanitizer flags. Each fuzz target is an executable in its own folder,
// Sources/<Target>/, with an `@_cdecl("LLVMFuzzerTestOneInput")` entry point and no main (libFuzzer
// supplies it), a seed corpus in Corpus/<Target>/ and reproducers in Regressions/<Target>/.
// Build and run them with scripts/fuzz.sh; a plain `swift build` links no main and fails, by design.
//
// To add one (preset files, calibration records, CLI overrides, ...): create
// Sources/Fuzz<Thing>/Fuzz<Thing>.swift and add `fuzzTarget("Fuzz<Thing>", [<products>])` below;
// scripts/fuzz.sh finds every Sources/Fuzz*/ folder by itself.

func fuzzTarget(_ name: String, _ products: [String]) -> Target {
  .executableTarget(
    name: name,
    dependencies: products.map { .product(name: $0, package: "PenControl") },
    path: "Sources/\(name)",
    swiftSettings: [.swiftLanguageMode(.v6)]
  )
}

let package = Package(
  name: "PenControlFuzz",
  platforms: [.macOS(.v15)],
  dependencies: [
    .package(name: "PenControl", path: "..")
  ],
  targets: [
    // Frames: FrameCodec.decode and StreamDecoder on arbitrary bytes, and on frames whose length
    // and CRC are fixed up so the fuzzer reaches field decoding.
    fuzzTarget("FuzzFrameDecoder", ["PenWire"]),
    // Calibration records: CalibrationRecord.decode on arbitrary bytes, and on 64-byte records
    // whose CRC is fixed up so the fuzzer reaches the reserved-byte and field-range checks.
    fuzzTarget("FuzzCalibrationRecord", ["PenWire"]),
    // Preset files: PresetFile.decode (Yams underneath) on arbitrary text; every accepted preset
    // is checked against the hard limits and must build its session envelopes.
    fuzzTarget("FuzzPresetFile", ["PenClinic", "PenSafety", "PenWire"]),
    // What an operator types: CommandLineValues (overrides, skin type) and the simulator's
    // fault text (penctl treat --fault).
    fuzzTarget(
      "FuzzCommandLineValues", ["PenClinic", "PenSafety", "PenWire", "PenSimulator"]),
  ]
)
