internal import CLibUSB
import Foundation

/// A pen arriving on the bus or leaving it.
public enum HotplugEvent: Sendable, Hashable {
  case arrived(USBDeviceInfo)
  case left(USBDeviceInfo)
}

/// A hotplug watch; events stop when it is cancelled or released.
public final class HotplugRegistration: @unchecked Sendable {
  let context: USBContext
  let handles: [libusb_hotplug_callback_handle]
  let box: Unmanaged<HotplugBox>
  var cancelled = false
  let lock = NSLock()

  init(context: USBContext, handles: [libusb_hotplug_callback_handle], box: Unmanaged<HotplugBox>) {
    self.context = context
    self.handles = handles
    self.box = box
  }

  deinit { cancel() }

  /// Stops the events.
  public func cancel() {
    lock.lock()
    defer { lock.unlock() }
    guard !cancelled else { return }
    cancelled = true
    for handle in handles { libusb_hotplug_deregister_callback(context.context, handle) }
    box.release()
  }
}

final class HotplugBox: @unchecked Sendable {
  let handler: @Sendable (HotplugEvent) -> Void
  init(_ handler: @escaping @Sendable (HotplugEvent) -> Void) { self.handler = handler }
}

extension USBContext {
  /// Whether libusb can report devices arriving and leaving on this platform.
  public var supportsHotplug: Bool {
    libusb_has_capability(UInt32(LIBUSB_CAP_HAS_HOTPLUG.rawValue)) != 0
  }

  /// Calls `handler` for every pen (the ids of Firmware-Specs/usb.json) that arrives or leaves;
  /// pens already present are reported as arrived straight away. Events come on the context's
  /// event thread.
  public func watchPens(_ handler: @escaping @Sendable (HotplugEvent) -> Void) throws(USBError)
    -> HotplugRegistration
  {
    guard supportsHotplug else {
      throw USBError(code: USBError.notSupported, call: "libusb_hotplug_register_callback")
    }
    let box = Unmanaged.passRetained(HotplugBox(handler))
    var handle: libusb_hotplug_callback_handle = 0
    let events = Int32(
      LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED.rawValue | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT.rawValue)
    var registrations: [libusb_hotplug_callback_handle] = []
    for id in USBDeviceID.pens {
      let rc = libusb_hotplug_register_callback(
        context, events, Int32(LIBUSB_HOTPLUG_ENUMERATE.rawValue), Int32(id.vendor),
        Int32(id.product),
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
        }, box.toOpaque(), &handle)
      if rc < 0 {
        for h in registrations { libusb_hotplug_deregister_callback(context, h) }
        box.release()
        throw USBError(code: rc, call: "libusb_hotplug_register_callback")
      }
      registrations.append(handle)
    }
    startEventThread()
    return HotplugRegistration(context: self, handles: registrations, box: box)
  }
}
