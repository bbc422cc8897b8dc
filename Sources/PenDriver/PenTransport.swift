public import PenWire

/// The endpoints of a pen's vendor interface (Firmware-Specs/usb.md).
public enum PenEndpoint: UInt8, Sendable, Hashable {
  /// Bulk OUT: commands, host to pen.
  case commands = 0x01
  /// Bulk IN: responses, events and heartbeats, pen to host.
  case responses = 0x81
  /// Interrupt IN: telemetry, pen to host.
  case telemetry = 0x82
}

/// Why a transport operation failed.
public enum TransportError: Error, Hashable, Sendable {
  /// Nothing arrived (or could be sent) on `endpoint` within the timeout.
  case timeout(endpoint: PenEndpoint, after: Microseconds)
  /// The endpoint stalled (a USB STALL handshake); the transport clears it before reporting.
  case stall(endpoint: PenEndpoint)
  /// The pen is gone: unplugged, powered off, or the link was reset.
  case disconnected
  /// The transport was closed by this host.
  case closed
  /// Any other failure of the underlying I/O, with the library's own code and name.
  case io(code: Int32, name: String)
}

/// The one abstraction below the driver: whole frames out, bytes in, and the endpoint-0
/// emergency stop that works even when the bulk queues are stuck.
///
/// Implemented by the simulator's in-process loopback and by PenUSB over libusb. Calls block the
/// calling thread for at most their timeout: the driver calls them from its own per-pen thread,
/// never from Swift's cooperative pool.
public protocol PenTransport: AnyObject, Sendable {
  /// Sends one encoded frame on the command endpoint (the bytes are only borrowed).
  func send(_ frame: UnsafeRawBufferPointer, timeout: Microseconds) throws(TransportError)
  /// Receives the next bytes from an IN endpoint (at most one transfer's worth).
  func receive(from endpoint: PenEndpoint, timeout: Microseconds) throws(TransportError) -> [UInt8]
  /// Receives the next bytes from whichever IN endpoint has some first, telemetry ahead of
  /// responses when both have: one wait for both endpoints, so an answer is not held up behind a
  /// telemetry poll or the other way round.
  func receiveNext(timeout: Microseconds) throws(TransportError) -> (PenEndpoint, [UInt8])
  /// Sends the vendor control request EMERGENCY_STOP on endpoint 0.
  func emergencyStop() throws(TransportError)
  /// Releases the pen; later calls fail with `.closed`.
  func close()
  /// The transport's time, for heartbeats and timeouts: a monotonic wall clock for a real pen, the
  /// pen's virtual clock for a simulated one (so a simulated session never waits for real time).
  var now: Microseconds { get }
}

extension PenTransport {
  /// Polls both IN endpoints: telemetry without waiting, then responses for the timeout. Transports
  /// that can wait on both at once (PenUSB, the loopback) implement `receiveNext` themselves.
  public func receiveNext(timeout: Microseconds) throws(TransportError) -> (PenEndpoint, [UInt8]) {
    do {
      return (.telemetry, try receive(from: .telemetry, timeout: .zero))
    } catch .timeout {}
    return (.responses, try receive(from: .responses, timeout: timeout))
  }

  /// Sends an encoded frame held in an array.
  public func send(_ frame: [UInt8], timeout: Microseconds) throws(TransportError) {
    let result = frame.withUnsafeBytes { raw in
      Result { () throws(TransportError) in try send(raw, timeout: timeout) }
    }
    try result.get()
  }

  /// Sends an encoded frame buffer, without copying it.
  public func send(_ frame: FrameBuffer, timeout: Microseconds) throws(TransportError) {
    try frame.withUnsafeBytes { (raw) throws(TransportError) in try send(raw, timeout: timeout) }
  }
}
