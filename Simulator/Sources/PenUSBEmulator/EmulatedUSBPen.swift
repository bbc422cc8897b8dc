#if os(Linux)
  internal import CUMockdevShim
  public import PenSimulator
  import PenWire
  import Synchronization

  /// Why an emulated pen could not be set up.
  public enum EmulatedUSBError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Another `EmulatedUSBPen` is alive in this process: `$UMOCKDEV_DIR` is process-wide, so
    /// there is one testbed at a time.
    case anotherEmulatorActive
    /// umockdev could not create its testbed directory.
    case testbedUnavailable
    /// The process runs without umockdev's preload library, so libusb would not see the testbed.
    case preloadMissing
    /// umockdev refused the device.
    case deviceRefused(String)

    public var description: String {
      switch self {
      case .anotherEmulatorActive:
        "another EmulatedUSBPen is alive in this process; $UMOCKDEV_DIR is process-wide, so "
          + "release it first (and run such tests serially)"
      case .testbedUnavailable: "umockdev could not create a testbed"
      case .preloadMissing:
        "umockdev's preload library is not loaded: link the test with "
          + "linkedLibrary(\"umockdev-preload\") or run it under umockdev-wrapper"
      case .deviceRefused(let why): "umockdev refused the emulated pen: \(why)"
      }
    }
  }

  /// A simulated pen on an emulated USB bus: the real libusb finds it, opens it and talks to it
  /// through usbdevfs, and umockdev hands every usbdevfs request to this object, which answers
  /// from `pen` as the Linux kernel would for the device of Firmware-Specs/usb.md (VID 0x1209,
  /// PID 0x000A, interface 0 class 0xFF/0x50/0x01, bulk OUT 0x01, bulk IN 0x81, interrupt IN 0x82,
  /// 64-byte packets, full speed, bus 001 address 002).
  ///
  /// - Create it before `libusb_init` of the context that should see the pen (libusb scans the
  ///   bus when a context starts), and keep it alive until every libusb handle on the pen is
  ///   closed (`withExtendedLifetime` in a test): its deinit frees the testbed and its
  ///   /tmp/umockdev.* directory, after which umockdev answers no more requests, so an ioctl on a
  ///   handle that outlived the emulator blocks for ever. (Unplug first if the host should see
  ///   the device go.)
  /// - One at a time per process: `$UMOCKDEV_DIR` is process-wide. A second one throws
  ///   `.anotherEmulatorActive` rather than wait; tests using it belong in a `.serialized` suite.
  /// - The process needs umockdev's preload library (link `umockdev-preload`).
  /// - Virtual time: the pen's clock never follows the wall clock. It advances by one 100 µs
  ///   control tick each time libusb polls for a completed URB (REAPURBNDELAY) while it has an IN
  ///   URB waiting that the pen has no data for: libusb busy-polls on the emulated device node (a
  ///   regular file, so always ready), so the simulation runs exactly while a reader waits and
  ///   stops when nobody does. A libusb timeout is wall-clock time, so how much virtual time
  ///   passes before it fires depends on the machine; set `advancesTimeWhileWaiting` to false to
  ///   freeze the pen's clock (a read the pen has nothing for then always times out).
  public final class EmulatedUSBPen: @unchecked Sendable {
    // @unchecked: `testbed` is only used in init, in `unplug()` under `unplugLock`, and in deinit.

    /// The simulated pen behind the USB device.
    public let pen: SimulatedPen
    /// What the device says it is.
    public let descriptors: PenUSBDescriptors
    public let busNumber: UInt8 = 1
    public let deviceAddress: UInt8 = 2
    /// The usbfs node libusb opens, inside the testbed.
    public let deviceNode = "/dev/bus/usb/001/002"
    /// The device's sysfs path, inside the testbed.
    public let sysfsPath = "/sys/devices/usb1/1-1"
    /// The testbed's directory (a /tmp/umockdev.XXXXXX directory, removed by deinit).
    public let testbedDirectory: String

    private let testbed: OpaquePointer
    private let handler: USBDevfsHandler
    private let unplugLock = Mutex(false)

    /// Puts `pen` on an emulated USB bus. Boot the pen first (`pen.advance(by:
    /// PenFirmware.bootTime)`) if the host should find it ready.
    public init(pen: SimulatedPen) throws(EmulatedUSBError) {
      let claimed = activeEmulator.withLock { active -> Bool in
        if active { return false }
        active = true
        return true
      }
      guard claimed else { throw .anotherEmulatorActive }
      var testbedMade: OpaquePointer? = nil
      do throws(EmulatedUSBError) {
        guard let made = pcum_testbed_new() else { throw .testbedUnavailable }
        testbedMade = made
        // Only now: umockdev caches its first answer (reference pitfall 4).
        guard pcum_in_mock_environment() != 0 else { throw .preloadMissing }
        let serial = pen.with { fw in
          String(decoding: (0..<fw.serial.length).map { fw.serial.storage[$0] }, as: UTF8.self)
        }
        let descriptors = PenUSBDescriptors(model: pen.with { $0.model }, serial: serial)
        let handler = USBDevfsHandler(
          pen: pen, descriptors: descriptors, address: deviceAddress)
        let description = descriptors.sysfsDescription(
          syspath: String(sysfsPath.dropFirst(4)), bus: busNumber, address: deviceAddress)
        // The testbed holds a reference to the handler until it can no longer call it.
        let context = Unmanaged.passRetained(handler).toOpaque()
        var error = [CChar](repeating: 0, count: 512)
        let rc = pcum_testbed_add_device(
          made, deviceNode, description,
          { context, client, request in
            guard let context, let client else { return }
            Unmanaged<USBDevfsHandler>.fromOpaque(context).takeUnretainedValue()
              .handle(client, request)
          },
          context,
          { context in
            guard let context else { return }
            Unmanaged<USBDevfsHandler>.fromOpaque(context).release()
          },
          &error, error.count)
        guard rc == 0 else {
          Unmanaged<USBDevfsHandler>.fromOpaque(context).release()
          throw .deviceRefused(
            String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        self.pen = pen
        self.descriptors = descriptors
        self.handler = handler
        testbed = made
        testbedDirectory = String(cString: pcum_testbed_root_dir(made))
      } catch {
        if let testbedMade { pcum_testbed_free(testbedMade) }
        activeEmulator.withLock { $0 = false }
        throw error
      }
    }

    deinit {
      pcum_testbed_free(testbed)
      activeEmulator.withLock { $0 = false }
    }

    /// Pulls the cable: the pen is unplugged (a `.usbUnplug` fault at its current time), URBs in
    /// flight end with ESHUTDOWN (libusb: LIBUSB_ERROR_NO_DEVICE / LIBUSB_TRANSFER_NO_DEVICE),
    /// later requests fail with ENODEV, and the device leaves the bus: a "remove" uevent, then its
    /// sysfs entry and device node go, so a new enumeration no longer finds it. Once is enough;
    /// later calls do nothing.
    public func unplug() {
      unplugLock.withLock { done in
        guard !done else { return }
        done = true
        handler.state.withLock { s in
          pen.with { fw in
            if fw.plugged { fw.inject(ScheduledFault(.usbUnplug, at: fw.now)) }
          }
          handler.disconnect(&s)
        }
        pcum_testbed_remove_device(testbed, sysfsPath)
      }
    }

    /// Whether the device is still on the bus (false after `unplug()`, or once the emulator has
    /// noticed the pen unplugged by a fault).
    /// Halts an endpoint, as a device does after an error: every transfer on it stalls until the
    /// host clears the halt (libusb_clear_halt).
    public func stall(endpoint: UInt8) {
      handler.state.withLock { _ = $0.halted.insert(endpoint) }
    }

    public var isConnected: Bool { handler.state.withLock { $0.connected } }

    /// Whether the pen's clock runs while libusb waits for IN data (see the type's notes).
    /// True by default.
    public var advancesTimeWhileWaiting: Bool {
      get { handler.state.withLock { $0.advancesTimeWhileWaiting } }
      set { handler.state.withLock { $0.advancesTimeWhileWaiting = newValue } }
    }

    /// Control ticks the emulator has run while libusb waited for IN data.
    public var waitTicks: UInt64 { handler.state.withLock { $0.waitTicks } }

    /// Frames each IN endpoint dropped because the host did not read them in time.
    public var droppedFrames: (bulkIn: Int, interruptIn: Int) {
      handler.state.withLock { ($0.bulkIn.dropped, $0.interruptIn.dropped) }
    }
  }

  /// Whether an `EmulatedUSBPen` is alive in this process.
  private let activeEmulator = Mutex(false)
#endif
