// swift-tools-version: 6.1
import PackageDescription

// PenWire's performance and allocation benchmarks (ordo-one/benchmark), kept in a nested package
// so the root package and its CI never build the benchmark tool. Run them with scripts/bench.sh.
//
// The MallocInterposer trait list is required: the package's default traits pull in a runtime
// interposer that is not mirrored here, and resolution fails without it.
let package = Package(
  name: "PenControlBenchmarks",
  platforms: [.macOS(.v15)],
  dependencies: [
    .package(name: "PenControl", path: ".."),
    .package(
      url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
  ],
  targets: [
    .executableTarget(
      name: "PenWireBenchmarks",
      dependencies: [
        .product(name: "PenWire", package: "PenControl"),
        .product(name: "Benchmark", package: "benchmark"),
      ],
      path: "Benchmarks/PenWireBenchmarks",
      swiftSettings: [.swiftLanguageMode(.v6)],
      plugins: [
        .plugin(name: "BenchmarkPlugin", package: "benchmark")
      ]
    ),
    .executableTarget(
      name: "SafetyBenchmarks",
      dependencies: [
        .product(name: "PenSafety", package: "PenControl"),
        .product(name: "PenWire", package: "PenControl"),
        .product(name: "Benchmark", package: "benchmark"),
      ],
      path: "Benchmarks/SafetyBenchmarks",
      swiftSettings: [.swiftLanguageMode(.v6)],
      plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    ),
    .executableTarget(
      name: "DriverBenchmarks",
      dependencies: [
        .product(name: "PenDriver", package: "PenControl"),
        .product(name: "PenSafety", package: "PenControl"),
        .product(name: "PenWire", package: "PenControl"),
        .product(name: "Benchmark", package: "benchmark"),
      ],
      path: "Benchmarks/DriverBenchmarks",
      swiftSettings: [.swiftLanguageMode(.v6)],
      plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    ),
    .executableTarget(
      name: "SimulatorBenchmarks",
      dependencies: [
        .product(name: "PenSimulator", package: "PenControl"),
        .product(name: "PenWire", package: "PenControl"),
        .product(name: "Benchmark", package: "benchmark"),
      ],
      path: "Benchmarks/SimulatorBenchmarks",
      swiftSettings: [.swiftLanguageMode(.v6)],
      plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    ),
  ]
)
