#if os(Linux)
  import PenDriver
  import PenSimulator
  import PenUSB
  import PenUSBEmulator
  import PenWire
  import Testing

  /// PenUSB — the real libusb code, asynchronous IN transfers and all — against the simulated pen
  /// presented as a USB device through umockdev. The emulator is process-wide, so these run in
  /// series, and every transport is closed before its emulator goes (usb-emulation.md).
  extension EmulatedUSBBus {
    @Suite("PenUSB over the emulated bus", .serialized)
    struct USBTransportTests {
      /// A booted simulated pen behind an emulated USB device, and a transport opened on it.
      static func withTransport(
        _ body: (SimulatedPen, EmulatedUSBPen, USBPenTransport) throws -> Void
      ) throws {
        let pen = SimulatedPen(model: .rf200, seed: 42)
        pen.advance(by: PenFirmware.bootTime)
        let emulator = try EmulatedUSBPen(pen: pen)
        try withExtendedLifetime(emulator) {
          let context = try USBContext()
          let found = try context.devices()
          try #require(found.count == 1)
          #expect(context.serialNumber(of: found[0]) == "SIM-RF200-000042")
          let transport = try USBPenTransport(context: context, device: found[0])
          defer { transport.close() }
          try body(pen, emulator, transport)
        }
      }

      @Test("enumerate, open and hand-shake with the pen through libusb")
      func handshakeOverUSB() throws {
        try Self.withTransport { _, _, transport in
          let info = try Handshake.perform(over: transport)
          #expect(info.serial.description == "SIM-RF200-000042")
          #expect(info.catalogueHash == MessageCatalogue.hash)
        }
      }

      @Test("telemetry arrives on the interrupt endpoint through the asynchronous transfers")
      func telemetryOverInterrupt() throws {
        try Self.withTransport { _, _, transport in
          _ = try Handshake.perform(over: transport)
          var telemetry = 0
          for _ in 0..<5 {
            let bytes = try transport.receive(from: .telemetry, timeout: .seconds(2))
            if case .telemetry = try FrameCodec.decode(bytes).message { telemetry += 1 }
          }
          #expect(telemetry == 5)
        }
      }

      @Test("SR-022: the endpoint-0 emergency stop reaches the pen through libusb")
      func emergencyStopOverUSB() throws {
        try Self.withTransport { pen, _, transport in
          _ = try Handshake.perform(over: transport)
          try transport.emergencyStop()
          #expect(pen.with { $0.core.state } == .estop)
        }
      }

      @Test("nothing to read within the timeout is a typed timeout")
      func timeout() throws {
        try Self.withTransport { _, emulator, transport in
          emulator.advancesTimeWhileWaiting = false  // the pen's clock stands still: no new frames
          // Drain whatever the pen queued before its clock stopped (boot status, heartbeats).
          var drained = 0
          while (try? transport.receive(from: .responses, timeout: .milliseconds(100))) != nil
            && drained < 50
          {
            drained += 1
          }
          #expect(throws: TransportError.timeout(endpoint: .responses, after: .milliseconds(20))) {
            try transport.receive(from: .responses, timeout: .milliseconds(20))
          }
        }
      }

      @Test("unplugged during treatment: the transport reports the pen disconnected")
      func unplugDuringTreatment() throws {
        try Self.withTransport { pen, emulator, transport in
          _ = try Handshake.perform(over: transport)
          emulator.unplug()
          #expect(throws: TransportError.disconnected) {
            for _ in 0..<100 {
              _ = try transport.receive(from: .telemetry, timeout: .milliseconds(200))
            }
          }
          #expect(throws: TransportError.disconnected) {
            try transport.send([0x50], timeout: .milliseconds(10))
          }
          #expect(!pen.with { $0.plugged })
        }
      }
    }
  }
#endif
