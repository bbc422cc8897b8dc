#if os(Linux)
  import Foundation
  import PenDriver
  import PenSimulator
  import PenUSB
  import PenUSBEmulator
  import PenWire
  import Testing

  /// A measurement, not a test: it asserts nothing about time and runs only when asked for.
  ///
  ///     PENCONTROL_MEASURE=1 swift test --disable-xctest --filter RoundTripMeasurement
  ///
  /// prints the round trip of a get_status command through the Pen API, over the in-process
  /// loopback and over libusb and the emulated USB device (where the emulation dominates).
  extension EmulatedUSBBus {
    @Suite(
      "Command round trip (measurement)",
      .enabled(if: ProcessInfo.processInfo.environment["PENCONTROL_MEASURE"] == "1"))
    struct RoundTripMeasurement {
      static let count = 1_000

      static func measure(_ pen: Pen) throws -> (p50: Double, p99: Double) {
        var samples: [Double] = []
        let clock = ContinuousClock()
        for _ in 0..<Self.count {
          let start = clock.now
          _ = try pen.status()
          let elapsed = clock.now - start
          samples.append(
            Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6
          )
        }
        samples.sort()
        return (samples[samples.count / 2], samples[samples.count * 99 / 100])
      }

      @Test("get_status round trip over loopback and over the emulated USB device")
      func roundTrips() throws {
        let sim = SimulatedPen(model: .rf200, seed: 42)
        sim.advance(by: PenFirmware.bootTime)
        let loopback = try Pen.connect(over: LoopbackTransport(pen: sim))
        let l = try Self.measure(loopback)
        loopback.disconnect()
        print(
          String(
            format: "round trip, loopback: p50 %.1f us, p99 %.1f us (%d commands)", l.p50, l.p99,
            Self.count))

        let usbSim = SimulatedPen(model: .rf200, seed: 43)
        usbSim.advance(by: PenFirmware.bootTime)
        let emulator = try EmulatedUSBPen(pen: usbSim)
        try withExtendedLifetime(emulator) {
          let context = try USBContext()
          let pen = try Pen.connect(
            over: try USBPenTransport(context: context, device: try context.devices()[0]))
          let u = try Self.measure(pen)
          pen.disconnect()
          print(
            String(
              format: "round trip, emulated USB: p50 %.1f us, p99 %.1f us (%d commands)", u.p50,
              u.p99, Self.count))
        }
      }
    }
  }
#endif
