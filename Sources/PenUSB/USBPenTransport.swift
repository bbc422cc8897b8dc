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
  // Guarded by `handleLock`.
  var handleClosed = false
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
    let rc = serialised { () -> Int32 in
      LibUSB.bulkOut(
        handle, endpoint: PenEndpoint.commands.rawValue, frame, sent: &sent,
        timeoutMilliseconds: Self.milliseconds(timeout))
    }
    if rc == Self.handleGone { throw .closed }
    if rc == Int32(LIBUSB_ERROR_PIPE.rawValue) {
      _ = serialised { () -> Int32 in
        LibUSB.clearHalt(handle, endpoint: PenEndpoint.commands.rawValue)
        return 0
      }
      throw .stall(endpoint: .commands)
    }
    try Self.map(rc, endpoint: .commands, timeout: timeout, markDisconnected: markDisconnected)
    if Int(sent) != frame.count { throw .timeout(endpoint: .commands, after: timeout) }
  }

  public func receive(from endpoint: PenEndpoint, timeout: Microseconds) throws(TransportError)
    -> [UInt8]
  {
    if endpoint == .commands { throw .stall(endpoint: endpoint) }
    return try next(from: [endpoint], timeout: timeout).1
  }

  public func receiveNext(timeout: Microseconds) throws(TransportError) -> (PenEndpoint, [UInt8]) {
    try next(from: [.telemetry, .responses], timeout: timeout)
  }

  /// The first transfer queued on `endpoints` (in that order of preference), waiting up to
  /// `timeout` on the monotonic clock. The condition wait itself takes a wall-clock date, so it
  /// waits in short slices and checks the monotonic deadline after each: a clock step can stretch
  /// one slice, never the whole timeout.
  func next(from endpoints: [PenEndpoint], timeout: Microseconds) throws(TransportError)
    -> (PenEndpoint, [UInt8])
  {
    let deadline = now.rawValue &+ timeout.rawValue
    lock.lock()
    defer { lock.unlock() }
    while true {
      if closed { throw .closed }
      for endpoint in endpoints {
        if var queue = queues[endpoint], !queue.isEmpty {
          let frame = queue.removeFirst()
          queues[endpoint] = queue
          return (endpoint, frame)
        }
      }
      if disconnected { throw .disconnected }
      for endpoint in endpoints where stalled.remove(endpoint) != nil {
        throw .stall(endpoint: endpoint)
      }
      let current = now.rawValue
      if current >= deadline {
        throw .timeout(endpoint: endpoints.count == 1 ? endpoints[0] : .responses, after: timeout)
      }
      let slice = min(deadline - current, 10_000)
      _ = lock.wait(until: Date(timeIntervalSinceNow: Double(slice) / 1_000_000))
    }
  }

  public func emergencyStop() throws(TransportError) {
    try checkOpen()
    // EMERGENCY_STOP: host-to-device, vendor, interface; wValue "ES" guards against stray requests.
    let rc = serialised { () -> Int32 in
      LibUSB.controlOut(
        handle, requestType: 0x41, request: 0x01, value: 0x4553, index: UInt16(Self.interface),
        timeoutMilliseconds: 100)
    }
    if rc == Self.handleGone { throw .closed }
    try Self.map(
      rc, endpoint: .commands, timeout: .milliseconds(100), markDisconnected: markDisconnected)
  }

  /// What `serialised` answers once the handle is closed (not a libusb code).
  static let handleGone: Int32 = .min

  /// Runs a synchronous call on the device handle: one at a time, whichever thread asks (the
  /// pen's thread sends, an application may send the emergency stop), and never after `close`
  /// has released the handle — then it answers `handleGone` without calling.
  func serialised(_ call: () -> Int32) -> Int32 {
    handleLock.lock()
    defer { handleLock.unlock() }
    if handleClosed { return Self.handleGone }
    return call()
  }

  /// Cancels the IN transfers, waits for the event thread to complete every one of them, and only
  /// then releases the interface and closes the handle. A transfer that never completes (the
  /// event thread is wedged) keeps the handle open — leaked, never freed under libusb's feet.
  public func close() {
    lock.lock()
    if closed {
      lock.unlock()
      return
    }
    // From here `completed` resubmits nothing: it checks `closed` under this same lock. The
    // cancellations go out under the lock too: a transfer is freed only after `release` has taken
    // it off the list under this lock, so none of these can have been freed already.
    closed = true
    for t in transfers { LibUSB.cancel(t) }
    lock.broadcast()
    lock.unlock()
    let deadline = now.rawValue &+ 2_000_000
    lock.lock()
    while pending > 0 && now.rawValue < deadline {
      _ = lock.wait(until: Date(timeIntervalSinceNow: 0.01))
    }
    let drained = pending == 0
    lock.unlock()
    guard drained else { return }
    _ = serialised { () -> Int32 in
      LibUSB.release(handle, interface: Self.interface)
      LibUSB.close(handle)
      handleClosed = true
      return 0
    }
  }

  /// IN transfers not yet completed and freed (zero once `close` has returned normally).
  public var inFlightTransfers: Int {
    lock.lock()
    defer { lock.unlock() }
    return pending
  }

  /// True once `close` has released the interface and closed the handle.
  public var isHandleReleased: Bool {
    handleLock.lock()
    defer { handleLock.unlock() }
    return handleClosed
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
    if resubmit && status == LIBUSB_TRANSFER_STALL {
      _ = serialised { () -> Int32 in
        LibUSB.clearHalt(handle, endpoint: endpoint.rawValue)
        return 0
      }
    }
    if resubmit {
      // Resubmit under the lock `close` takes to set `closed`: either this transfer is back in
      // flight before close cancels the list, or close has begun and it is released here.
      lock.lock()
      let rc = closed ? -1 : LibUSB.submit(transfer)
      lock.unlock()
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
