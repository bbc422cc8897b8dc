#if os(Linux)
  import Foundation
  import PenDriver
  import PenSafety
  import PenSimulator
  import PenUSB
  import PenUSBEmulator
  import PenWire
  import Synchronization
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

      @Test(
        "closing while telemetry flows frees every transfer before the handle, and later calls answer closed"
      )
      func closeWhileTransfersComplete() throws {
        let pen = SimulatedPen(model: .rf200, seed: 42)
        pen.advance(by: PenFirmware.bootTime)
        let emulator = try EmulatedUSBPen(pen: pen)
        try withExtendedLifetime(emulator) {
          let context = try USBContext()
          let found = try context.devices()
          try #require(found.count == 1)
          for round in 0..<10 {
            let transport = try USBPenTransport(context: context, device: found[0])
            _ = try Handshake.perform(over: transport)
            // Transfers complete and resubmit on the event thread while close cancels them.
            _ = try transport.receive(from: .telemetry, timeout: .seconds(2))
            transport.close()
            #expect(transport.inFlightTransfers == 0, "round \(round): a transfer outlived close")
            #expect(transport.isHandleReleased, "round \(round): the handle was not released")
            #expect(throws: TransportError.closed) {
              try transport.send([0x00], timeout: .milliseconds(10))
            }
            #expect(throws: TransportError.closed) { try transport.emergencyStop() }
          }
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

      @Test("a stalled endpoint is reported once, cleared, and the link carries on")
      func stallRecovery() throws {
        try Self.withTransport { _, emulator, transport in
          _ = try Handshake.perform(over: transport)
          emulator.stall(endpoint: 0x01)
          #expect(throws: TransportError.stall(endpoint: .commands)) {
            try transport.send(
              try FrameCodec.encode(.getStatus(GetStatus()), sequence: 1, flags: .ackRequested),
              timeout: .milliseconds(100))
          }
          emulator.stall(endpoint: 0x81)
          #expect(throws: TransportError.stall(endpoint: .responses)) {
            for _ in 0..<50 {
              _ = try transport.receive(from: .responses, timeout: .milliseconds(100))
            }
          }
          // Both halts cleared by the transport: the pen answers again.
          #expect(try Handshake.perform(over: transport).serial.description == "SIM-RF200-000042")
        }
      }

      @Test(
        "SR-015, SR-016, SR-032: a short treatment over USB, unplugged mid-treatment, then reconnected"
      )
      func treatmentOverUSB() async throws {
        let sim = SimulatedPen(model: .rf200, seed: 42)
        sim.advance(by: PenFirmware.bootTime)
        sim.with { $0.physics.skinContact = true }
        var unpluggedAt = Microseconds.zero
        do {
          let emulator = try EmulatedUSBPen(pen: sim)
          let context = try USBContext()
          let transport = try USBPenTransport(context: context, device: try context.devices()[0])
          let pen = try Pen.connect(over: transport)
          let preset = PresetLimits(
            depth: SoftRange(Millimetres(0.75), min: Millimetres(0.5), max: Millimetres(1.0)),
            speed: SoftRange(Hertz(3), min: Hertz(1), max: Hertz(3)),
            rfEnergyPerPin: SoftRange(Millijoules(20), min: Millijoules(10), max: Millijoules(25)),
            rfPulseDuration: Milliseconds(60))
          try pen.load(
            try SessionEnvelope.build(
              model: .rf200, area: .forehead, preset: preset, skin: .typeII), sessionID: 3)
          try pen.set(
            Setpoints(
              depth: Millimetres(0.75), speed: Hertz(3), rfEnergyPerPin: Millijoules(20),
              rfPulseDuration: Milliseconds(60)))
          try pen.arm()
          try pen.start()
          var treating = 0
          for await sample in pen.telemetry where sample.state == .treating {
            treating += 1
            if treating == 60 { break }  // 0.6 s of treatment: a pulse or two at 3 Hz
          }
          #expect(treating == 60)
          unpluggedAt = sim.with { $0.now }
          emulator.unplug()
          var lost = false
          for await event in pen.events where event == .lost {
            lost = true
            break
          }
          #expect(lost, "the host reports the pen lost")
          pen.disconnect()
          withExtendedLifetime((emulator, context)) {}
        }
        // On its own battery the pen went safe within the heartbeat timeout (truth record).
        sim.advance(by: .seconds(1))
        let (truth, state, fault) = sim.with { ($0.truth, $0.core.state, $0.core.latchedFault) }
        #expect(truth.pulses > 0)
        let bound =
          unpluggedAt.rawValue + SafetyTiming.heartbeatTimeout.rawValue + 2
          * SafetyTiming.controlTick.rawValue
        #expect((truth.lastRFOn?.rawValue ?? 0) <= bound)
        #expect(state == .fault && fault == .heartbeatLost)
        // Plugged in again (a new bus): the pen is in fault and does not resume.
        sim.with { $0.inject(ScheduledFault(.usbUnplug, at: $0.now, duration: .zero)) }
        sim.advance(by: .milliseconds(1))
        let emulator = try EmulatedUSBPen(pen: sim)
        try withExtendedLifetime(emulator) {
          let context = try USBContext()
          let transport = try USBPenTransport(context: context, device: try context.devices()[0])
          let again = try Pen.connect(over: transport)
          let status = try again.status()
          #expect(status.state == .fault && status.fault == .heartbeatLost)
          again.disconnect()
        }
      }

      @Test("hotplug: a pen already on the bus is reported as arrived when the watch starts")
      func hotplugArrival() throws {
        let pen = SimulatedPen(model: .rf200, seed: 42)
        pen.advance(by: PenFirmware.bootTime)
        let emulator = try EmulatedUSBPen(pen: pen)
        try withExtendedLifetime(emulator) {
          let context = try USBContext()
          try #require(context.supportsHotplug)
          let seen = Mutex<[HotplugEvent]>([])
          let watch = try context.watchPens { event in seen.withLock { $0.append(event) } }
          defer { watch.cancel() }
          let events = seen.withLock { $0 }
          #expect(events.count == 1)
          guard case .arrived(let device) = events.first else {
            Issue.record("expected an arrival, got \(events)")
            return
          }
          #expect(device.id == USBDeviceID(vendor: 0x1209, product: 0x000A))
          #expect(device.bus == emulator.busNumber && device.address == emulator.deviceAddress)
        }
      }

      @Test("hotplug: a pen unplugged while watched is reported as left")
      func hotplugLeave() throws {
        let pen = SimulatedPen(model: .rf200, seed: 42)
        pen.advance(by: PenFirmware.bootTime)
        let emulator = try EmulatedUSBPen(pen: pen)
        try withExtendedLifetime(emulator) {
          let context = try USBContext()
          try #require(context.supportsHotplug)
          let left = DispatchSemaphore(value: 0)
          let seen = Mutex<[HotplugEvent]>([])
          let watch = try context.watchPens { event in
            seen.withLock { $0.append(event) }
            if case .left = event { left.signal() }
          }
          defer { watch.cancel() }
          emulator.unplug()
          // The leave comes from libusb's udev monitor thread: wait for it, bounded.
          let result = left.wait(timeout: .now() + 5)
          #expect(result == .success, "no leave event after unplug: \(seen.withLock { $0 })")
          let events = seen.withLock { $0 }
          guard case .left(let device)? = events.last else { return }
          #expect(device.bus == emulator.busNumber && device.address == emulator.deviceAddress)
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
