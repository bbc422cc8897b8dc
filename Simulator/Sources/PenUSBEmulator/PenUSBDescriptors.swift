public import PenWire

/// What the emulated pen says it is on USB: the descriptors and strings of Firmware-Specs/usb.md,
/// at full speed (64-byte packets), and the sysfs entry umockdev makes of them.
public struct PenUSBDescriptors: Sendable, Hashable {
  public static let vendorID: UInt16 = 0x1209
  public static let productID: UInt16 = 0x000A
  /// `bcdDevice`: the firmware version, 1.00.
  public static let deviceRelease: UInt16 = 0x0100
  public static let maxPacketSize = 64
  public static let interfaceClass: UInt8 = 0xFF
  public static let interfaceSubClass: UInt8 = 0x50
  public static let interfaceProtocol: UInt8 = 0x01
  public static let bulkOut: UInt8 = 0x01
  public static let bulkIn: UInt8 = 0x81
  public static let interruptIn: UInt8 = 0x82
  /// US English, the only language of the strings.
  public static let languageID: UInt16 = 0x0409

  public var manufacturer = "PenControl"
  /// The model's `name` in Firmware-Specs/pen-models.json.
  public var product: String
  /// The pen's serial, as in `device_info.serial` without its NUL padding.
  public var serial: String

  public init(model: PenModelID, serial: String) {
    product = Self.productName(model)
    self.serial = serial
  }

  /// The `name` of each model in Firmware-Specs/pen-models.json (a test compares the two).
  public static func productName(_ model: PenModelID) -> String {
    switch model {
    case .mn100: "MN-100 mechanical microneedling pen"
    case .rf200: "RF-200 fractional RF-microneedling handpiece"
    }
  }

  /// The 18-byte device descriptor.
  public var device: [UInt8] {
    [18, 0x01] + le16(0x0200) + [0x00, 0x00, 0x00, UInt8(Self.maxPacketSize)]
      + le16(Self.vendorID) + le16(Self.productID) + le16(Self.deviceRelease)
      + [1, 2, 3, 1]
  }

  /// The configuration descriptor with its interface and endpoint descriptors.
  public var configuration: [UInt8] {
    let interface: [UInt8] = [
      9, 0x04, 0, 0, 3, Self.interfaceClass, Self.interfaceSubClass, Self.interfaceProtocol, 0,
    ]
    let endpoints =
      endpoint(Self.bulkOut, attributes: 0x02, interval: 0)
      + endpoint(Self.bulkIn, attributes: 0x02, interval: 0)
      + endpoint(Self.interruptIn, attributes: 0x03, interval: 1)
    let total = 9 + interface.count + endpoints.count
    // Bus-powered, 100 mA: the pen charges from the cable but runs on its battery.
    return [9, 0x02] + le16(UInt16(total)) + [1, 1, 0, 0x80, 50] + interface + endpoints
  }

  /// String descriptor `index` in `language`, or nil when there is none (the request stalls).
  public func string(index: UInt8, language: UInt16) -> [UInt8]? {
    if index == 0 { return [4, 0x03] + le16(Self.languageID) }
    guard language == Self.languageID else { return nil }
    let text: String
    switch index {
    case 1: text = manufacturer
    case 2: text = product
    case 3: text = serial
    default: return nil
    }
    let utf16 = Array(text.utf16.prefix(126))
    return [UInt8(2 + 2 * utf16.count), 0x03] + utf16.flatMap { le16($0) }
  }

  /// The device as umockdev's text format describes it: sysfs attributes (libusb reads busnum,
  /// devnum, speed, bConfigurationValue and the raw descriptors from there), udev properties,
  /// and the device node.
  func sysfsDescription(syspath: String, bus: UInt8, address: UInt8) -> String {
    let busText = pad3(bus)
    let addressText = pad3(address)
    let descriptorHex = (device + configuration).map { hex2($0) }.joined()
    let lines = [
      "P: \(syspath)",
      "N: bus/usb/\(busText)/\(addressText)",
      "E: SUBSYSTEM=usb",
      "E: DEVTYPE=usb_device",
      "E: DRIVER=usb",
      "E: BUSNUM=\(busText)",
      "E: DEVNUM=\(addressText)",
      "E: DEVNAME=/dev/bus/usb/\(busText)/\(addressText)",
      "E: PRODUCT=\(hex(Self.vendorID, pad: false))/\(hex(Self.productID, pad: false))/\(hex(Self.deviceRelease, pad: false))",
      "E: ID_VENDOR_ID=\(hex(Self.vendorID))",
      "E: ID_MODEL_ID=\(hex(Self.productID))",
      "E: ID_SERIAL_SHORT=\(serial)",
      "A: busnum=\(bus)\\n",
      "A: devnum=\(address)\\n",
      "A: speed=12\\n",
      "A: bConfigurationValue=1\\n",
      "A: bNumConfigurations=1\\n",
      "A: bDeviceClass=00\\n",
      "A: idVendor=\(hex(Self.vendorID))\\n",
      "A: idProduct=\(hex(Self.productID))\\n",
      "A: bcdDevice=\(hex(Self.deviceRelease))\\n",
      "A: version= 2.00\\n",
      "A: manufacturer=\(manufacturer)\\n",
      "A: product=\(product)\\n",
      "A: serial=\(serial)\\n",
      "H: descriptors=\(descriptorHex)",
    ]
    return lines.joined(separator: "\n") + "\n"
  }

  private func endpoint(_ address: UInt8, attributes: UInt8, interval: UInt8) -> [UInt8] {
    [7, 0x05, address, attributes] + le16(UInt16(Self.maxPacketSize)) + [interval]
  }
}

private func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }

private func hex2(_ b: UInt8) -> String {
  let digits = Array("0123456789ABCDEF")
  return String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
}

private func hex(_ v: UInt16, pad: Bool = true) -> String {
  let s = String(v, radix: 16)
  return pad ? String(repeating: "0", count: 4 - s.count) + s : s
}

private func pad3(_ v: UInt8) -> String {
  let s = String(v)
  return String(repeating: "0", count: 3 - s.count) + s
}
