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
    /// RF energy delivered in the session: the most the pen's telemetry reported.
    public var delivered: Millijoules
    /// RF energy the area's cap still allowed, as of that report.
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
  /// emergency stop, a reset or a lost pen, saving samples to the session as it goes; then stops
  /// and disarms a pen that completed. The caller closes the session with the result.
  public func execute() -> Result {
    let inbox = TelemetryInbox()
    let events = Mutex<[PenDriver.PenEvent]>([])
    // The readers get a thread of their own: this run blocks its caller while it waits for
    // them, so they must not depend on the cooperative pool, which that caller or other work
    // may be holding.
    let readers = ReaderThread()
    let readersDone = DispatchSemaphore(value: 0)
    let telemetryTask = Task(executorPreference: readers) { [pen] in
      defer { readersDone.signal() }
      for await t in pen.telemetry { inbox.append(t) }
      inbox.end()
    }
    let eventTask = Task(executorPreference: readers) { [pen] in
      defer { readersDone.signal() }
      for await e in pen.events { events.withLock { $0.append(e) } }
    }
    defer {
      telemetryTask.cancel()
      eventTask.cancel()
      readersDone.wait()
      readersDone.wait()
      readers.close()
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
    // The most energy the pen reported: a pen that resets (a brown-out) counts from zero again,
    // so its last sample would understate what this session delivered (SR-032).
    var most: Telemetry? = nil
    // Seen treating, in each stream on its own: each stream is in order, the two are not.
    var treatedSample = false
    var treatedEvent = false
    var wasInContact = false
    var lastSaved = Microseconds.zero
    var lastPrinted = Microseconds.zero
    var elapsed = Microseconds.zero
    func when() -> String { "at \(String(format: "%.1f", Double(elapsed.rawValue) / 1e6)) s" }
    func abort(_ reason: String) { result.aborted = result.aborted ?? "\(reason) \(when())" }
    // One sample: passes, energy, the samples to save, and a pen that left treatment by itself.
    // The sample's state comes in order with the pen's other frames, so a fault, an emergency
    // stop or a reset is seen here even when the event reader lags behind.
    func look(at t: Telemetry, saving batch: inout [SessionSample]) {
      let contact = t.flags.contains(.skinContact)
      if contact && !wasInContact && t.state == .treating { result.passes += 1 }
      wasInContact = contact
      last = t
      if most.map({ t.rfDelivered >= $0.rfDelivered }) ?? true { most = t }
      if t.timestamp.rawValue >= lastSaved.rawValue + Self.step.rawValue {
        batch.append(SessionSample(t))
        lastSaved = t.timestamp
      }
      guard t.timestamp >= t0 else { return }
      switch t.state {
      case .treating: treatedSample = true
      case .fault: abort("pen fault: \(t.fault.catalogueName)")
      case .estop: abort("emergency stop")
      // Only a reset takes a treating pen back to boot or idle (SR-032): it will not resume.
      case .idle, .boot: if treatedSample { abort("the pen reset (power lost)") }
      default: break
      }
    }
    func hear(_ e: PenDriver.PenEvent) {
      switch e {
      case .fault(let f), .guardStopped(let f), .guardEmergencyStop(let f):
        abort("pen fault: \(f.catalogueName)")
      case .lost: abort("the pen was lost (no frame for 300 ms)")
      case .state(.fault, let f): abort("pen fault: \(f.catalogueName)")
      case .state(.estop, _): abort("emergency stop")
      case .state(.treating, _): treatedEvent = true
      case .state(.idle, _), .state(.boot, _):
        if treatedEvent { abort("the pen reset (power lost)") }
      case .state: break
      }
    }
    while elapsed < duration && result.aborted == nil {
      if let contact {
        let inPass = elapsed.rawValue % (Self.passOn.rawValue + Self.passOff.rawValue)
        contact(inPass < Self.passOn.rawValue)
      }
      pen.wait(for: Self.step)
      elapsed = Microseconds(pen.now.rawValue &- t0.rawValue)
      var batch: [SessionSample] = []
      for t in inbox.take() { look(at: t, saving: &batch) }
      if !batch.isEmpty { try? store.appendSamples(session: sessionID, batch) }
      for e in events.withLock({ s -> [PenDriver.PenEvent] in
        defer { s = [] }
        return s
      }) where result.aborted == nil { hear(e) }
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
    // The last word on the outcome and the energy. The readers run on their own and can lag the
    // pen's clock (a simulated pen's runs as fast as the host computes), so wait until the
    // telemetry reader holds a sample from after the stop, or its stream has ended (a lost pen).
    let stoppedAt = pen.now
    pen.wait(for: .milliseconds(30))
    let caughtUp = inbox.waitForSample(at: stoppedAt, timeout: 30)
    var tail: [SessionSample] = []
    for t in inbox.take() { look(at: t, saving: &tail) }
    for e in events.withLock({ $0 }) { hear(e) }
    if inbox.isEnded { abort("the pen was lost (no frame for 300 ms)") }
    if !caughtUp {
      // Never "completed" on a view of the pen that stops short of its end.
      abort("the host fell behind the pen's telemetry; how the session ended is not known")
    }
    if let final = last, final.timestamp != lastSaved { tail.append(SessionSample(final)) }
    if !tail.isEmpty { try? store.appendSamples(session: sessionID, tail) }
    if let most {
      result.delivered = most.rfDelivered
      result.remaining = most.rfRemaining
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

/// Telemetry handed from the run's reader task to the run, and whether its stream has ended.
final class TelemetryInbox: Sendable {
  struct State {
    var samples: [Telemetry] = []
    var newest: Microseconds? = nil
    var ended = false
  }

  let state = Mutex(State())
  let signal = NSCondition()

  func append(_ t: Telemetry) {
    state.withLock {
      $0.samples.append(t)
      $0.newest = t.timestamp
    }
    wake()
  }

  func end() {
    state.withLock { $0.ended = true }
    wake()
  }

  /// The samples received since the last call, in order.
  func take() -> [Telemetry] {
    state.withLock { s -> [Telemetry] in
      defer { s.samples = [] }
      return s.samples
    }
  }

  var isEnded: Bool { state.withLock { $0.ended } }

  /// Blocks until a sample stamped at or after `time` has arrived or the stream has ended (true),
  /// or `timeout` seconds of real time have passed (false). A live pen sends one every 10 ms; the
  /// timeout is for a reader that cannot run at all.
  func waitForSample(at time: Microseconds, timeout: TimeInterval) -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    signal.lock()
    defer { signal.unlock() }
    while !state.withLock({ s in s.ended || s.newest.map { $0 >= time } ?? false }) {
      if !signal.wait(until: deadline) {
        return state.withLock { s in s.ended || s.newest.map { $0 >= time } ?? false }
      }
    }
    return true
  }

  func wake() {
    signal.lock()
    signal.broadcast()
    signal.unlock()
  }
}

/// One thread that runs the jobs of the tasks that prefer it, in order, until it is closed.
final class ReaderThread: TaskExecutor {
  struct Queue {
    var jobs: [UnownedJob] = []
    var closed = false
  }

  let queue = Mutex(Queue())
  let ready = DispatchSemaphore(value: 0)

  init() {
    let thread = Thread { [self] in serve() }
    thread.name = "PenClinic treatment run readers"
    thread.start()
  }

  func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    queue.withLock { $0.jobs.append(job) }
    ready.signal()
  }

  /// Ends the thread once it has run every job enqueued before.
  func close() {
    queue.withLock { $0.closed = true }
    ready.signal()
  }

  func serve() {
    while true {
      ready.wait()
      let (job, closed) = queue.withLock { q -> (UnownedJob?, Bool) in
        (q.jobs.isEmpty ? nil : q.jobs.removeFirst(), q.closed)
      }
      if let job {
        job.runSynchronously(on: asUnownedTaskExecutor())
      } else if closed {
        return
      }
    }
  }
}
