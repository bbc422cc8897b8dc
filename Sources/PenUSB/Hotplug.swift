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
    for handle in handles { LibUSB.deregisterHotplug(context.context, handle) }
    box.release()
  }
}

final class HotplugBox: @unchecked Sendable {
  let handler: @Sendable (HotplugEvent) -> Void
  init(_ handler: @escaping @Sendable (HotplugEvent) -> Void) { self.handler = handler }
}

extension USBContext {
  /// Whether libusb can report devices arriving and leaving on this platform.
  public var supportsHotplug: Bool { LibUSB.hasHotplug() }

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
    var registrations: [libusb_hotplug_callback_handle] = []
    for id in USBDeviceID.pens {
      do {
        registrations.append(
          try LibUSB.registerHotplug(
            context, vendor: id.vendor, product: id.product, box.toOpaque()))
      } catch {
        for h in registrations { LibUSB.deregisterHotplug(context, h) }
        box.release()
        throw error
      }
    }
    startEventThread()
    return HotplugRegistration(context: self, handles: registrations, box: box)
  }
}
