import Foundation
public import PenDriver
public import PenSafety
public import PenWire
import Synchronization

/// The treatment itself: start, scripted passes on the simulated pen, a live status line, samples
/// saved every 100 ms of pen time, and the end — completed, or aborted by a fault or a lost pen.
public struct TreatmentRun {
  public let pen: Pen
  public let store: RecordsStore
  public let sessionID: Int64
  public let envelope: SessionEnvelope
  public let duration: Microseconds
  /// Puts the tip on the skin or lifts it: the scripted passes of a simulated pen; nil for a real
  /// pen in a clinician's hand.
  public let contact: (@Sendable (Bool) -> Void)?
  /// Receives the live status line about once a second of pen time; nil for none.
  public let status: ((String) -> Void)?

  public init(
    pen: Pen, store: RecordsStore, sessionID: Int64, envelope: SessionEnvelope,
    duration: Microseconds, contact: (@Sendable (Bool) -> Void)? = nil,
    status: ((String) -> Void)? = nil
  ) {
    self.pen = pen
    self.store = store
    self.sessionID = sessionID
    self.envelope = envelope
    self.duration = duration
    self.contact = contact
    self.status = status
  }

  /// How the run ended.
  public struct Result: Sendable, Hashable {
    /// Why it was aborted; nil when it completed.
    public var aborted: String?
    /// RF energy delivered in the session, from the last telemetry.
    public var delivered: Millijoules
    /// RF energy the area's cap still allowed.
    public var remaining: Millijoules
    /// Times the tip went onto the skin while treating.
    public var passes: Int
    /// Pen time from start to the end of the run.
    public var elapsed: Microseconds
  }

  /// The scripted passes: 4 s on the skin, then 1 s lifted.
  public static let passOn = Microseconds.seconds(4)
  public static let passOff = Microseconds.seconds(1)
  /// Samples are saved, and the script and the events looked at, every this much pen time.
  public static let step = Microseconds.milliseconds(100)

  /// Starts the pen (armed by the caller), runs until `duration` or a fault, a guard reaction, an
  /// emergency stop or a lost pen, saving samples to the session as it goes; then stops and
  /// disarms a pen that completed. The caller closes the session with the result.
  public func execute() -> Result {
    let samples = Mutex<[Telemetry]>([])
    let events = Mutex<[PenDriver.PenEvent]>([])
    let telemetryTask = Task.detached { [pen] in
      for await t in pen.telemetry { samples.withLock { $0.append(t) } }
    }
    let eventTask = Task.detached { [pen] in
      for await e in pen.events { events.withLock { $0.append(e) } }
    }
    defer {
      telemetryTask.cancel()
      eventTask.cancel()
    }
    let t0 = pen.now
    contact?(true)
    var result = Result(
      aborted: nil, delivered: .zero, remaining: envelope.rfDoseCap, passes: 0, elapsed: .zero)
    do { try pen.start() } catch {
      result.aborted = "the pen did not start: \(error)"
      return result
    }
    var last: Telemetry? = nil
    var wasInContact = false
    var lastSaved = Microseconds.zero
    var lastPrinted = Microseconds.zero
    var elapsed = Microseconds.zero
    while elapsed < duration && result.aborted == nil {
      if let contact {
        let inPass = elapsed.rawValue % (Self.passOn.rawValue + Self.passOff.rawValue)
        contact(inPass < Self.passOn.rawValue)
      }
      pen.wait(for: Self.step)
      elapsed = Microseconds(pen.now.rawValue &- t0.rawValue)
      var batch: [SessionSample] = []
      for t in samples.withLock({ s -> [Telemetry] in
        defer { s = [] }
        return s
      }) {
        let contact = t.flags.contains(.skinContact)
        if contact && !wasInContact && t.state == .treating { result.passes += 1 }
        wasInContact = contact
        last = t
        if t.timestamp.rawValue >= lastSaved.rawValue + Self.step.rawValue {
          batch.append(SessionSample(t))
          lastSaved = t.timestamp
        }
      }
      if !batch.isEmpty { try? store.appendSamples(session: sessionID, batch) }
      for e in events.withLock({ s -> [PenDriver.PenEvent] in
        defer { s = [] }
        return s
      }) {
        switch e {
        case .fault(let f), .guardStopped(let f), .guardEmergencyStop(let f):
          result.aborted =
            "pen fault: \(f.catalogueName) at \(String(format: "%.1f", Double(elapsed.rawValue) / 1e6)) s"
        case .lost:
          result.aborted =
            "the pen was lost (no frame for 300 ms) at \(String(format: "%.1f", Double(elapsed.rawValue) / 1e6)) s"
        case .state(.fault, let f):
          result.aborted =
            "pen fault: \(f.catalogueName) at \(String(format: "%.1f", Double(elapsed.rawValue) / 1e6)) s"
        case .state(.estop, _):
          result.aborted =
            "emergency stop at \(String(format: "%.1f", Double(elapsed.rawValue) / 1e6)) s"
        case .state: break
        }
        if result.aborted != nil { break }
      }
      if let last, let status,
        elapsed.rawValue >= lastPrinted.rawValue + 1_000_000 || result.aborted != nil
      {
        lastPrinted = elapsed
        status(statusLine(last, elapsed: elapsed, passes: result.passes))
      }
    }
    if result.aborted == nil {
      try? pen.stop()
      try? pen.disarm()
    }
    // The last word on the energy: the final samples after stopping.
    pen.wait(for: .milliseconds(30))
    let tail = samples.withLock { $0 }
    if let final = tail.last ?? last {
      if let l = last, final.timestamp.rawValue >= l.timestamp.rawValue {
        try? store.appendSamples(session: sessionID, [SessionSample(final)])
      }
      result.delivered = final.rfDelivered
      result.remaining = final.rfRemaining
    }
    result.elapsed = elapsed
    return result
  }

  /// The live status line: time, state, depth, speed, passes, and RF delivered and left.
  public func statusLine(_ t: Telemetry, elapsed: Microseconds, passes: Int) -> String {
    var line =
      "  \(String(format: "%5.1f", Double(elapsed.rawValue) / 1e6))/\(String(format: "%g", Double(duration.rawValue) / 1e6)) s  \(t.state.catalogueName)  depth \(String(format: "%.2f", t.depth.value)) mm  speed \(String(format: "%.1f", t.speed.value)) Hz  pass \(passes)"
    if envelope.rfAllowed && envelope.recommendedRFEnergyPerPin.value.value > 0 {
      line +=
        "  RF \(String(format: "%.1f", t.rfDelivered.value / 1000)) J delivered, \(String(format: "%.1f", t.rfRemaining.value / 1000)) J left"
    }
    return line
  }
}
