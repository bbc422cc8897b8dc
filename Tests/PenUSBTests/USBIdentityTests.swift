import Foundation
import PenUSB
import Testing

@Suite("USB identity")
struct USBIdentityTests {
  @Test("the ids PenUSB enumerates by are exactly those of Firmware-Specs/usb.json")
  func idsMatchSpec() throws {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("Firmware-Specs/usb.json")
    let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    let ids = (doc["devices"] as! [[String: Any]]).map { d in
      USBDeviceID(
        vendor: UInt16((d["vid"] as! String).dropFirst(2), radix: 16)!,
        product: UInt16((d["pid"] as! String).dropFirst(2), radix: 16)!)
    }
    #expect(ids == USBDeviceID.pens)
    #expect(USBDeviceID.pens.first?.description == "1209:000a")
  }

  @Test("libusb errors carry libusb's own name and the call that failed")
  func errorNames() {
    let error = USBError(code: USBError.noDevice, call: "libusb_open")
    #expect(error.name == "LIBUSB_ERROR_NO_DEVICE")
    #expect("\(error)" == "libusb_open failed: LIBUSB_ERROR_NO_DEVICE (-4)")
  }

  @Test("a context opens and lists only pen ids from whatever the bus holds")
  func enumerationFilters() throws {
    let context = try USBContext()
    let all = try context.allDevices()
    let pens = try context.devices()
    #expect(pens.allSatisfy { USBDeviceID.pens.contains($0.id) })
    #expect(pens.count == all.filter { USBDeviceID.pens.contains($0.id) }.count)
  }
}
