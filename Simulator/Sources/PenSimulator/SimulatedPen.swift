public import PenDriver
public import PenWire
import Synchronization

/// A simulated pen that several threads may share: the firmware behind a lock.
public final class SimulatedPen: Sendable {
  let firmware: Mutex<PenFirmware>

  public init(_ firmware: PenFirmware) { self.firmware = Mutex(firmware) }

  /// A factory-new pen of `model` whose serial and imperfections come from `seed`.
  public convenience init(model: PenModelID, seed: UInt64) {
    self.init(.factoryNew(model: model, serial: Self.serial(model: model, seed: seed), seed: seed))
  }

  /// The serial a simulated pen of `model` built with `seed` carries: `SIM-RF200-000042`.
  public static func serial(model: PenModelID, seed: UInt64) -> String {
    let number = String(seed % 1_000_000)
    return "SIM-\(model.catalogueName)-".uppercased()
      + String(repeating: "0", count: 6 - number.count) + number
  }

  /// Reads or changes the firmware (its physics, faults, non-volatile memory) under the lock.
  public func with<R>(_ body: (inout PenFirmware) throws -> R) rethrows -> R {
    try firmware.withLock { try body(&$0) }
  }

  /// Advances virtual time.
  public func advance(by span: Microseconds) { firmware.withLock { $0.advance(by: span) } }
}

/// The in-process transport: frames go straight into the simulated firmware, and waiting for a
/// frame advances the pen's virtual clock tick by tick — never the wall clock — so a test that
/// waits 300 ms for a timeout takes microseconds and gives the same bytes every run.
public final class LoopbackTransport: PenTransport {
  public let pen: SimulatedPen
  let state = Mutex(State())

  struct State {
    var closed = false
    var bulk: [[UInt8]] = []
    var interrupt: [[UInt8]] = []
  }

  public init(pen: SimulatedPen) { self.pen = pen }

  public func send(_ frame: UnsafeRawBufferPointer, timeout: Microseconds) throws(TransportError) {
    if state.withLock({ $0.closed }) { throw .closed }
    let bytes = Array(frame)
    let plugged = pen.with { fw -> Bool in
      fw.receive(bytes)
      return fw.plugged
    }
    if !plugged { throw .disconnected }
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

  /// The first frame waiting on `endpoints` (in that order of preference), ticking the pen's
  /// virtual clock while there is none, until `timeout` of virtual time has passed.
  func next(from endpoints: [PenEndpoint], timeout: Microseconds) throws(TransportError)
    -> (PenEndpoint, [UInt8])
  {
    var waited: UInt64 = 0
    while true {
      if state.withLock({ $0.closed }) { throw .closed }
      let (frame, plugged) = pen.with { fw -> ((PenEndpoint, [UInt8])?, Bool) in
        let bulk = fw.takeBulkIn()
        let interrupt = fw.takeInterruptIn()
        let next = state.withLock { s -> (PenEndpoint, [UInt8])? in
          s.bulk += bulk
          s.interrupt += interrupt
          for endpoint in endpoints {
            if endpoint == .telemetry, !s.interrupt.isEmpty {
              return (endpoint, s.interrupt.removeFirst())
            }
            if endpoint == .responses, !s.bulk.isEmpty { return (endpoint, s.bulk.removeFirst()) }
          }
          return nil
        }
        return (next, fw.plugged)
      }
      if let frame { return frame }
      if !plugged { throw .disconnected }
      if waited >= timeout.rawValue {
        throw .timeout(endpoint: endpoints.count == 1 ? endpoints[0] : .responses, after: timeout)
      }
      pen.with { $0.tick() }
      waited += 100
    }
  }

  public func emergencyStop() throws(TransportError) {
    if state.withLock({ $0.closed }) { throw .closed }
    let plugged = pen.with { fw -> Bool in
      fw.controlEmergencyStop()
      return fw.plugged
    }
    if !plugged { throw .disconnected }
  }

  public func close() { state.withLock { $0.closed = true } }

  /// The simulated pen's virtual clock.
  public var now: Microseconds { pen.with { $0.now } }
}
