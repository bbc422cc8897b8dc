import Foundation
import PenClinic
import PenDriver
import PenSafety
import PenSimulator
import PenWire
import Synchronization
import Testing

// MARK: - A simulated pen whose clock the test moves

/// The simulator's in-process loopback with its virtual clock in the test's hands.
///
/// Over a bare `LoopbackTransport` the pen's thread ticks the simulator whenever it waits for a
/// frame, so the virtual instant at which a test's command reaches the pen depends on how the
/// operating system schedules two threads. Here the pen's thread may tick only up to a horizon the
/// test sets; at the horizon it finds nothing and reports itself idle. A command issued while the
/// clock stands still reaches the pen at that very instant, so every run of a scenario sends the
/// same frames at the same virtual times: the same seed gives the same table.
final class SteppedLoopback: PenTransport {
  let loopback: LoopbackTransport
  let state: Mutex<State>
  let signal = NSCondition()

  struct State {
    /// The pen's thread may tick the simulator up to here.
    var horizon: UInt64
    /// The instant at which the pen's thread last polled with nothing to read and no time to
    /// spend: every frame up to it has been handled, and its housekeeping has run.
    var idleAt: UInt64? = nil
    /// The pen's thread has been idle since the last command went on the wire.
    var idleSinceCommand = false
    /// The sequence number of the command on the wire that the pen has not answered yet.
    var unanswered: UInt16? = nil
    /// The host's last frame handed to the pen, and when.
    var lastHostFrame: UInt64 = 0
    /// The link is cut: every call fails as if the cable were pulled.
    var cut = false
  }

  init(_ loopback: LoopbackTransport) {
    self.loopback = loopback
    state = Mutex(State(horizon: loopback.now.rawValue))
  }

  var now: Microseconds { loopback.now }

  func send(_ frame: UnsafeRawBufferPointer, timeout: Microseconds) throws(TransportError) {
    if state.withLock({ $0.cut }) { throw .disconnected }
    let header = Self.header(frame)
    try loopback.send(frame, timeout: timeout)
    let at = loopback.now.rawValue
    state.withLock { s in
      s.lastHostFrame = at
      // A command waits for its answer; heartbeats and the guard's own stop do not count.
      if let header, header.flags.contains(.ackRequested),
        header.sequence != SafetyGuardPath.stopSequence
      {
        s.unanswered = header.sequence
        s.idleSinceCommand = false
      }
    }
    wake()
  }

  func receive(from endpoint: PenEndpoint, timeout: Microseconds) throws(TransportError)
    -> [UInt8]
  {
    if state.withLock({ $0.cut }) { throw .disconnected }
    return try loopback.receive(from: endpoint, timeout: budget(timeout))
  }

  func receiveNext(timeout: Microseconds) throws(TransportError) -> (PenEndpoint, [UInt8]) {
    if state.withLock({ $0.cut }) { throw .disconnected }
    let allowed = budget(timeout)
    do {
      let got = try loopback.receiveNext(timeout: allowed)
      if let header = got.1.withUnsafeBytes({ Self.header($0) }), header.flags.contains(.response) {
        state.withLock { s in if s.unanswered == header.sequence { s.unanswered = nil } }
        wake()
      }
      return got
    } catch .timeout {
      if allowed == .zero {
        let at = loopback.now.rawValue
        state.withLock { s in
          s.idleAt = at
          s.idleSinceCommand = true
        }
        wake()
        // The clock stands still until the test moves it or sends a command: rest a moment
        // rather than spin (a command waits at most this long to go out; nothing depends on it).
        signal.lock()
        if state.withLock({ $0.horizon <= at && !$0.cut }) {
          _ = signal.wait(until: Date(timeIntervalSinceNow: 0.000_5))
        }
        signal.unlock()
      }
      throw .timeout(endpoint: .responses, after: timeout)
    } catch { throw error }
  }

  func emergencyStop() throws(TransportError) {
    if state.withLock({ $0.cut }) { throw .disconnected }
    try loopback.emergencyStop()
  }

  func close() { loopback.close() }

  /// How long the pen's thread may tick now: up to the horizon, and no longer than it asked.
  func budget(_ timeout: Microseconds) -> Microseconds {
    let horizon = state.withLock { $0.horizon }
    let now = loopback.now.rawValue
    return Microseconds(horizon > now ? min(timeout.rawValue, horizon - now) : 0)
  }

  /// Flags and sequence number of an encoded frame (framing.md: bytes 3, 4–5 little-endian).
  static func header(_ bytes: UnsafeRawBufferPointer) -> (flags: FrameFlags, sequence: UInt16)? {
    guard bytes.count >= FrameLayout.headerSize else { return nil }
    return (FrameFlags(rawValue: bytes[3]), UInt16(bytes[4]) | UInt16(bytes[5]) << 8)
  }

  // MARK: The test's side

  func wake() {
    signal.lock()
    signal.broadcast()
    signal.unlock()
  }

  func setHorizon(_ t: UInt64) {
    state.withLock { $0.horizon = t }
    wake()
  }

  func cutLink() {
    state.withLock { $0.cut = true }
    wake()
  }

  /// Blocks until `condition` holds (or, unless `ignoringLoss`, the pen is declared lost, after
  /// which its thread no longer polls). Woken by the pen's thread; the bounded wait only lets it
  /// notice a loss, which does not pass through this transport.
  func wait(
    for pen: Pen, ignoringLoss: Bool = false, until condition: (State) -> Bool
  ) {
    signal.lock()
    defer { signal.unlock() }
    while !state.withLock({ condition($0) }) && (ignoringLoss || !pen.isLost) {
      _ = signal.wait(until: Date(timeIntervalSinceNow: 0.001))
    }
  }
}

/// A simulated pen connected through the full `Pen` API over a `SteppedLoopback`, with the helpers
/// a scenario needs: let virtual time pass, run a command (letting time pass only while the pen
/// owes an answer), and end the link to collect everything the host was told.
final class SteppedPen: Sendable {
  let sim: SimulatedPen
  let link: SteppedLoopback
  let pen: Pen

  init(model: PenModelID, seed: UInt64, contact: Bool) throws(PenError) {
    sim = SimulatedPen(model: model, seed: seed)
    sim.advance(by: PenFirmware.bootTime)
    sim.with { $0.physics.skinContact = contact }
    link = SteppedLoopback(LoopbackTransport(pen: sim))
    pen = try Pen.connect(over: link)
  }

  var now: Microseconds { sim.with { $0.now } }

  /// Lets `span` of virtual time pass. While the host is connected its thread does the ticking
  /// and handles every frame up to the new instant; once the pen is lost the simulator ticks on
  /// alone.
  func advance(by span: Microseconds) {
    let target = now.rawValue + span.rawValue
    if !pen.isLost {
      link.setHorizon(target)
      link.wait(for: pen) { $0.idleAt == target }
    }
    let left = target - min(target, now.rawValue)
    if left > 0 { sim.advance(by: Microseconds(left)) }
  }

  /// Runs a `Pen` command as an application would, on its own thread. A pen that answers does so
  /// at the instant the command arrives, with the clock standing still; only while a command on
  /// the wire goes unanswered (a deaf or silent pen) does time pass, a millisecond at a time, so
  /// the driver's retransmissions and give-up happen on the virtual clock.
  func command<T: Sendable>(_ body: @escaping @Sendable (Pen) throws(PenError) -> T) -> Result<
    T, PenError
  > {
    let box = ResultBox<T>()
    let link = link
    let pen = pen
    let thread = Thread {
      let result = Result { () throws(PenError) -> T in try body(pen) }
      box.value.withLock { $0 = result }
      link.wake()
    }
    thread.start()
    while true {
      link.wait(for: pen) { s in
        box.isSet || (s.unanswered != nil && s.idleSinceCommand && s.idleAt == s.horizon)
      }
      if box.isSet { break }
      if pen.isLost {
        // The pen's thread answers every waiting command as it ends.
        link.wait(for: pen, ignoringLoss: true) { _ in box.isSet }
        break
      }
      advance(by: .milliseconds(1))
    }
    return box.value.withLock { $0! }
  }

  /// Ends the link as if the cable were pulled (unless the pen is lost already), which ends the
  /// host's event and telemetry streams; returns whether the pen was lost before.
  func end() -> Bool {
    let lost = pen.isLost
    if !lost {
      link.cutLink()
      link.wait(for: pen) { _ in false }
    }
    return lost
  }

  /// Every event and telemetry sample the host received, in order, without the loss `end()`
  /// caused. The streams have ended, so this reads what they hold and never waits for more.
  func received(lostBefore: Bool) async -> HostView {
    var events: [PenDriver.PenEvent] = []
    for await e in pen.events { events.append(e) }
    var telemetry: [Telemetry] = []
    for await t in pen.telemetry { telemetry.append(t) }
    if !lostBefore && events.last == .lost { events.removeLast() }
    pen.disconnect()
    return HostView(events: events, telemetry: telemetry, lost: lostBefore)
  }
}

/// What the host was told during a scenario.
struct HostView: Sendable {
  var events: [PenDriver.PenEvent]
  var telemetry: [Telemetry]
  var lost: Bool
}

/// Runs blocking work on a thread of its own. A test that waits on a simulated pen must not hold
/// one of the cooperative pool's few threads: the readers of other pens' streams run there.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { done in
    Thread { done.resume(with: Result { try body() }) }.start()
  }
}

/// As many simulated pens running at once as the machine has processors: each keeps a thread
/// busy ticking, and more would only slow every other test in the process.
actor PenSlots {
  static let shared = PenSlots(ProcessInfo.processInfo.activeProcessorCount)
  var free: Int
  var waiting: [CheckedContinuation<Void, Never>] = []

  init(_ count: Int) { free = max(1, count) }

  func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
    if free > 0 {
      free -= 1
    } else {
      await withCheckedContinuation { waiting.append($0) }
    }
    defer {
      if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
    return try await body()
  }
}

/// A flag one thread raises and others watch.
final class Flag: Sendable {
  let value = Mutex(false)
}

/// A command's result, set by the thread that ran it.
final class ResultBox<T: Sendable>: Sendable {
  let value = Mutex<Result<T, PenError>?>(nil)
  var isSet: Bool { value.withLock { $0 != nil } }
}

// MARK: - The fault matrix

/// Where the pen stands when the fault strikes.
enum MatrixState: String, CaseIterable, Sendable, Codable {
  case ready, armed, treating, paused
}

/// Every fault the simulator offers, in every state a session passes through, over the whole
/// stack: the simulated pen, the `Pen` API and its host guard, and the records store. Judged on
/// the simulator's truth record (what physically happened), on what the host was told, and on the
/// session record the host closed.
@Suite("Fault matrix")
struct FaultMatrixTests {
  static let tick = SafetyTiming.controlTick.rawValue
  static let seed: UInt64 = 7
  static let sessionID: UInt32 = 1
  /// An RF pen on the forehead, where RF is allowed: RF faults have something to act on. 4 Hz
  /// puts a stroke, and a 60 ms pulse, every 250 ms; SR-029 and SR-030 windows are two cycles.
  static let preset = PresetLimits(
    depth: SoftRange(Millimetres(0.75), min: Millimetres(0.5), max: Millimetres(1.0)),
    speed: SoftRange(Hertz(4), min: Hertz(1), max: Hertz(4)),
    rfEnergyPerPin: SoftRange(Millijoules(20), min: Millijoules(10), max: Millijoules(25)),
    rfPulseDuration: Milliseconds(60))
  static let pulse = Microseconds.milliseconds(60).rawValue
  static let twoCycles = SafetyTiming.window(SafetyTiming.stuckWindow, cyclesAt: Hertz(4)).rawValue
  /// How long each cell watches after the fault: past every bound that applies in the state.
  static func window(_ state: MatrixState) -> Microseconds {
    state == .treating ? .milliseconds(1_000) : .milliseconds(600)
  }

  static func envelope() throws -> SessionEnvelope {
    try SessionEnvelope.build(model: .rf200, area: .forehead, preset: preset, skin: .typeII)
  }

  // MARK: What the spec requires

  /// What Firmware-Specs/safety-requirements.md requires of the pen once the fault begins.
  enum Expected: Sendable, Hashable {
    /// Trip with this code within `bound` µs of the fault (RF off, needles stopped by then).
    case trip(FaultCode, bound: UInt64, rule: String)
    /// SR-015: trip `heartbeat_lost` 300 ms after the host's last frame, then within 1 tick.
    case heartbeatLost
    /// RF off within `bound` µs and inhibited with `flag`; the needles go on; no trip.
    case rfInhibited(flag: String, bound: UInt64, rule: String)
    /// SR-032: the pen resets, RF and needles stop at once, and it boots to idle with nothing.
    case reset
    /// Arming is refused with this reason; nothing happens before.
    case refusedAtArming(NackCode, rule: String)
    /// Nothing to act on in this state: no trip, no hazard, the session goes on.
    case noEffect(why: String)
  }

  static func expected(_ kind: FaultKind, _ state: MatrixState) -> Expected {
    let treating = state == .treating
    let active = state != .ready
    switch kind {
    case .sensor(.contact, .off), .sensor(.contact, .wrong), .sensor(.contact, .intermittent),
      .sensor(.contact, .garbage):
      // The reading says "no contact" (NaN or half of 1 is not > 0.5), at once or in turns.
      return treating
        ? .rfInhibited(flag: "rf_inhibit_contact", bound: 20_000, rule: "SR-012")
        : .noEffect(why: "SR-012: no RF to switch off outside treatment")
    case .sensor(.contact, _):
      return .noEffect(why: "the reading still says 'in contact', as the skin is")
    case .sensor(_, .off):
      return .trip(.sensorImplausible, bound: tick, rule: "SR-028")
    case .sensor(_, .garbage):
      // 1 tick after the first implausible value; garbage is implausible on most ticks.
      return .trip(.sensorImplausible, bound: 5_000, rule: "SR-028")
    case .sensor(_, .intermittent):
      return .trip(.sensorImplausible, bound: 3_000 + tick, rule: "SR-028")
    case .sensor(.speed, .stuck), .sensor(.speed, .slow):
      // A frozen (or 200 ms low-passed) tachometer while the motor is told to turn.
      return treating
        ? .trip(.sensorStuck, bound: twoCycles + 2 * tick, rule: "SR-029")
        : .noEffect(why: "SR-029: the motor is not commanded to move")
    case .sensor(.rfPower, .stuck), .sensor(.rfPower, .slow), .sensor(.rfPower, .delayed):
      // Mid-pulse, the reading keeps showing power once the pulse ends: RF looks stuck on.
      return treating
        ? .trip(
          .rfStuckOn, bound: pulse + SafetyTiming.rfStuckWindow.rawValue + tick, rule: "SR-031")
        : .noEffect(why: "RF is off and reads 0 W, frozen or not")
    case .sensor:
      return .noEffect(why: "a plausible reading near the truth, with no limit near")
    case .usbUnplug, .hostSilence:
      return active ? .heartbeatLost : .noEffect(why: "SR-015: in ready the loss is logged only")
    case .rfStuckOn:
      // RF is disabled at the latest when the pulse in progress ends (SR-031 counts from there).
      return treating
        ? .trip(
          .rfStuckOn, bound: pulse + SafetyTiming.rfStuckWindow.rawValue + tick, rule: "SR-031")
        : .noEffect(why: "SR-031: the RF supply relay is open outside treatment")
    case .motorStall:
      // Two cycles below 20 % of the setpoint; the motor takes ~16 ms (τ 10 ms) to get there.
      return treating
        ? .trip(.motorStall, bound: 20_000 + twoCycles + tick, rule: "SR-030")
        : .noEffect(why: "SR-030: the motor is not turning")
    case .overTemperature:
      return .trip(.tissueOverTemperature, bound: tick, rule: "SR-013")
    case .impedanceOpen, .impedanceShort:
      return treating
        ? .rfInhibited(flag: "rf_inhibit_impedance", bound: 20_000, rule: "SR-011")
        : .noEffect(why: "SR-011: no RF to switch off outside treatment")
    case .cartridgeReuse:
      return active
        ? .trip(.cartridgeInvalid, bound: tick, rule: "SR-017")
        : .refusedAtArming(.cartridgeUsed, rule: "SR-018")
    case .brownOut:
      return .reset
    }
  }

  // MARK: One cell

  /// What one cell observed.
  struct Observation: Sendable {
    var kind: FaultKind
    var state: MatrixState
    var injectedAt: UInt64
    var lastHostFrame: UInt64
    /// The trip the pen logged after the fault, and when (µs after it).
    var trip: (code: FaultCode, after: UInt64)?
    var brownOutLogged: Bool
    /// The last instants RF was on and the needles driven, µs after the fault (nil: not since).
    var rfAfter: UInt64?
    var drivingAfter: UInt64?
    var pulsesAtFault: Int
    var pulsesAtEnd: Int
    var endState: PenState
    var endFault: FaultCode
    var events: [PenDriver.PenEvent]
    var telemetryAfterFault: [Telemetry]
    var hostLost: Bool
    var armAttempt: Result<Bool, PenError>?
    var truthEnergy: Double
    var truthEnergyAtFault: Double
    var maxDepth: Double
    var maxPulseEnergyPerPin: Double
    var rfEnergyWithoutContact: Double
    var session: SessionRecord?
    var samples: Int
    var auditOK: Bool
    var closeError: String?
  }

  /// The blocking part of a cell, up to the end of the link.
  struct Scenario: Sendable {
    var stepped: SteppedPen
    var store: RecordsStore
    var session: Int64
    var injectedAt: UInt64
    var lastHostFrame: UInt64
    var pulsesAtFault: Int
    var energyAtFault: Double
    var armAttempt: Result<Bool, PenError>?
    var truth: TruthRecord
    var endState: PenState
    var endFault: FaultCode
    var log: [LoggedEvent]
    var lostBefore: Bool
  }

  static func run(_ kind: FaultKind, _ state: MatrixState) async throws -> Observation {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "fault-matrix-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    let scenario = try await PenSlots.shared.run {
      try await onOwnThread { try drive(kind, state, in: dir) }
    }
    let host = await scenario.stepped.received(lostBefore: scenario.lostBefore)
    return try await onOwnThread { try close(scenario, host, kind: kind, state: state) }
  }

  /// Brings the pen to the state, injects the fault, watches, and ends the link.
  static func drive(_ kind: FaultKind, _ state: MatrixState, in dir: URL) throws -> Scenario {
    let envelope = try envelope()
    let store = try RecordsStore(
      path: dir.appendingPathComponent("records.sqlite"), actor: "matrix")
    let stepped = try SteppedPen(model: .rf200, seed: seed, contact: true)
    let serial = stepped.pen.info.serial.description
    _ = try store.upsertDevice(DeviceIdentity(serial: serial, model: .rf200, firmware: "1.0.0"))
    let session = try store.beginSession(
      SessionStart(
        patient: "FM-0001", area: .forehead, presetID: "fault-matrix-rf", penSerial: serial,
        model: .rf200, fitzpatrick: .typeII, envelope: RecordJSON(envelope: envelope)))

    // Bring the pen to the state.
    try stepped.command { pen throws(PenError) in try pen.load(envelope, sessionID: sessionID) }
      .get()
    if state != .ready { try stepped.command { pen throws(PenError) in try pen.arm() }.get() }
    if state == .treating || state == .paused {
      try stepped.command { pen throws(PenError) in try pen.start() }.get()
      // A couple of pulses first, then into the middle of the next one.
      while stepped.sim.with({ $0.truth.pulses }) < 2 { stepped.advance(by: .milliseconds(10)) }
      while stepped.sim.with({ $0.truth.lastRFOn != $0.now }) {
        stepped.advance(by: .milliseconds(1))
      }
      stepped.advance(by: .milliseconds(5))
      guard stepped.sim.with({ $0.truth.lastRFOn == $0.now }) else {
        throw MatrixSetupError(reason: "RF is not on 5 ms into a pulse")
      }
      if state == .paused {
        try stepped.command { pen throws(PenError) in try pen.pause() }.get()
        stepped.advance(by: .milliseconds(50))
      }
    } else {
      stepped.advance(by: .milliseconds(20))
    }

    // The fault, at a known virtual time.
    let lastHostFrame = stepped.link.state.withLock { $0.lastHostFrame }
    let (t0, pulsesAtFault, energyAtFault) = stepped.sim.with { fw in
      fw.inject(ScheduledFault(kind, at: fw.now))
      return (fw.now.rawValue, fw.truth.pulses, fw.truth.rfEnergyBySession[sessionID]?.value ?? 0)
    }
    stepped.advance(by: window(state))

    // A pen that stayed ready is asked to arm: faults that matter only there show now.
    var armAttempt: Result<Bool, PenError>? = nil
    let stillReady = stepped.sim.with { $0.core.state == .ready }
    if state == .ready && stillReady && !stepped.pen.isLost {
      armAttempt = stepped.command { pen throws(PenError) in
        try pen.arm()
        return true
      }
    }
    // A treatment the fault did not end is stopped as the clinician would, and its last energy
    // reported.
    if stepped.sim.with({ $0.core.state == .treating }) && !stepped.pen.isLost {
      _ = stepped.command { pen throws(PenError) in try pen.stop() }
      stepped.advance(by: .milliseconds(30))
    }
    let (truth, endState, endFault, log) = stepped.sim.with {
      ($0.truth, $0.core.state, $0.core.latchedFault, $0.nvm.eventLog)
    }
    let lostBefore = stepped.end()
    return Scenario(
      stepped: stepped, store: store, session: session, injectedAt: t0,
      lastHostFrame: lastHostFrame, pulsesAtFault: pulsesAtFault, energyAtFault: energyAtFault,
      armAttempt: armAttempt, truth: truth, endState: endState, endFault: endFault, log: log,
      lostBefore: lostBefore)
  }

  /// Closes the session as a host that watched it would, and gathers what the cell observed.
  static func close(_ s: Scenario, _ host: HostView, kind: FaultKind, state: MatrixState) throws
    -> Observation
  {
    let t0 = s.injectedAt
    let tripEntry = s.log.first { $0.kind == .fault && $0.timestamp.rawValue >= t0 }
    func after(_ t: Microseconds?) -> UInt64? {
      guard let t, t.rawValue >= t0 else { return nil }
      return t.rawValue - t0
    }
    // Aborted on whatever the host was told, with the energy the pen reported.
    let closing = SessionClosing(events: host.events, telemetry: host.telemetry, lost: host.lost)
    var closeError: String? = nil
    do {
      try s.store.appendSamples(session: s.session, closing.samples)
      try s.store.finishSession(
        id: s.session, outcome: closing.reason == nil ? .completed : .aborted,
        reason: closing.reason, delivered: closing.delivered, passes: 1)
    } catch { closeError = "\(error)" }
    let truth = s.truth
    return Observation(
      kind: kind, state: state, injectedAt: t0, lastHostFrame: s.lastHostFrame,
      trip: tripEntry.map { ($0.fault, $0.timestamp.rawValue - t0) },
      brownOutLogged: s.log.contains { $0.kind == .brownOut && $0.timestamp.rawValue >= t0 },
      rfAfter: after(truth.lastRFOn), drivingAfter: after(truth.lastDriving),
      pulsesAtFault: s.pulsesAtFault, pulsesAtEnd: truth.pulses, endState: s.endState,
      endFault: s.endFault, events: host.events,
      telemetryAfterFault: host.telemetry.filter { $0.timestamp.rawValue > t0 },
      hostLost: host.lost, armAttempt: s.armAttempt,
      truthEnergy: truth.rfEnergyBySession[sessionID]?.value ?? 0,
      truthEnergyAtFault: s.energyAtFault, maxDepth: truth.maxDepth.value,
      maxPulseEnergyPerPin: truth.maxPulseEnergyPerPin.value,
      rfEnergyWithoutContact: truth.rfEnergyWithoutContact.value,
      session: try s.store.session(id: s.session),
      samples: try s.store.samples(session: s.session).count,
      auditOK: try s.store.verifyAudit().ok, closeError: closeError)
  }

  /// A cell could not reach the state it tests.
  struct MatrixSetupError: Error, CustomStringConvertible {
    var reason: String
    var description: String { "the cell could not be set up: \(reason)" }
  }

  // MARK: Judging a cell

  /// What the table shows of a cell, and what went against the spec.
  struct Verdict: Sendable {
    var outcome: String
    var reaction: String
    var bound: String
    var problems: [String]
  }

  static func ms(_ us: UInt64) -> String { String(format: "%.1f", Double(us) / 1_000) }

  static func judge(_ o: Observation) -> Verdict {
    var problems: [String] = []
    let expected = Self.expected(o.kind, o.state)
    let treating = o.state == .treating
    let hostFaults = o.events.compactMap { e -> FaultCode? in
      switch e {
      case .fault(let f), .guardStopped(let f), .guardEmergencyStop(let f): f
      default: nil
      }
    }
    let safeAfter = max(o.rfAfter ?? 0, o.drivingAfter ?? 0)

    // Whatever the fault: inside the envelope's hard limits, never RF without contact.
    if o.maxDepth > 1.0 + SafetyTiming.depthTolerance.value {
      problems.append("depth reached \(o.maxDepth) mm (SR-002)")
    }
    if o.maxPulseEnergyPerPin > 30 * (1 + SafetyTiming.pulseEnergyToleranceFraction) {
      problems.append("a pulse delivered \(o.maxPulseEnergyPerPin) mJ/pin (SR-006)")
    }
    if o.rfEnergyWithoutContact > 1e-9 {
      problems.append("\(o.rfEnergyWithoutContact) mJ of RF without contact (SR-012)")
    }

    var outcome = ""
    var reaction = "—"
    var bound = "—"
    switch expected {
    case .trip(let code, let limit, let rule):
      bound = "\(ms(limit)) (\(rule))"
      if let trip = o.trip {
        outcome = "trip `\(trip.code.catalogueName)`"
        reaction = ms(max(trip.after, safeAfter))
        if trip.code != code { problems.append("tripped \(trip.code), expected \(code)") }
        if trip.after > limit { problems.append("tripped after \(trip.after) µs, bound \(limit)") }
        if safeAfter > trip.after {
          problems.append("RF or needles on \(safeAfter) µs after the fault, past the trip")
        }
      } else {
        outcome = "no trip"
        problems.append("expected trip \(code) within \(limit) µs; none")
      }
      if !treating && safeAfter > 0 { problems.append("RF or needles on outside treatment") }
      if o.endState != .fault || o.endFault != code {
        problems.append("ended in \(o.endState) \(o.endFault), expected fault \(code)")
      }
      if !hostFaults.contains(code) {
        problems.append("the host was not told \(code): \(o.events)")
      }
    case .heartbeatLost:
      // The host's last frame came at or before the fault.
      let limit = o.lastHostFrame + SafetyTiming.heartbeatTimeout.rawValue + tick - o.injectedAt
      bound = "\(ms(limit)) (SR-015)"
      if let trip = o.trip {
        outcome = "trip `\(trip.code.catalogueName)`"
        reaction = ms(max(trip.after, safeAfter))
        if trip.code != .heartbeatLost {
          problems.append("tripped \(trip.code), expected heartbeat_lost")
        }
        if trip.after > limit { problems.append("tripped after \(trip.after) µs, bound \(limit)") }
        if safeAfter > trip.after { problems.append("RF or needles on past the trip") }
      } else {
        outcome = "no trip"
        problems.append("expected heartbeat_lost within \(limit) µs; none")
      }
      if o.kind == .usbUnplug {
        outcome = "host: pen lost (SR-016); pen: " + outcome
        if !o.hostLost { problems.append("the host did not report the pen lost (SR-016)") }
      } else if !hostFaults.contains(.heartbeatLost) {
        problems.append("the host was not told heartbeat_lost: \(o.events)")
      }
    case .rfInhibited(let flag, let limit, let rule):
      bound = "\(ms(limit)) (\(rule))"
      let flagBit: PenFlags = flag == "rf_inhibit_contact" ? .rfInhibitContact : .rfInhibitImpedance
      reaction = o.rfAfter.map(ms) ?? "0.0"
      outcome = "RF off, `\(flag)`"
      if let rf = o.rfAfter, rf > limit { problems.append("RF on until \(rf) µs, bound \(limit)") }
      if o.trip != nil { problems.append("tripped \(o.trip!.code); an RF inhibit is not a trip") }
      if (o.drivingAfter ?? 0) < window(o.state).rawValue / 2 {
        problems.append("the needles stopped; only RF should")
      }
      if !o.telemetryAfterFault.contains(where: { $0.flags.contains(flagBit) }) {
        problems.append("no telemetry told the host \(flag)")
      }
      if !hostFaults.isEmpty { problems.append("the host reported faults \(hostFaults)") }
    case .reset:
      bound = "\(ms(tick)) (SR-032)"
      reaction = ms(safeAfter)
      outcome = "reset → `\(o.endState.catalogueName)`"
      if safeAfter > tick { problems.append("RF or needles on \(safeAfter) µs after the reset") }
      if o.endState != .idle { problems.append("ended in \(o.endState), expected idle") }
      if !o.brownOutLogged { problems.append("no brown_out in the pen's event log") }
      let sawIdleAfterStart = o.events.drop(while: { $0 != .state(.ready, fault: .none) }).contains
      {
        $0 == .state(.idle, fault: .none)
      }
      if !sawIdleAfterStart { problems.append("the host was not told the pen reset: \(o.events)") }
    case .refusedAtArming(let code, let rule):
      bound = "at arming (\(rule))"
      outcome = "no effect; arming refused"
      if let trip = o.trip { problems.append("tripped \(trip.code) in ready") }
      switch o.armAttempt {
      case .failure(.refused(_, let got, _))?:
        outcome = "no effect; arming refused `\(got.catalogueName)`"
        if got != code { problems.append("arming refused \(got), expected \(code)") }
      default:
        problems.append("arming was not refused: \(String(describing: o.armAttempt))")
      }
    case .noEffect(let why):
      outcome = "no effect: \(why)"
      if let trip = o.trip { problems.append("tripped \(trip.code) (\(trip.after) µs)") }
      if o.endState == .fault || o.endState == .estop || o.endState == .idle {
        problems.append("ended in \(o.endState)")
      }
      if !hostFaults.isEmpty { problems.append("the host reported faults \(hostFaults)") }
      if !treating && safeAfter > 0 { problems.append("RF or needles on outside treatment") }
      if treating && o.pulsesAtEnd < o.pulsesAtFault + 2 {
        problems.append("the treatment did not go on (\(o.pulsesAtEnd - o.pulsesAtFault) pulses)")
      }
      if o.kind == .usbUnplug {
        outcome = "host: pen lost (SR-016); pen: no trip (ready)"
        if !o.hostLost { problems.append("the host did not report the pen lost (SR-016)") }
      }
      switch o.armAttempt {
      case .success?: outcome += o.kind == .usbUnplug ? "" : "; arms"
      case .failure(let e)?:
        let deaf = o.kind == .hostSilence || o.kind == .usbUnplug
        if deaf {
          outcome += "; arming unanswered"
        } else {
          problems.append("arming failed: \(e)")
        }
      case nil: break
      }
    }

    // The session record: closed, consistent, and no energy lost that the host was told of.
    if let error = o.closeError { problems.append("the session could not be closed: \(error)") }
    if let s = o.session {
      let reported =
        !hostFaults.isEmpty || o.hostLost || expected == .reset
        || o.events.contains { if case .state(.fault, _) = $0 { true } else { false } }
      let wanted: SessionStatus = reported ? .aborted : .completed
      if s.status != wanted { problems.append("session \(s.status), expected \(wanted)") }
      let energyKnown: Bool
      if case .sensor(.rfPower, _) = o.kind { energyKnown = false } else { energyKnown = true }
      // One telemetry period of RF at the pen's rated power: what a host can miss before a reset.
      let period = 10.0 * 60.0
      if energyKnown && o.kind != .brownOut && o.kind != .usbUnplug {
        if abs(s.delivered.value - o.truthEnergy) > 1 {
          problems.append("recorded \(s.delivered.value) mJ, delivered \(o.truthEnergy) mJ")
        }
      } else if o.kind == .brownOut || o.kind == .usbUnplug {
        if s.delivered.value > o.truthEnergy + 1
          || s.delivered.value < o.truthEnergyAtFault - period
        {
          problems.append(
            "recorded \(s.delivered.value) mJ; \(o.truthEnergyAtFault) mJ delivered before the fault"
          )
        }
      }
      if s.status != .inProgress && o.samples == 0 { problems.append("no samples saved") }
    } else {
      problems.append("no session record")
    }
    if !o.auditOK { problems.append("the audit chain does not verify") }
    return Verdict(outcome: outcome, reaction: reaction, bound: bound, problems: problems)
  }

  // MARK: The tests

  @Test(
    "SR-011 SR-012 SR-013 SR-015 SR-016 SR-017 SR-018 SR-028 SR-029 SR-030 SR-031 SR-032: each fault in each state reaches the safe state within its bound, is reported, and the session is closed",
    arguments: FaultKind.all, MatrixState.allCases)
  func cell(_ kind: FaultKind, _ state: MatrixState) async throws {
    let observation = try await Self.run(kind, state)
    let verdict = Self.judge(observation)
    #expect(verdict.problems.isEmpty, "\(kind.name) in \(state): \(verdict.problems)")
    MatrixReport.record(kind: kind, state: state, verdict: verdict)
  }

  /// One fault of each kind of ending a treatment can have: a sensor trip at once, a trip after
  /// a persistence window, an RF inhibit that lets it go on, a lost link, a pen that stops for a
  /// silent host, a reset, a swapped cartridge, a reading that hides nothing, and RF power
  /// misread.
  static let runFaults: [FaultKind] = [
    .sensor(.depth, .off), .sensor(.speed, .stuck), .sensor(.contact, .intermittent),
    .sensor(.depth, .wrong), .sensor(.rfPower, .slow), .usbUnplug, .hostSilence, .rfStuckOn,
    .motorStall, .overTemperature, .impedanceOpen, .cartridgeReuse, .brownOut,
  ]

  /// What one treatment run left behind.
  struct RunOutcome: Sendable {
    var result: TreatmentRun.Result
    var closed: Result<Void, RecordsError>
    var record: SessionRecord?
    var truth: TruthRecord
    var interrupted: Bool
    var auditOK: Bool
  }

  /// The clinic's own treatment loop, as penctl runs it, over the plain loopback (its clock runs
  /// free, so only outcomes are judged, never instants): a run the pen interrupted — a trip, a
  /// reset, a lost link — closes aborted; any other completes; either way with the energy the
  /// pen reported, never more than it delivered.
  @Test(
    "SR-016 SR-032: a treatment run closes its session aborted when a fault interrupted it, with the energy delivered",
    arguments: runFaults)
  func treatmentRun(_ kind: FaultKind) async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "fault-matrix-run-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    let o = try await PenSlots.shared.run {
      try await onOwnThread { try Self.treat(kind, in: dir) }
    }

    #expect(
      (try? o.closed.get()) != nil, "\(kind.name): the session could not be closed: \(o.closed)")
    let record = try #require(o.record)
    #expect(
      record.status == (o.interrupted ? .aborted : .completed),
      "\(kind.name): \(record.status), reason \(record.reason ?? "none")")
    #expect(record.delivered == o.result.delivered)
    let delivered = o.truth.rfEnergyBySession[Self.sessionID]?.value ?? 0
    #expect(delivered > 0, "\(kind.name): the run delivered RF")
    // With its RF power sensor at fault the pen counts what the sensor says (more or less than
    // was delivered); otherwise the record holds what was delivered.
    let sensorOfEnergy: Bool
    if case .sensor(.rfPower, _) = kind { sensorOfEnergy = true } else { sensorOfEnergy = false }
    if !sensorOfEnergy {
      #expect(
        record.delivered.value <= delivered + 1,
        "\(kind.name): recorded \(record.delivered.value) mJ, more than the \(delivered) mJ delivered"
      )
    }
    if !sensorOfEnergy && kind != .usbUnplug && kind != .brownOut {
      #expect(
        abs(record.delivered.value - delivered) <= 1,
        "\(kind.name): recorded \(record.delivered.value) mJ, delivered \(delivered) mJ")
    }
    if kind == .brownOut {
      // A reset pen counts from zero again: the record keeps what it reported before, short of
      // at most one telemetry period of RF at the pen's rated power.
      #expect(
        record.delivered.value >= delivered - 10 * 60,
        "\(kind.name): recorded \(record.delivered.value) mJ of the \(delivered) mJ delivered")
    }
    #expect(o.auditOK)
  }

  /// The same run with the cooperative pool, where the run's stream readers live, kept busy until
  /// well after the run's end (as other work on a loaded host can): the run must still learn how
  /// the pen ended and what it delivered, not close on what its readers had got to.
  @Test(
    "SR-016: a treatment run's outcome and energy do not depend on its stream readers keeping up")
  func treatmentRunWithReadersBehind() async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "fault-matrix-run-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    let o = try await PenSlots.shared.run {
      try await onOwnThread { try Self.treat(.sensor(.depth, .off), in: dir, readersBehind: true) }
    }
    let record = try #require(o.record)
    #expect(o.interrupted)
    #expect(record.status == .aborted, "\(record.status), reason \(record.reason ?? "none")")
    let delivered = o.truth.rfEnergyBySession[Self.sessionID]?.value ?? 0
    #expect(delivered > 0)
    #expect(abs(record.delivered.value - delivered) <= 1, "recorded \(record.delivered.value) mJ")
    #expect(o.auditOK)
  }

  /// Blocks the calling thread until the pen's clock reaches `until`, or the run has returned
  /// (its pen's clock stops with it).
  static func hold(until: UInt64, on sim: SimulatedPen, or ended: Flag) {
    let held = NSCondition()
    held.lock()
    while sim.with({ $0.now.rawValue }) < until && !ended.value.withLock({ $0 }) {
      _ = held.wait(until: Date(timeIntervalSinceNow: 0.001))
    }
    held.unlock()
  }

  static func treat(_ kind: FaultKind, in dir: URL, readersBehind: Bool = false) throws
    -> RunOutcome
  {
    let envelope = try envelope()
    let store = try RecordsStore(
      path: dir.appendingPathComponent("records.sqlite"), actor: "matrix")
    let sim = SimulatedPen(model: .rf200, seed: seed)
    sim.advance(by: PenFirmware.bootTime)
    let pen = try Pen.connect(over: LoopbackTransport(pen: sim))
    defer { pen.disconnect() }
    let serial = pen.info.serial.description
    _ = try store.upsertDevice(DeviceIdentity(serial: serial, model: .rf200, firmware: "1.0.0"))
    let id = try store.beginSession(
      SessionStart(
        patient: "FM-0002", area: .forehead, presetID: "fault-matrix-rf", penSerial: serial,
        model: .rf200, fitzpatrick: .typeII, envelope: RecordJSON(envelope: envelope)))
    try pen.load(envelope, sessionID: sessionID)
    try pen.arm()
    // The fault strikes once two pulses have gone by: the run's scripted contact, which it
    // sets every 100 ms of pen time, looks at the pen and injects it then. The clock runs free,
    // so this ties the fault to the treatment, not to how fast this test gets going.
    let injectedAt = Mutex<UInt64?>(nil)
    let run = TreatmentRun(
      pen: pen, store: store, sessionID: id, envelope: envelope, duration: .seconds(2),
      contact: { on in
        sim.with { fw in
          fw.physics.skinContact = on
          if fw.truth.pulses >= 2, injectedAt.withLock({ $0 == nil }) {
            fw.inject(ScheduledFault(kind, at: fw.now))
            injectedAt.withLock { $0 = fw.now.rawValue }
          }
        }
      })
    let runEnded = Flag()
    if readersBehind {
      // Every thread of the pool, and then some, held until 1 s of pen time after the run ends;
      // queued before the run's readers, these run first.
      let until = sim.with { $0.now.rawValue } + 3_000_000
      for _ in 0..<(ProcessInfo.processInfo.activeProcessorCount + 2) {
        Task.detached { hold(until: until, on: sim, or: runEnded) }
      }
    }
    let result = run.execute()
    runEnded.value.withLock { $0 = true }
    let closed = Result { () throws(RecordsError) in
      try store.finishSession(
        id: id, outcome: result.aborted == nil ? .completed : .aborted, reason: result.aborted,
        delivered: result.delivered, passes: result.passes)
    }
    let (truth, log, end) = sim.with { ($0.truth, $0.nvm.eventLog, $0.now.rawValue) }
    guard let t0 = injectedAt.withLock({ $0 }) else {
      throw MatrixSetupError(reason: "the run ended before two pulses had gone by")
    }
    // The oracle: what the pen's own log and the link say happened during the run.
    let interrupted =
      kind == .usbUnplug
      || log.contains {
        ($0.kind == .fault || $0.kind == .brownOut) && $0.timestamp.rawValue >= t0
          && $0.timestamp.rawValue <= end
      }
    return RunOutcome(
      result: result, closed: closed, record: try store.session(id: id), truth: truth,
      interrupted: interrupted, auditOK: try store.verifyAudit().ok)
  }
}

// MARK: - The closing rules

/// How a host that watched a session closes its record: aborted on the first fault, guard
/// reaction, emergency stop, loss or reset it was told of; the energy is the most the pen
/// reported for the session (a pen that reset counts from zero again).
struct SessionClosing {
  var reason: String?
  var delivered: Millijoules
  var samples: [SessionSample]

  init(events: [PenDriver.PenEvent], telemetry: [Telemetry], lost: Bool) {
    var started = false
    for e in events {
      switch e {
      case .fault(let f), .guardStopped(let f), .guardEmergencyStop(let f):
        reason = reason ?? "pen fault: \(f.catalogueName)"
      case .state(.fault, let f): reason = reason ?? "pen fault: \(f.catalogueName)"
      case .state(.estop, _): reason = reason ?? "emergency stop"
      case .state(.ready, _), .state(.armed, _), .state(.treating, _), .state(.paused, _):
        started = true
      case .state(.idle, _), .state(.boot, _):
        if started { reason = reason ?? "the pen reset (power lost) during the session" }
      case .lost: reason = reason ?? "the pen was lost (no frame for 300 ms)"
      case .state: break
      }
    }
    if lost { reason = reason ?? "the pen was lost (no frame for 300 ms)" }
    delivered = telemetry.map(\.rfDelivered).max() ?? .zero
    var saved: [SessionSample] = []
    var lastSaved: UInt64? = nil
    for t in telemetry where lastSaved.map({ t.timestamp.rawValue >= $0 + 100_000 }) ?? true {
      saved.append(SessionSample(t))
      lastSaved = t.timestamp.rawValue
    }
    if let last = telemetry.last, last.timestamp.rawValue != lastSaved {
      saved.append(SessionSample(last))
    }
    samples = saved
  }
}

// MARK: - The generated table

/// Collects every cell's verdict; once the whole matrix has run, writes the table to the path in
/// `PENCONTROL_FAULT_MATRIX` (`make fault-matrix` writes Simulator/fault-matrix.md).
enum MatrixReport {
  struct Row: Sendable {
    var kind: FaultKind
    var state: MatrixState
    var verdict: FaultMatrixTests.Verdict
  }

  static let rows = Mutex<[String: Row]>([:])

  static func record(kind: FaultKind, state: MatrixState, verdict: FaultMatrixTests.Verdict) {
    let all = rows.withLock { r -> [String: Row]? in
      r["\(kind.name)/\(state.rawValue)"] = Row(kind: kind, state: state, verdict: verdict)
      return r.count == FaultKind.all.count * MatrixState.allCases.count ? r : nil
    }
    guard let all, let path = ProcessInfo.processInfo.environment["PENCONTROL_FAULT_MATRIX"],
      !path.isEmpty
    else { return }
    try? markdown(all).write(toFile: path, atomically: true, encoding: .utf8)
  }

  static func markdown(_ rows: [String: Row]) -> String {
    var ordered: [Row] = []
    for kind in FaultKind.all {
      for state in MatrixState.allCases {
        if let row = rows["\(kind.name)/\(state.rawValue)"] { ordered.append(row) }
      }
    }
    let failed = ordered.filter { !$0.verdict.problems.isEmpty }
    let e = try? FaultMatrixTests.envelope()
    let limits =
      e.map {
        "max \($0.maxDepth.value) mm, \($0.maxSpeed.value) Hz, \($0.maxRFEnergyPerPin.value) mJ/pin"
      } ?? "?"
    var text = """
      # Fault matrix

      Generated by `make fault-matrix` (the `Fault matrix` suite in
      `Tests/PenClinicTests/FaultMatrixTests.swift`); do not edit by hand. The same seeds give the
      same table: the test moves the simulator's clock itself, so every run sends the same frames
      at the same virtual times.

      Each cell: a simulated rf200 (seed \(FaultMatrixTests.seed)) connected through the `Pen` API,
      a records store with a session begun, the forehead envelope for skin type II (\(limits);
      setpoints 0.75 mm, 4 Hz, 20 mJ/pin in 60 ms pulses), skin contact on. In `treating` the fault
      strikes 5 ms into the third RF pulse; in `paused`, 50 ms after pausing. The cell then watches
      1 s (`treating`) or 0.6 s of virtual time; a pen still `ready` is then asked to arm, and a
      treatment still running is stopped.

      - **Reaction**: virtual time from the fault to the trip, or to the last instant RF or the
        needles were on (truth record), whichever is later; for an RF inhibit, to RF off.
      - **Bound**: the requirement's, counted from the fault (Firmware-Specs/safety-requirements.md);
        SR-015 counts 300 ms from the host's last frame.
      - **No effect**: the fault had nothing to act on in that state: no trip, no hazard, and the
        session went on (pulses went on while treating; a pen still ready armed). A reading that
        would hide a later hazard (a frozen temperature) is a single fault here; what it hides
        needs a second one. One does not: the pen counts the RF energy its power sensor measures,
        so a low reading (`sensor-rf-power-wrong`, or `-stuck` at 0 W) lets the true dose pass
        the cap over a longer session; no requirement covers it yet (the known issue in
        `StackPropertyTests.swift`).
      - **✓** when the pen did what the requirement says within the bound, the host was told
        (event, telemetry flag, or pen lost), no hard limit was crossed, no RF flowed without
        contact, the session record was closed (aborted when the host was told of a fault, with
        the most energy the pen reported) with its samples, and the audit chain verifies.

      \(ordered.count) cells, \(ordered.count - failed.count) ✓, \(failed.count) ✗.

      | Fault | State | Outcome | Reaction (ms) | Bound (ms) | |
      |---|---|---|---|---|---|

      """
    for row in ordered {
      let v = row.verdict
      text +=
        "| `\(row.kind.name)` | \(row.state.rawValue) | \(v.outcome) | \(v.reaction) | \(v.bound) | \(v.problems.isEmpty ? "✓" : "✗") |\n"
    }
    if !failed.isEmpty {
      text += "\n## ✗\n\n"
      for row in failed {
        text +=
          "- `\(row.kind.name)` in \(row.state.rawValue): \(row.verdict.problems.joined(separator: "; "))\n"
      }
    }
    return text
  }
}
