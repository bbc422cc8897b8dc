import Foundation

/// A USB vendor and product id pair.
public struct USBDeviceID: Hashable, Sendable, CustomStringConvertible {
  public var vendor: UInt16
  public var product: UInt16

  public init(vendor: UInt16, product: UInt16) {
    self.vendor = vendor
    self.product = product
  }

  public var description: String {
    "\(hex4(vendor)):\(hex4(product))"
  }

  /// The ids hosts enumerate pens by (Firmware-Specs/usb.json; a test keeps the two equal).
  public static let pens: [USBDeviceID] = [USBDeviceID(vendor: 0x1209, product: 0x000A)]
}

/// Where a device sits on the bus, and what it says it is.
public struct USBDeviceInfo: Hashable, Sendable {
  public var id: USBDeviceID
  public var bus: UInt8
  public var address: UInt8
}

/// One libusb context, with the one event thread that completes its asynchronous transfers. libusb
/// makes the context safe to use from several threads; it is released when the last reference goes.
public final class USBContext: @unchecked Sendable {
  let context: OpaquePointer
  let events: EventLoop

  public init() throws(USBError) {
    context = try LibUSB.initialise()
    events = EventLoop(context: context)
  }

  deinit {
    events.stop()
    LibUSB.exit(context)
  }

  /// Starts the context's event thread, once.
  func startEventThread() { events.start() }

  /// The devices whose ids are in `ids` (by default, every pen id of Firmware-Specs/usb.json).
  /// None is a normal answer.
  public func devices(matching ids: [USBDeviceID] = USBDeviceID.pens) throws(USBError)
    -> [USBDeviceInfo]
  {
    try LibUSB.deviceList(context).filter { ids.contains($0.id) }
  }

  /// The serial number a device reports, or nil.
  public func serialNumber(of device: USBDeviceInfo) -> String? {
    LibUSB.serialNumber(context, bus: device.bus, address: device.address)
  }

  /// Every device on the bus.
  public func allDevices() throws(USBError) -> [USBDeviceInfo] {
    try LibUSB.deviceList(context)
  }
}

private func hex4(_ v: UInt16) -> String {
  let s = String(v, radix: 16)
  return String(repeating: "0", count: 4 - s.count) + s
}

/// The event thread of a context: it handles libusb events until stopped. It holds the context
/// pointer, not the context object, so the context can still be released.
final class EventLoop: @unchecked Sendable {
  let context: OpaquePointer
  let state = NSCondition()
  var running = false
  var finished = true

  init(context: OpaquePointer) { self.context = context }

  func start() {
    state.lock()
    defer { state.unlock() }
    guard !running else { return }
    running = true
    finished = false
    let thread = Thread { [self] in
      while self.isRunning {
        var tv = timeval(tv_sec: 0, tv_usec: 50_000)
        LibUSB.handleEvents(context, &tv)
      }
      state.lock()
      finished = true
      state.broadcast()
      state.unlock()
    }
    thread.name = "PenUSB events"
    thread.start()
  }

  var isRunning: Bool {
    state.lock()
    defer { state.unlock() }
    return running
  }

  func stop() {
    state.lock()
    running = false
    LibUSB.interruptEvents(context)
    while !finished { state.wait() }
    state.unlock()
  }
}
