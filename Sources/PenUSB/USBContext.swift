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

/// One libusb context. Not shared between threads except through its own methods, which libusb
/// makes safe; it is released when the last reference goes.
public final class USBContext: @unchecked Sendable {
  private let context: OpaquePointer

  public init() throws(USBError) { context = try LibUSB.initialise() }

  deinit { LibUSB.exit(context) }

  /// The devices whose ids are in `ids` (by default, every pen id of Firmware-Specs/usb.json).
  /// None is a normal answer.
  public func devices(matching ids: [USBDeviceID] = USBDeviceID.pens) throws(USBError)
    -> [USBDeviceInfo]
  {
    try LibUSB.deviceList(context).filter { ids.contains($0.id) }
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
