#if os(Linux)
  import CLibUSB
  import Foundation
  import PenSimulator
  import PenUSBEmulator
  import PenWire
  import Testing

  /// The simulated pen on an emulated USB bus (umockdev), driven through the real libusb.
  /// Serialized: umockdev's $UMOCKDEV_DIR is process-wide, and one emulator exists at a time.
  extension EmulatedUSBBus {
    @Suite("Emulated USB pen", .serialized)
    struct EmulatedUSBTests {
      /// A factory-new RF-200, booted.
      static func bootedPen() -> SimulatedPen {
        let pen = SimulatedPen(model: .rf200, seed: 42)
        pen.advance(by: PenFirmware.bootTime)
        return pen
      }

      @Test(
        "a fresh libusb context finds exactly the pen, with the descriptors and strings of usb.md")
      func enumerate() throws {
        let pen = Self.bootedPen()
        let emulator = try EmulatedUSBPen(pen: pen)
        try withExtendedLifetime(emulator) {
          let usb = try LibUSBSession()
          defer { usb.close() }
          var list: UnsafeMutablePointer<OpaquePointer?>? = nil
          let count = libusb_get_device_list(usb.context, &list)
          defer { libusb_free_device_list(list, 1) }
          try #require(count == 1)
          let device = try #require(list?[0])
          var descriptor = libusb_device_descriptor()
          #expect(libusb_get_device_descriptor(device, &descriptor) == 0)
          #expect(descriptor.idVendor == 0x1209)
          #expect(descriptor.idProduct == 0x000A)
          #expect(descriptor.bcdUSB == 0x0200)
          #expect(descriptor.bNumConfigurations == 1)
          #expect(libusb_get_bus_number(device) == emulator.busNumber)
          #expect(libusb_get_device_address(device) == emulator.deviceAddress)
          #expect(libusb_get_device_speed(device) == Int32(LIBUSB_SPEED_FULL.rawValue))

          var config: UnsafeMutablePointer<libusb_config_descriptor>? = nil
          try #require(libusb_get_config_descriptor(device, 0, &config) == 0)
          defer { libusb_free_config_descriptor(config) }
          let c = try #require(config).pointee
          #expect(c.bNumInterfaces == 1)
          let interface = c.interface[0].altsetting[0]
          #expect(interface.bInterfaceNumber == 0)
          #expect(interface.bInterfaceClass == 0xFF)
          #expect(interface.bInterfaceSubClass == 0x50)
          #expect(interface.bInterfaceProtocol == 0x01)
          let endpoints = (0..<Int(interface.bNumEndpoints)).map { interface.endpoint[$0] }
          #expect(endpoints.map(\.bEndpointAddress) == [0x01, 0x81, 0x82])
          #expect(endpoints.map { $0.bmAttributes & 0x3 } == [2, 2, 3])
          #expect(endpoints.map(\.wMaxPacketSize) == [64, 64, 64])
          #expect(endpoints[2].bInterval == 1)

          // The strings come over endpoint 0 as standard GET_DESCRIPTOR requests.
          let handle = try usb.open()
          let serial = pen.with { fw in
            String(decoding: (0..<fw.serial.length).map { fw.serial.storage[$0] }, as: UTF8.self)
          }
          #expect(usb.string(handle, descriptor.iManufacturer) == "PenControl")
          #expect(usb.string(handle, descriptor.iProduct) == Self.modelName("rf200"))
          #expect(usb.string(handle, descriptor.iSerialNumber) == serial)
          #expect(serial == "SIM-RF200-000042")
        }
      }

      @Test(
        "hello over bulk OUT is answered with device_info on bulk IN; telemetry on interrupt IN")
      func helloAndTelemetry() throws {
        let pen = Self.bootedPen()
        let emulator = try EmulatedUSBPen(pen: pen)
        try withExtendedLifetime(emulator) {
          let usb = try LibUSBSession()
          defer { usb.close() }
          let handle = try usb.open()
          // Auto-detach exercises DISCONNECT_CLAIM, as most hosts use it.
          #expect(libusb_set_auto_detach_kernel_driver(handle, 1) == 0)
          try #require(libusb_claim_interface(handle, 0) == 0)
          defer { libusb_release_interface(handle, 0) }

          var hello = try FrameCodec.encode(
            .hello(Hello(protocolVersion: 1, catalogueHash: MessageCatalogue.hash)), sequence: 0,
            flags: .ackRequested)
          var sent: Int32 = 0
          #expect(libusb_bulk_transfer(handle, 0x01, &hello, Int32(hello.count), &sent, 1000) == 0)
          #expect(Int(sent) == hello.count)

          // The pen may have a status or heartbeat queued ahead of its answer.
          var info: DeviceInfo? = nil
          for _ in 0..<8 {
            let frame = try FrameCodec.decode(try usb.read(handle, endpoint: 0x81))
            if case .deviceInfo(let i) = frame.message {
              #expect(frame.header.flags.contains(.response))
              #expect(frame.header.sequence == 0)
              info = i
              break
            }
          }
          let deviceInfo = try #require(info)
          #expect(deviceInfo.serial == pen.with { $0.serial })
          #expect(deviceInfo.catalogueHash == MessageCatalogue.hash)

          let telemetry = try FrameCodec.decode(try usb.read(handle, endpoint: 0x82, capacity: 64))
          guard case .telemetry = telemetry.message else {
            Issue.record("interrupt IN carried \(telemetry.message), not telemetry")
            return
          }
        }
      }

      @Test("vendor requests on endpoint 0: GET_PROTOCOL_VERSION, GET_STATE, EMERGENCY_STOP")
      func vendorRequests() throws {
        let pen = Self.bootedPen()
        let emulator = try EmulatedUSBPen(pen: pen)
        try withExtendedLifetime(emulator) {
          let usb = try LibUSBSession()
          defer { usb.close() }
          let handle = try usb.open()

          var version = [UInt8](repeating: 0xEE, count: 8)
          #expect(libusb_control_transfer(handle, 0xC1, 0x02, 0, 0, &version, 8, 1000) == 8)
          #expect(Array(version[0..<4]) == [1, 1, 0, 0])
          let hash = version[4..<8].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
          #expect(hash == MessageCatalogue.hash)

          var state = [UInt8](repeating: 0xEE, count: 2)
          #expect(libusb_control_transfer(handle, 0xC1, 0x03, 0, 0, &state, 2, 1000) == 2)
          #expect(state == [PenState.idle.rawValue, FaultCode.none.rawValue])

          // A wrong wValue stalls and changes nothing; so does a wrong wLength on a GET.
          #expect(
            libusb_control_transfer(handle, 0x41, 0x01, 0x1234, 0, nil, 0, 1000)
              == LIBUSB_ERROR_PIPE.rawValue)
          #expect(
            libusb_control_transfer(handle, 0xC1, 0x03, 0, 0, &version, 8, 1000)
              == LIBUSB_ERROR_PIPE.rawValue)
          #expect(pen.with { $0.core.state } == .idle)

          #expect(libusb_control_transfer(handle, 0x41, 0x01, 0x4553, 0, nil, 0, 1000) == 0)
          #expect(pen.with { $0.core.state } == .estop)
          #expect(libusb_control_transfer(handle, 0xC1, 0x03, 0, 0, &state, 2, 1000) == 2)
          #expect(state[0] == PenState.estop.rawValue)
          // In estop it completes again and changes nothing.
          let estops = pen.with { $0.core.estopCount }
          #expect(libusb_control_transfer(handle, 0x41, 0x01, 0x4553, 0, nil, 0, 1000) == 0)
          #expect(pen.with { $0.core.estopCount } == estops)
        }
      }

      @Test(
        "a bulk IN the pen has nothing for times out, and the pen's clock runs only while asked")
      func readTimesOut() throws {
        let pen = Self.bootedPen()
        let emulator = try EmulatedUSBPen(pen: pen)
        try withExtendedLifetime(emulator) {
          let usb = try LibUSBSession()
          defer { usb.close() }
          let handle = try usb.open()
          try #require(libusb_claim_interface(handle, 0) == 0)
          defer { libusb_release_interface(handle, 0) }

          // With the pen's clock frozen, it has nothing new to say: read what is queued, then time out.
          emulator.advancesTimeWhileWaiting = false
          let frozenAt = pen.with { $0.now }
          var result: Int32 = 0
          for _ in 0..<16 {
            var buffer = [UInt8](repeating: 0, count: 256)
            var got: Int32 = 0
            result = libusb_bulk_transfer(handle, 0x81, &buffer, 256, &got, 5)
            if result != 0 { break }
          }
          #expect(result == LIBUSB_ERROR_TIMEOUT.rawValue)
          #expect(pen.with { $0.now } == frozenAt)
          #expect(emulator.waitTicks == 0)

          // With the clock running again, waiting is what moves the pen on: a heartbeat comes.
          emulator.advancesTimeWhileWaiting = true
          let frame = try FrameCodec.decode(try usb.read(handle, endpoint: 0x81, timeout: 10_000))
          guard case .penHeartbeat = frame.message else {
            Issue.record("expected pen_heartbeat, got \(frame.message)")
            return
          }
          #expect(emulator.waitTicks > 0)
          #expect(pen.with { $0.now } > frozenAt)
        }
      }

      @Test("IN transfers keep USB packet semantics: multi-packet frames, full buffers, babble")
      func packetSemantics() throws {
        let pen = Self.bootedPen()
        let emulator = try EmulatedUSBPen(pen: pen)
        try withExtendedLifetime(emulator) {
          let usb = try LibUSBSession()
          defer { usb.close() }
          let handle = try usb.open()
          try #require(libusb_claim_interface(handle, 0) == 0)
          defer { libusb_release_interface(handle, 0) }
          emulator.advancesTimeWhileWaiting = false
          pen.with { _ = $0.takeBulkIn() }

          func send(_ message: Message, _ sequence: UInt16) throws {
            var frame = try FrameCodec.encode(message, sequence: sequence, flags: .ackRequested)
            var sent: Int32 = 0
            try #require(
              libusb_bulk_transfer(handle, 0x01, &frame, Int32(frame.count), &sent, 1000) == 0)
          }

          // calibration_data is 79 bytes: two packets, one transfer when the buffer is larger.
          try send(.readCalibration(ReadCalibration()), 1)
          let whole = try usb.read(handle, endpoint: 0x81, capacity: 256)
          #expect(whole.count == 79)
          guard case .calibrationData = try FrameCodec.decode(whole).message else {
            Issue.record("expected calibration_data")
            return
          }
          // With a one-packet buffer the transfer ends full, and the rest comes next.
          try send(.readCalibration(ReadCalibration()), 2)
          let first = try usb.read(handle, endpoint: 0x81, capacity: 64)
          let second = try usb.read(handle, endpoint: 0x81, capacity: 64)
          #expect(first.count == 64)
          #expect(second.count == 15)
          #expect(try FrameCodec.decode(first + second).header.sequence == 2)
          // A packet larger than what is left of the buffer is babble.
          try send(.getStatus(GetStatus()), 3)
          var small = [UInt8](repeating: 0, count: 16)
          var got: Int32 = 0
          #expect(
            libusb_bulk_transfer(handle, 0x81, &small, 16, &got, 1000)
              == LIBUSB_ERROR_OVERFLOW.rawValue)
        }
      }

      @Test("unplugging ends a transfer in flight with NO_DEVICE, and the pen leaves the bus")
      func unplugDuringTransfer() throws {
        let pen = Self.bootedPen()
        let emulator = try EmulatedUSBPen(pen: pen)
        try withExtendedLifetime(emulator) {
          let usb = try LibUSBSession()
          defer { usb.close() }
          let handle = try usb.open()
          try #require(libusb_claim_interface(handle, 0) == 0)

          // Drain what the pen has queued and freeze its clock, so the next read stays in flight.
          emulator.advancesTimeWhileWaiting = false
          pen.with { _ = $0.takeBulkIn() }
          let transfer = try #require(libusb_alloc_transfer(0))
          defer { libusb_free_transfer(transfer) }
          let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
          defer { buffer.deallocate() }
          let completed = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
          defer { completed.deallocate() }
          completed.pointee = 0
          libusb_fill_bulk_transfer(
            transfer, handle, 0x81, buffer, 256,
            { transfer in
              transfer?.pointee.user_data.assumingMemoryBound(to: Int32.self).pointee = 1
            }, completed, 10_000)
          try #require(libusb_submit_transfer(transfer) == 0)

          emulator.unplug()
          while completed.pointee == 0 {
            let rc = libusb_handle_events_completed(usb.context, completed)
            if rc != 0 && rc != LIBUSB_ERROR_INTERRUPTED.rawValue { break }
          }
          #expect(transfer.pointee.status == LIBUSB_TRANSFER_NO_DEVICE)
          #expect(pen.with { $0.plugged } == false)
          #expect(emulator.isConnected == false)

          // Everything after fails the same way.
          var byte = [UInt8](repeating: 0, count: 64)
          var got: Int32 = 0
          #expect(
            libusb_bulk_transfer(handle, 0x81, &byte, 64, &got, 100)
              == LIBUSB_ERROR_NO_DEVICE.rawValue)
          #expect(
            libusb_control_transfer(handle, 0x41, 0x01, 0x4553, 0, nil, 0, 100)
              == LIBUSB_ERROR_NO_DEVICE.rawValue)
          #expect(libusb_release_interface(handle, 0) == LIBUSB_ERROR_NO_DEVICE.rawValue)

          // A new enumeration no longer finds it.
          let fresh = try LibUSBSession()
          defer { fresh.close() }
          var list: UnsafeMutablePointer<OpaquePointer?>? = nil
          #expect(libusb_get_device_list(fresh.context, &list) == 0)
          libusb_free_device_list(list, 1)
        }
      }

      @Test("one emulator at a time: a second one is refused while the first is alive")
      func oneAtATime() throws {
        let first = try EmulatedUSBPen(pen: Self.bootedPen())
        withExtendedLifetime(first) {
          let error = #expect(throws: EmulatedUSBError.self) {
            _ = try EmulatedUSBPen(pen: Self.bootedPen())
          }
          #expect(error == .anotherEmulatorActive)
        }
      }

      @Test("the testbed's directory is removed when the emulator goes")
      func testbedIsFreed() throws {
        var emulator: EmulatedUSBPen? = try EmulatedUSBPen(pen: Self.bootedPen())
        let directory = try #require(emulator?.testbedDirectory)
        #expect(FileManager.default.fileExists(atPath: directory))
        emulator = nil
        #expect(!FileManager.default.fileExists(atPath: directory))
        _ = try EmulatedUSBPen(pen: Self.bootedPen())  // and the next one may be made
      }

      /// The `name` of a model in Firmware-Specs/pen-models.json.
      static func modelName(_ id: String) -> String? {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
          .deletingLastPathComponent().deletingLastPathComponent()
          .appendingPathComponent("Firmware-Specs/pen-models.json")
        guard let data = try? Data(contentsOf: url),
          let doc = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let models = doc["models"] as? [[String: Any]],
          let model = models.first(where: { $0["id"] as? String == id })
        else { return nil }
        return model["name"] as? String
      }
    }

    /// A libusb context and the handles opened on it, for the tests above.
    final class LibUSBSession {
      struct Failure: Error, CustomStringConvertible {
        var call: String
        var code: Int32
        var description: String { "\(call): \(String(cString: libusb_error_name(code))) (\(code))" }
      }

      let context: OpaquePointer
      private var handles: [OpaquePointer] = []

      init() throws {
        var context: OpaquePointer? = nil
        let rc = libusb_init(&context)
        guard rc == 0, let context else { throw Failure(call: "libusb_init", code: rc) }
        self.context = context
      }

      /// Opens the pen (VID 0x1209, PID 0x000A).
      func open() throws -> OpaquePointer {
        guard let handle = libusb_open_device_with_vid_pid(context, 0x1209, 0x000A) else {
          throw Failure(
            call: "libusb_open_device_with_vid_pid", code: LIBUSB_ERROR_NOT_FOUND.rawValue)
        }
        handles.append(handle)
        return handle
      }

      /// One whole frame from an IN endpoint.
      func read(
        _ handle: OpaquePointer, endpoint: UInt8, capacity: Int = 256, timeout: UInt32 = 1000
      ) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: capacity)
        var got: Int32 = 0
        let rc =
          endpoint == 0x82
          ? libusb_interrupt_transfer(handle, endpoint, &buffer, Int32(capacity), &got, timeout)
          : libusb_bulk_transfer(handle, endpoint, &buffer, Int32(capacity), &got, timeout)
        guard rc == 0 else {
          throw Failure(call: "transfer on 0x\(String(endpoint, radix: 16))", code: rc)
        }
        return Array(buffer.prefix(Int(got)))
      }

      /// String descriptor `index` as ASCII.
      func string(_ handle: OpaquePointer, _ index: UInt8) -> String? {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = libusb_get_string_descriptor_ascii(handle, index, &buffer, 256)
        return n < 0 ? nil : String(decoding: buffer.prefix(Int(n)), as: UTF8.self)
      }

      /// Closes every handle and the context: before the emulator goes.
      func close() {
        for handle in handles { libusb_close(handle) }
        handles = []
        libusb_exit(context)
      }
    }
  }
#endif
