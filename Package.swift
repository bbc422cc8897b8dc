// swift-tools-version: 6.1
import PackageDescription

// PenWire and PenSafety are the pure core: no Foundation, no dependencies, and they must also
// compile in Embedded Swift with -no-allocations (scripts/embedded-check.sh). Everything that
// touches files, USB, SQLite or the terminal lives in the layers above them.
let strictSwift: [SwiftSetting] = [
  .swiftLanguageMode(.v6),
  .enableUpcomingFeature("ExistentialAny"),
  .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
  name: "PenControl",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "PenWire", targets: ["PenWire"]),
    .library(name: "PenSafety", targets: ["PenSafety"]),
    .library(name: "PenDriver", targets: ["PenDriver"]),
    .library(name: "PenUSB", targets: ["PenUSB"]),
    .library(name: "PenClinic", targets: ["PenClinic"]),
    .library(name: "PenSimulator", targets: ["PenSimulator"]),
    .library(name: "PenSimulatorTestKit", targets: ["PenSimulatorTestKit"]),
    .executable(name: "penctl", targets: ["penctl"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
  ],
  targets: [
    // The wire protocol: frames, CRC-32C, and the message catalogue generated from
    // Firmware-Specs/messages.json by scripts/wirespec.py.
    .target(name: "PenWire", swiftSettings: strictSwift),
    // The safety core shared by the host guard and the pen firmware.
    .target(name: "PenSafety", dependencies: ["PenWire"], swiftSettings: strictSwift),
    // The pen API above any transport.
    .target(
      name: "PenDriver",
      dependencies: ["PenWire", "PenSafety", .product(name: "Crypto", package: "swift-crypto")],
      swiftSettings: strictSwift
    ),
    // libusb 1.0, found through pkg-config.
    .systemLibrary(
      name: "CLibUSB",
      pkgConfig: "libusb-1.0",
      providers: [.apt(["libusb-1.0-0-dev"]), .brew(["libusb"])]
    ),
    .target(
      name: "PenUSB",
      dependencies: ["CLibUSB", "PenWire", "PenDriver"],
      swiftSettings: strictSwift
    ),
    // Presets, calibration, sessions, records, and reading Firmware-Specs from disk.
    .target(
      name: "PenClinic",
      dependencies: [
        "PenWire", "PenSafety", "PenDriver",
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "Yams", package: "Yams"),
        .product(name: "Crypto", package: "swift-crypto"),
      ],
      resources: [.copy("Presets")],
      swiftSettings: strictSwift
    ),
    // The simulated pen lives beside Sources, at the top level, as the mission lays out.
    .target(
      name: "PenSimulator",
      dependencies: [
        "PenWire", "PenSafety", "PenDriver", .product(name: "Crypto", package: "swift-crypto"),
      ],
      path: "Simulator/Sources/PenSimulator",
      swiftSettings: strictSwift
    ),
    // One call starts a simulated pen with a scripted host, for other packages' tests.
    .target(
      name: "PenSimulatorTestKit",
      dependencies: ["PenSimulator", "PenDriver", "PenWire"],
      path: "Simulator/Sources/PenSimulatorTestKit",
      swiftSettings: strictSwift
    ),
    // umockdev (with GLib), found through pkg-config; only the C shim below includes it.
    .systemLibrary(
      name: "CUMockdev",
      path: "Simulator/Sources/CUMockdevShim/umockdev",
      pkgConfig: "umockdev-1.0",
      providers: [.apt(["libumockdev-dev", "umockdev"])]
    ),
    // A small C shim over umockdev's ioctl API for the emulated USB pen (Linux only).
    .target(
      name: "CUMockdevShim",
      dependencies: ["CUMockdev"],
      path: "Simulator/Sources/CUMockdevShim",
      exclude: ["umockdev"],
      sources: ["shim.c"],
      publicHeadersPath: "include",
      linkerSettings: [
        .linkedLibrary("umockdev", .when(platforms: [.linux])),
        .linkedLibrary("gobject-2.0", .when(platforms: [.linux])),
        .linkedLibrary("glib-2.0", .when(platforms: [.linux])),
      ]
    ),
    // The simulated pen on an emulated USB bus that the real libusb sees, through umockdev.
    .target(
      name: "PenUSBEmulator",
      dependencies: ["CUMockdevShim", "PenSimulator", "PenSafety", "PenWire"],
      path: "Simulator/Sources/PenUSBEmulator",
      swiftSettings: strictSwift
    ),
    .executableTarget(
      name: "penctl",
      dependencies: [
        "PenWire", "PenSafety", "PenDriver", "PenUSB", "PenClinic", "PenSimulator",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: strictSwift
    ),
    .testTarget(name: "PenWireTests", dependencies: ["PenWire"], swiftSettings: strictSwift),
    .testTarget(
      name: "PenSafetyTests",
      dependencies: [
        "PenSafety", "PenWire", .product(name: "PropertyBased", package: "swift-property-based"),
      ],
      swiftSettings: strictSwift
    ),
    .testTarget(
      name: "PenClinicTests",
      dependencies: [
        "PenClinic", "PenWire", "PenSafety", "PenDriver", "PenSimulator",
        .product(name: "GRDB", package: "GRDB.swift"),
      ],
      swiftSettings: strictSwift
    ),
    .testTarget(
      name: "PenSimulatorTests",
      dependencies: ["PenSimulator", "PenSimulatorTestKit", "PenSafety", "PenWire"],
      swiftSettings: strictSwift
    ),
    .testTarget(
      name: "PenDriverTests",
      dependencies: ["PenDriver", "PenSimulator", "PenWire"],
      swiftSettings: strictSwift
    ),
    .testTarget(
      name: "PenUSBTests",
      dependencies: [
        "PenUSB", "PenUSBEmulator", "PenSimulator", "PenDriver", "PenSafety", "CLibUSB", "PenWire",
      ],
      swiftSettings: strictSwift,
      // umockdev's preload library in the test binary's NEEDED list (ahead of libc), so that
      // libusb sees the emulated bus without umockdev-wrapper.
      linkerSettings: [.linkedLibrary("umockdev-preload", .when(platforms: [.linux]))]
    ),
    .testTarget(
      name: "EndToEndTests",
      dependencies: [
        "penctl", "PenClinic", "PenWire", .product(name: "GRDB", package: "GRDB.swift"),
      ],
      swiftSettings: strictSwift
    ),
  ]
)
