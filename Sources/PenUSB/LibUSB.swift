internal import CLibUSB

/// A libusb status code, as swift-system models errno: a raw value with named constants.
public struct USBError: Error, Hashable, Sendable, CustomStringConvertible {
  /// libusb's (negative) error code.
  public var code: Int32
  /// The libusb function that returned it.
  public var call: String

  public init(code: Int32, call: String) {
    self.code = code
    self.call = call
  }

  public static let io: Int32 = -1
  public static let invalidParameter: Int32 = -2
  public static let access: Int32 = -3
  public static let noDevice: Int32 = -4
  public static let notFound: Int32 = -5
  public static let busy: Int32 = -6
  public static let timeout: Int32 = -7
  public static let overflow: Int32 = -8
  public static let pipe: Int32 = -9
  public static let interrupted: Int32 = -10
  public static let noMemory: Int32 = -11
  public static let notSupported: Int32 = -12

  /// libusb's own name for the code (LIBUSB_ERROR_…).
  public var name: String { String(cString: libusb_error_name(code)) }

  public var description: String { "\(call) failed: \(name) (\(code))" }
}

/// Every libusb call goes through here, so that status codes become typed errors in one place
/// and tests can see exactly which calls the package makes (the swift-system pattern).
enum LibUSB {
  static func check(_ rc: Int32, _ call: String) throws(USBError) {
    if rc < 0 { throw USBError(code: rc, call: call) }
  }

  static func initialise() throws(USBError) -> OpaquePointer {
    var context: OpaquePointer?
    try check(libusb_init(&context), "libusb_init")
    return context!
  }

  static func exit(_ context: OpaquePointer) { libusb_exit(context) }

  /// Opens the device at a bus location.
  static func open(_ context: OpaquePointer, bus: UInt8, address: UInt8) throws(USBError)
    -> OpaquePointer
  {
    var list: UnsafeMutablePointer<OpaquePointer?>?
    let count = libusb_get_device_list(context, &list)
    try check(Int32(clamping: count), "libusb_get_device_list")
    defer { libusb_free_device_list(list, 1) }
    for i in 0..<count {
      guard let device = list?[i], libusb_get_bus_number(device) == bus,
        libusb_get_device_address(device) == address
      else { continue }
      var handle: OpaquePointer?
      try check(libusb_open(device, &handle), "libusb_open")
      return handle!
    }
    throw USBError(code: USBError.noDevice, call: "libusb_open")
  }

  /// The device's serial-number string, or nil when it has none or cannot be opened.
  static func serialNumber(_ context: OpaquePointer, bus: UInt8, address: UInt8) -> String? {
    guard let handle = try? open(context, bus: bus, address: address) else { return nil }
    defer { libusb_close(handle) }
    var descriptor = libusb_device_descriptor()
    guard libusb_get_device_descriptor(libusb_get_device(handle), &descriptor) == 0,
      descriptor.iSerialNumber != 0
    else { return nil }
    var buffer = [UInt8](repeating: 0, count: 64)
    let n = libusb_get_string_descriptor_ascii(
      handle, descriptor.iSerialNumber, &buffer, Int32(buffer.count))
    guard n > 0 else { return nil }
    return String(decoding: buffer[0..<Int(n)], as: UTF8.self)
  }

  // Device handles.

  static func claim(_ handle: OpaquePointer, interface: Int32) -> Int32 {
    // Auto-detach is not supported everywhere, and needless where no kernel driver binds a vendor
    // interface: its result does not matter.
    _ = libusb_set_auto_detach_kernel_driver(handle, 1)
    return libusb_claim_interface(handle, interface)
  }

  static func release(_ handle: OpaquePointer, interface: Int32) {
    _ = libusb_release_interface(handle, interface)
  }

  static func close(_ handle: OpaquePointer) { libusb_close(handle) }

  static func bulkOut(
    _ handle: OpaquePointer, endpoint: UInt8, _ bytes: UnsafeRawBufferPointer, sent: inout Int32,
    timeoutMilliseconds: UInt32
  ) -> Int32 {
    // libusb takes a mutable pointer but only reads an OUT transfer's buffer.
    let buffer = UnsafeMutablePointer(
      mutating: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self))
    return libusb_bulk_transfer(
      handle, endpoint, buffer, Int32(bytes.count), &sent, timeoutMilliseconds)
  }

  static func controlOut(
    _ handle: OpaquePointer, requestType: UInt8, request: UInt8, value: UInt16, index: UInt16,
    timeoutMilliseconds: UInt32
  ) -> Int32 {
    libusb_control_transfer(handle, requestType, request, value, index, nil, 0, timeoutMilliseconds)
  }

  static func clearHalt(_ handle: OpaquePointer, endpoint: UInt8) {
    _ = libusb_clear_halt(handle, endpoint)
  }

  // Asynchronous transfers.

  static func allocateTransfer() -> UnsafeMutablePointer<libusb_transfer>? {
    libusb_alloc_transfer(0)
  }
  static func submit(_ t: UnsafeMutablePointer<libusb_transfer>) -> Int32 {
    libusb_submit_transfer(t)
  }
  static func cancel(_ t: UnsafeMutablePointer<libusb_transfer>) { _ = libusb_cancel_transfer(t) }
  static func free(_ t: UnsafeMutablePointer<libusb_transfer>) { libusb_free_transfer(t) }

  // Hotplug.

  static func hasHotplug() -> Bool {
    libusb_has_capability(UInt32(LIBUSB_CAP_HAS_HOTPLUG.rawValue)) != 0
  }

  /// Registers arrive and leave callbacks for one vendor and product id, enumerating devices
  /// already present; `box` is an unmanaged HotplugBox the callbacks report to.
  static func registerHotplug(
    _ context: OpaquePointer, vendor: UInt16, product: UInt16, _ box: UnsafeMutableRawPointer
  ) throws(USBError) -> libusb_hotplug_callback_handle {
    var handle: libusb_hotplug_callback_handle = 0
    let events = Int32(
      LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED.rawValue | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT.rawValue)
    let rc = libusb_hotplug_register_callback(
      context, events, Int32(LIBUSB_HOTPLUG_ENUMERATE.rawValue), Int32(vendor), Int32(product),
      LIBUSB_HOTPLUG_MATCH_ANY,
      { _, device, event, userData in
        guard let device, let userData else { return 0 }
        var descriptor = libusb_device_descriptor()
        _ = libusb_get_device_descriptor(device, &descriptor)
        let info = USBDeviceInfo(
          id: USBDeviceID(vendor: descriptor.idVendor, product: descriptor.idProduct),
          bus: libusb_get_bus_number(device), address: libusb_get_device_address(device))
        let box = Unmanaged<HotplugBox>.fromOpaque(userData).takeUnretainedValue()
        box.handler(event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED ? .arrived(info) : .left(info))
        return 0  // keep the callback registered
      }, box, &handle)
    try check(rc, "libusb_hotplug_register_callback")
    return handle
  }

  static func deregisterHotplug(_ context: OpaquePointer, _ handle: libusb_hotplug_callback_handle)
  {
    libusb_hotplug_deregister_callback(context, handle)
  }

  static func handleEvents(_ context: OpaquePointer, _ tv: inout timeval) {
    _ = libusb_handle_events_timeout_completed(context, &tv, nil)
  }

  static func interruptEvents(_ context: OpaquePointer) { libusb_interrupt_event_handler(context) }

  /// The devices on the bus with their descriptors' ids and locations.
  static func deviceList(_ context: OpaquePointer) throws(USBError) -> [USBDeviceInfo] {
    var list: UnsafeMutablePointer<OpaquePointer?>?
    let count = libusb_get_device_list(context, &list)
    try check(Int32(clamping: count), "libusb_get_device_list")
    defer { libusb_free_device_list(list, 1) }
    var infos: [USBDeviceInfo] = []
    for i in 0..<count {
      guard let device = list?[i] else { continue }
      var descriptor = libusb_device_descriptor()
      try check(libusb_get_device_descriptor(device, &descriptor), "libusb_get_device_descriptor")
      infos.append(
        USBDeviceInfo(
          id: USBDeviceID(vendor: descriptor.idVendor, product: descriptor.idProduct),
          bus: libusb_get_bus_number(device), address: libusb_get_device_address(device)))
    }
    return infos
  }
}
