internal import CLibUSB
import Foundation
public import PenDriver
public import PenWire

/// A pen on the USB bus, through libusb: the real transport below PenDriver.
///
/// One owner serialises the device handle: every libusb call on it goes through this object. IN
/// endpoints always have a transfer pending (libusb's asynchronous API), completed on the event
/// thread this object runs for its context; received transfers queue until `receive` takes them.
/// Commands go out with a synchronous bulk transfer. A stall is cleared and reported once; an
/// unplug turns every later call into `.disconnected`.
public final class USBPenTransport: PenTransport, @unchecked Sendable {
  public let device: USBDeviceInfo
  let context: USBContext
  let handle: OpaquePointer
  let lock = NSCondition()
  /// Serialises the synchronous calls on the device handle.
  let handleLock = NSLock()
  // Guarded by `lock`.
  var queues: [PenEndpoint: [[UInt8]]] = [.responses: [], .telemetry: []]
  var stalled: Set<PenEndpoint> = []
  var disconnected = false
  var closed = false
  var pending = 0
  var transfers: [UnsafeMutablePointer<libusb_transfer>] = []

  static let interface: Int32 = 0
  static let transferSize = 512

  /// Opens the pen, claims its vendor interface and starts reading both IN endpoints.
  public init(context: USBContext, device: USBDeviceInfo) throws(USBError) {
    self.context = context
    self.device = device
    handle = try LibUSB.open(context.context, bus: device.bus, address: device.address)
    let claimed = LibUSB.claim(handle, interface: Self.interface)
    if claimed < 0 {
      LibUSB.close(handle)
      throw USBError(code: claimed, call: "libusb_claim_interface")
    }
    context.startEventThread()
    for endpoint in [PenEndpoint.responses, .telemetry] {
      try submit(endpoint)
    }
  }

  deinit { close() }

  // MARK: PenTransport

  /// A monotonic wall clock: a real pen lives in real time.
  public var now: Microseconds {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Microseconds(UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000)
  }

  public func send(_ frame: UnsafeRawBufferPointer, timeout: Microseconds) throws(TransportError) {
    try checkOpen()
    var sent: Int32 = 0
    let rc = serialised {
      LibUSB.bulkOut(
        handle, endpoint: PenEndpoint.commands.rawValue, frame, sent: &sent,
        timeoutMilliseconds: Self.milliseconds(timeout))
    }
    if rc == Int32(LIBUSB_ERROR_PIPE.rawValue) {
      serialised { LibUSB.clearHalt(handle, endpoint: PenEndpoint.commands.rawValue) }
      throw .stall(endpoint: .commands)
    }
    try Self.map(rc, endpoint: .commands, timeout: timeout, markDisconnected: markDisconnected)
    if Int(sent) != frame.count { throw .timeout(endpoint: .commands, after: timeout) }
  }

  public func receive(from endpoint: PenEndpoint, timeout: Microseconds) throws(TransportError)
    -> [UInt8]
  {
    if endpoint == .commands { throw .stall(endpoint: endpoint) }
    let deadline = Date(timeIntervalSinceNow: Double(timeout.rawValue) / 1_000_000)
    lock.lock()
    defer { lock.unlock() }
    while true {
      if closed { throw .closed }
      if var queue = queues[endpoint], !queue.isEmpty {
        let frame = queue.removeFirst()
        queues[endpoint] = queue
        return frame
      }
      if disconnected { throw .disconnected }
      if stalled.remove(endpoint) != nil { throw .stall(endpoint: endpoint) }
      if !lock.wait(until: deadline) { throw .timeout(endpoint: endpoint, after: timeout) }
    }
  }

  public func emergencyStop() throws(TransportError) {
    try checkOpen()
    // EMERGENCY_STOP: host-to-device, vendor, interface; wValue "ES" guards against stray requests.
    let rc = serialised {
      LibUSB.controlOut(
        handle, requestType: 0x41, request: 0x01, value: 0x4553, index: UInt16(Self.interface),
        timeoutMilliseconds: 100)
    }
    try Self.map(
      rc, endpoint: .commands, timeout: .milliseconds(100), markDisconnected: markDisconnected)
  }

  /// Runs a synchronous call on the device handle: one at a time, whichever thread asks (the
  /// pen's thread sends, an application may send the emergency stop).
  func serialised<R>(_ call: () -> R) -> R {
    handleLock.lock()
    defer { handleLock.unlock() }
    return call()
  }

  public func close() {
    lock.lock()
    if closed {
      lock.unlock()
      return
    }
    closed = true
    let inFlight = transfers
    lock.broadcast()
    lock.unlock()
    for t in inFlight { LibUSB.cancel(t) }
    // Wait (bounded) for the event thread to complete the cancellations.
    let deadline = Date(timeIntervalSinceNow: 1)
    lock.lock()
    while pending > 0 && lock.wait(until: deadline) {}
    lock.unlock()
    serialised {
      LibUSB.release(handle, interface: Self.interface)
      LibUSB.close(handle)
    }
  }

  // MARK: Transfers

  func checkOpen() throws(TransportError) {
    lock.lock()
    defer { lock.unlock() }
    if closed { throw .closed }
    if disconnected { throw .disconnected }
  }

  func markDisconnected() {
    lock.lock()
    disconnected = true
    lock.broadcast()
    lock.unlock()
  }

  func submit(_ endpoint: PenEndpoint) throws(USBError) {
    guard let transfer = LibUSB.allocateTransfer() else {
      throw USBError(code: USBError.noMemory, call: "libusb_alloc_transfer")
    }
    let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: Self.transferSize)
    let context = Unmanaged.passRetained(TransferContext(owner: self, endpoint: endpoint))
      .toOpaque()
    transfer.pointee.dev_handle = handle
    transfer.pointee.endpoint = endpoint.rawValue
    transfer.pointee.type = UInt8(
      endpoint == .telemetry
        ? LIBUSB_TRANSFER_TYPE_INTERRUPT.rawValue : LIBUSB_TRANSFER_TYPE_BULK.rawValue)
    transfer.pointee.timeout = 0
    transfer.pointee.buffer = buffer
    transfer.pointee.length = Int32(Self.transferSize)
    transfer.pointee.user_data = context
    transfer.pointee.callback = { transfer in
      guard let transfer, let raw = transfer.pointee.user_data else { return }
      let context = Unmanaged<TransferContext>.fromOpaque(raw).takeUnretainedValue()
      context.owner?.completed(transfer, endpoint: context.endpoint)
    }
    lock.lock()
    transfers.append(transfer)
    pending += 1
    lock.unlock()
    let rc = LibUSB.submit(transfer)
    if rc < 0 {
      release(transfer)
      if rc == Int32(LIBUSB_ERROR_NO_DEVICE.rawValue) { markDisconnected() }
      try LibUSB.check(rc, "libusb_submit_transfer")
    }
  }

  /// Runs on the event thread when an IN transfer completes: queue the data and resubmit, or
  /// record why the endpoint stopped.
  func completed(_ transfer: UnsafeMutablePointer<libusb_transfer>, endpoint: PenEndpoint) {
    let status = transfer.pointee.status
    var resubmit = false
    lock.lock()
    switch status {
    case LIBUSB_TRANSFER_COMPLETED:
      let count = Int(transfer.pointee.actual_length)
      if count > 0 {
        queues[endpoint, default: []].append(
          Array(UnsafeBufferPointer(start: transfer.pointee.buffer, count: count)))
      }
      resubmit = !closed
    case LIBUSB_TRANSFER_STALL:
      stalled.insert(endpoint)
      resubmit = !closed
    case LIBUSB_TRANSFER_TIMED_OUT:
      resubmit = !closed
    case LIBUSB_TRANSFER_NO_DEVICE, LIBUSB_TRANSFER_ERROR, LIBUSB_TRANSFER_OVERFLOW:
      // An IN endpoint that stops working would lose telemetry or answers without a trace:
      // treat the pen as gone, so the driver declares it lost, rather than carry on half blind.
      disconnected = true
    default:  // cancelled
      break
    }
    lock.broadcast()
    lock.unlock()
    if resubmit {
      if status == LIBUSB_TRANSFER_STALL {
        serialised { LibUSB.clearHalt(handle, endpoint: endpoint.rawValue) }
      }
      let rc = LibUSB.submit(transfer)
      if rc == 0 { return }
      if rc == Int32(LIBUSB_ERROR_NO_DEVICE.rawValue) { markDisconnected() }
    }
    release(transfer)
  }

  func release(_ transfer: UnsafeMutablePointer<libusb_transfer>) {
    if let raw = transfer.pointee.user_data { Unmanaged<TransferContext>.fromOpaque(raw).release() }
    transfer.pointee.buffer?.deallocate()
    lock.lock()
    transfers.removeAll { $0 == transfer }
    pending -= 1
    lock.broadcast()
    lock.unlock()
    LibUSB.free(transfer)
  }

  static func milliseconds(_ t: Microseconds) -> UInt32 {
    UInt32(clamping: max(1, (t.rawValue + 999) / 1000))
  }

  static func map(
    _ rc: Int32, endpoint: PenEndpoint, timeout: Microseconds, markDisconnected: () -> Void
  ) throws(TransportError) {
    switch rc {
    case 0...: return
    case Int32(LIBUSB_ERROR_TIMEOUT.rawValue): throw .timeout(endpoint: endpoint, after: timeout)
    case Int32(LIBUSB_ERROR_PIPE.rawValue): throw .stall(endpoint: endpoint)
    case Int32(LIBUSB_ERROR_NO_DEVICE.rawValue):
      markDisconnected()
      throw .disconnected
    default:
      throw .io(code: rc, name: USBError(code: rc, call: "").name)
    }
  }
}

/// What a transfer's callback needs to find its transport again.
final class TransferContext: @unchecked Sendable {
  weak var owner: USBPenTransport?
  let endpoint: PenEndpoint

  init(owner: USBPenTransport, endpoint: PenEndpoint) {
    self.owner = owner
    self.endpoint = endpoint
  }
}
