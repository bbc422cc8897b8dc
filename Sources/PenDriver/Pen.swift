import Foundation
public import PenSafety
public import PenWire
import Synchronization

/// Something a pen reported, or the link's own news.
public enum PenEvent: Sendable, Hashable {
  /// The pen changed state (a status frame).
  case state(PenState, fault: FaultCode)
  /// The pen tripped (a fault_event frame).
  case fault(FaultCode)
  /// The host guard saw a sample outside the envelope and stopped the pen (SR-026).
  case guardStopped(FaultCode)
  /// The stop went unanswered; the guard sent the endpoint-0 emergency stop.
  case guardEmergencyStop(FaultCode)
  /// No valid frame for longer than the heartbeat timeout (SR-016), or the pen was unplugged.
  case lost
}

/// A connected pen: the one object through which the host drives it, real or simulated alike.
///
/// Each pen has one dedicated thread — not Swift's cooperative pool — that owns the transport: it
/// sends one command at a time, vetting each with PenSafety against the host's mirror of the pen
/// as the last step before the wire (SR-025), checks every telemetry sample against the envelope
/// and stops the pen on a violation (SR-026), sends heartbeats, and declares the pen lost after
/// 300 ms of silence (SR-016). Commands block their caller until the pen answers; telemetry and
/// events arrive as async sequences. A lost pen is finished: connect again, and the pen — which
/// went safe on its own (SR-015) — has to be armed again; nothing resumes by itself (SR-032).
///
/// The thread holds the link, never the `Pen`: dropping the last reference to a `Pen` without
/// `disconnect()` stops the thread, which then closes the transport itself.
public final class Pen: Sendable {
  public let info: DeviceInfo
  /// Telemetry samples, in order (the newest 1,000 are kept for a slow reader).
  public let telemetry: AsyncStream<Telemetry>
  /// State changes, faults, the guard's reactions, and loss of the pen.
  public let events: AsyncStream<PenEvent>

  let link: PenLink

  /// Connects over a transport: hand-shakes (refusing another catalogue or protocol) and starts
  /// the pen's thread.
  public static func connect(over transport: any PenTransport) throws(PenError) -> Pen {
    let info = try Handshake.perform(over: transport)
    let pen = Pen(info: info, transport: transport)
    // The mirror starts knowing nothing good (no calibration, no cartridge): the pen's first
    // status tells it the state and the interlock bits before any command is vetted.
    _ = try pen.status()
    return pen
  }

  init(info: DeviceInfo, transport: any PenTransport) {
    self.info = info
    let (telemetry, telemetryOut) = AsyncStream.makeStream(
      of: Telemetry.self, bufferingPolicy: .bufferingNewest(1_000))
    let (events, eventsOut) = AsyncStream.makeStream(
      of: PenEvent.self, bufferingPolicy: .bufferingNewest(1_000))
    self.telemetry = telemetry
    self.events = events
    let link = PenLink(
      info: info, transport: transport, telemetryOut: telemetryOut, eventsOut: eventsOut)
    self.link = link
    let thread = Thread { link.run() }
    thread.name = "PenDriver \(info.serial.description)"
    thread.start()
  }

  deinit { link.abandon() }

  /// Stops the pen's thread and releases the transport. The pen itself goes safe when the host's
  /// heartbeats stop (SR-015).
  public func disconnect() { link.disconnect() }

  /// True once the pen has been declared lost.
  public var isLost: Bool { link.shared.withLock { $0.lost } }

  /// The transport's clock: virtual time for a simulated pen, monotonic time for a real one.
  public var now: Microseconds { link.transport.now }

  /// Blocks the caller until `span` has passed on the transport's clock (a settling time during a
  /// calibration sweep, a pass of a scripted treatment). A simulated pen's clock runs on while
  /// the pen's thread polls it, so this never waits for real time there.
  public func wait(for span: Microseconds) {
    let until = link.transport.now.rawValue &+ span.rawValue
    while link.transport.now.rawValue < until && !isLost {
      Thread.sleep(forTimeInterval: 0.000_05)
    }
  }

  // MARK: Commands

  /// Loads the session envelope (built with `SessionEnvelope.build`) and then the preset's
  /// defaults as setpoints: a pen starts a wire-loaded envelope at its gentlest settings, and
  /// setting the defaults straight away keeps the pen and the host's mirror of it in agreement.
  public func load(_ envelope: SessionEnvelope, sessionID: UInt32) throws(PenError) {
    _ = try perform(
      .loadEnvelope(envelope, sessionID: sessionID),
      .setSessionEnvelope(envelope.wireMessage(sessionID: sessionID)))
    try set(
      Setpoints(
        depth: envelope.recommendedDepth.value, speed: envelope.recommendedSpeed.value,
        rfEnergyPerPin: envelope.recommendedRFEnergyPerPin.value,
        rfPulseDuration: envelope.defaultPulse))
  }

  /// Sets the working setpoints; above the preset's recommended range they are clamped unless
  /// `confirmed`. Returns the verdict (accepted, clamped with a warning, or accepted above range)
  /// as the guard gave it just before the wire.
  @discardableResult
  public func set(_ setpoints: Setpoints, confirmed: Bool = false) throws(PenError) -> Verdict {
    let done = try link.submit(
      .setParameters(setpoints, confirmed: confirmed),
      .setParameters(
        SetParameters(
          depth: setpoints.depth, speed: setpoints.speed, rfEnergyPerPin: setpoints.rfEnergyPerPin,
          rfPulseDuration: setpoints.rfPulseDuration)))
    _ = try done.result()
    return done.verdict ?? .accept
  }

  /// Arms the pen. Its status is read first, so the guard vets arming on the pen's interlocks
  /// as they are now (calibration, cartridge, service mode), not as a telemetry sample sent
  /// before the last command had taken effect said they were.
  public func arm() throws(PenError) {
    let now = try status()
    if !now.flags.contains(.calibrationValid) && !now.flags.contains(.serviceMode) {
      // The flag says only "not valid"; the record says why, so a refusal by this host's guard
      // names the same reason (and detail) the pen would.
      let reason: CalibrationStatus
      do {
        reason =
          try readCalibration().map {
            CalibrationStatus($0.validity(forModel: info.model, serial: info.serial))
          } ?? .missing
      } catch .badCalibrationRecord {
        reason = .corrupt
      }
      link.shared.withLock { s in
        var seen = s.mirror.observed
        seen.calibration = reason
        s.mirror.observe(seen)
      }
    }
    _ = try perform(.arm, .arm(Arm()))
  }
  public func start() throws(PenError) { _ = try perform(.start, .start(Start())) }
  public func pause() throws(PenError) { _ = try perform(.pause, .pause(Pause())) }
  public func stop() throws(PenError) { _ = try perform(.stop, .stop(Stop())) }
  public func disarm() throws(PenError) { _ = try perform(.disarm, .disarm(Disarm())) }
  /// Acknowledges a fault, vetted (like arming) on the pen's status read just before.
  public func acknowledge(_ fault: FaultCode) throws(PenError) {
    _ = try status()
    _ = try perform(.acknowledgeFault(fault), .acknowledgeFault(AcknowledgeFault(fault: fault)))
  }

  /// Emergency stop: through endpoint 0 and over bulk, each whatever happens to the other.
  public func emergencyStop() throws(PenError) {
    var controlError: TransportError? = nil
    do {
      try link.transport.emergencyStop()
    } catch { controlError = error }
    let bulk = Result { () throws(PenError) in
      _ = try perform(.emergencyStop, .emergencyStop(EmergencyStop()))
    }
    // Stopped if either path got through; an error only when both failed.
    if let controlError, case .failure = bulk { throw .transport(controlError) }
  }

  /// The pen's status now.
  public func status() throws(PenError) -> Status {
    let answer = try perform(nil, .getStatus(GetStatus()))
    guard case .status(let s) = answer else {
      throw .unexpectedAnswer(message: GetStatus.id, got: answer.id)
    }
    return s
  }

  /// Sends one message and waits for its answer. `command` is what the guard vets first; a
  /// refused command never reaches the wire (SR-025).
  func perform(_ command: Command?, _ message: Message) throws(PenError) -> Message {
    try link.submit(command, message).result()
  }

  /// One batch of the event log from `start` (up to 64 entries).
  func collectEventLog(from start: UInt32) throws(PenError) -> [EventLogEntry] {
    let answers: [Message]
    do {
      let done = try link.submit(nil, .readEventLog(ReadEventLog(startIndex: start, count: 64)))
      let first = try done.result()
      answers = done.collected.isEmpty ? [first] : done.collected
    } catch .refused(_, .fieldOutOfRange, _) {
      return []  // past the end of the log
    }
    return answers.compactMap { if case .eventLogEntry(let e) = $0 { e } else { nil } }
  }
}

/// What a pen's thread shares with the callers of its `Pen`, and the thread's own work.
final class PenLink: Sendable {
  let info: DeviceInfo
  let transport: any PenTransport
  let shared: Mutex<Shared>
  let telemetryOut: AsyncStream<Telemetry>.Continuation
  let eventsOut: AsyncStream<PenEvent>.Continuation
  let done = DispatchSemaphore(value: 0)

  /// A command waiting to go out, on the wire, or answered.
  struct Outgoing {
    let ticket: Int
    var command: Command?
    var message: Message
    /// The driver's own request (a status resynchronisation): nobody waits for it.
    var isInternal = false
    var frame: [UInt8] = []
    var sequence: UInt16 = 0
    var sentAt = Microseconds.zero
    var attempts = 0
    /// The guard's verdict just before the wire.
    var verdict: Verdict? = nil
    var answer: Result<Message, PenError>? = nil
    /// Every answer frame, for requests answered by several (read_event_log).
    var collected: [Message] = []
    let signal = DispatchSemaphore(value: 0)

    func result() throws(PenError) -> Message {
      try (answer ?? .failure(.transport(.disconnected))).get()
    }
  }

  struct Shared {
    var running = true
    var lost = false
    /// Set when the `Pen` was dropped without `disconnect()`: the thread closes the transport.
    var closeOnExit = false
    var sequence: UInt16 = 1
    /// Waiting to go out, in order. One command is on the wire at a time, so each is vetted
    /// against a mirror that already reflects every earlier answer.
    var queue: [Outgoing] = []
    var inFlight: Outgoing? = nil
    /// Answered, until the caller collects the answer.
    var finished: [Int: Outgoing] = [:]
    var nextTicket = 0
    /// A command went unanswered: the pen may or may not have acted on it, so the next thing
    /// on the wire asks it for its status.
    var resync = false
    var mirror: SafetyCore
    var watchdog = LinkWatchdog()
    var lastHeartbeat = Microseconds.zero
    var heartbeatCounter: UInt32 = 0
  }

  init(
    info: DeviceInfo, transport: any PenTransport,
    telemetryOut: AsyncStream<Telemetry>.Continuation,
    eventsOut: AsyncStream<PenEvent>.Continuation
  ) {
    self.info = info
    self.transport = transport
    self.telemetryOut = telemetryOut
    self.eventsOut = eventsOut
    var mirror = SafetyCore(model: info.model)
    mirror.finishSelfTest(passed: true)
    var unknown = TickInputs(now: transport.now, cartridge: .absent, calibration: .missing)
    unknown.skinContact = false
    mirror.observe(unknown)
    var shared = Shared(mirror: mirror)
    shared.watchdog.frameReceived(at: transport.now)
    shared.lastHeartbeat = transport.now
    self.shared = Mutex(shared)
  }

  func disconnect() {
    let wasRunning = shared.withLock { s -> Bool in
      defer { s.running = false }
      return s.running
    }
    if wasRunning { done.wait() }
    transport.close()
  }

  /// The `Pen` is gone without `disconnect()`: stop the thread and let it close the transport.
  func abandon() {
    shared.withLock { s in
      if s.running { s.closeOnExit = true }
      s.running = false
    }
  }

  /// Queues a message, waits for the pen's thread to send it and for its answer.
  func submit(_ command: Command?, _ message: Message) throws(PenError) -> Outgoing {
    let queued = shared.withLock { s -> Outgoing? in
      guard s.running && !s.lost else { return nil }
      let out = Outgoing(ticket: s.nextTicket, command: command, message: message)
      s.nextTicket += 1
      s.queue.append(out)
      return out
    }
    guard let queued else { throw .transport(.disconnected) }
    queued.signal.wait()
    let answered = shared.withLock { $0.finished.removeValue(forKey: queued.ticket) }
    guard let answered else { throw .transport(.disconnected) }
    return answered
  }

  // MARK: The pen's thread

  func run() {
    // The guard's state belongs to this thread alone: its stop goes onto the wire without any
    // lock held, ahead of whatever command is queued.
    var guardPath = SafetyGuardPath()
    while shared.withLock({ $0.running }) {
      sendDue()
      receiveNext(&guardPath)
      housekeeping(&guardPath)
    }
    // Whoever still waits gets an answer.
    let closeTransport = shared.withLock { s -> Bool in
      let error = PenError.transport(s.lost ? .disconnected : .closed)
      if let out = s.inFlight { Self.finish(&s, out, .failure(error)) }
      s.inFlight = nil
      for out in s.queue { Self.finish(&s, out, .failure(error)) }
      s.queue = []
      return s.closeOnExit
    }
    if closeTransport { transport.close() }
    done.signal()
  }

  static func finish(_ s: inout Shared, _ out: Outgoing, _ answer: Result<Message, PenError>) {
    guard !out.isInternal else { return }
    var out = out
    out.answer = answer
    s.finished[out.ticket] = out
    out.signal.signal()
  }

  /// Retransmits the command on the wire when it is overdue (framing.md: 50 ms, 3 times), gives
  /// it up after that, or — when none is on the wire — vets the next one and sends it.
  func sendDue() {
    let now = transport.now
    let frame = shared.withLock { s -> [UInt8]? in
      if var out = s.inFlight {
        guard now.rawValue >= out.sentAt.rawValue + Handshake.answerTimeout.rawValue else {
          return nil
        }
        if out.attempts <= Handshake.retransmissions {
          out.frame =
            (try? FrameCodec.encode(
              out.message, sequence: out.sequence,
              flags: FrameFlags.ackRequested.union(.retransmission))) ?? []
          out.sentAt = now
          out.attempts += 1
          s.inFlight = out
          return out.frame
        }
        Self.finish(
          &s, out,
          .failure(
            .noAnswer(
              message: out.message.id,
              after: Microseconds(
                Handshake.answerTimeout.rawValue * UInt64(Handshake.retransmissions + 1)))))
        s.inFlight = nil
        s.resync = true
      }
      if s.resync {
        s.resync = false
        let ticket = s.nextTicket
        s.nextTicket += 1
        s.queue.insert(
          Outgoing(ticket: ticket, message: .getStatus(GetStatus()), isInternal: true), at: 0)
      }
      while !s.queue.isEmpty {
        var out = s.queue.removeFirst()
        if let command = out.command {
          // The last step before the wire (SR-025): the mirror has every earlier answer applied.
          let verdict = s.mirror.vet(command)
          out.verdict = verdict
          switch verdict {
          case .refuse(let r):
            Self.finish(
              &s, out,
              .failure(.refused(message: out.message.id, code: r.code, detail: r.nackDetail))
            )
            continue
          case .clamped(let clamped, _):
            out.message = .setParameters(
              SetParameters(
                depth: clamped.depth, speed: clamped.speed,
                rfEnergyPerPin: clamped.rfEnergyPerPin, rfPulseDuration: clamped.rfPulseDuration))
          default:
            break
          }
        }
        out.sequence = s.sequence
        s.sequence &+= 1
        // The guard's stops carry their own sequence number; commands skip it, and zero.
        if s.sequence == SafetyGuardPath.stopSequence { s.sequence = 1 }
        do {
          out.frame = try FrameCodec.encode(
            out.message, sequence: out.sequence, flags: .ackRequested)
        } catch {
          // Nothing can go out, so no answer can come: say so now rather than time out.
          Self.finish(&s, out, .failure(.unencodable(message: out.message.id, reason: "\(error)")))
          continue
        }
        out.sentAt = now
        out.attempts = 1
        s.inFlight = out
        return out.frame
      }
      return nil
    }
    guard let frame else { return }
    do {
      try transport.send(frame, timeout: Handshake.answerTimeout)
    } catch {
      if error == .disconnected { declareLost() }
    }
  }

  /// Takes the next frame from either IN endpoint (waiting at most 1 ms) and acts on it.
  func receiveNext(_ guardPath: inout SafetyGuardPath) {
    let bytes: [UInt8]
    do {
      bytes = try transport.receiveNext(timeout: .milliseconds(1)).1
    } catch .disconnected {
      declareLost()
      return
    } catch { return }
    guard let frame = try? FrameCodec.decode(bytes) else { return }
    let now = transport.now
    shared.withLock { $0.watchdog.frameReceived(at: now) }
    switch frame.message {
    case .telemetry(let t):
      onTelemetry(t, now: now, &guardPath)
    case .status(let status):
      shared.withLock { s in
        s.mirror.follow(state: status.state, fault: status.fault, estopCount: status.estopCount)
        var seen = s.mirror.observed
        Self.observe(flags: status.flags, into: &seen)
        s.mirror.observe(seen)
      }
      eventsOut.yield(.state(status.state, fault: status.fault))
      if frame.header.flags.contains(.response) { answer(frame, &guardPath) }
    case .faultEvent(let f):
      shared.withLock { $0.mirror.follow(state: .fault, fault: f.fault) }
      eventsOut.yield(.fault(f.fault))
    default:
      if frame.header.flags.contains(.response) { answer(frame, &guardPath) }
    }
  }

  /// The interlock bits a status or telemetry frame carries, as the mirror's observation.
  static func observe(flags: PenFlags, into seen: inout TickInputs) {
    seen.skinContact = flags.contains(.skinContact)
    // SR-033: arming an uncalibrated pen is the pen's to allow, in service mode only.
    seen.serviceMode = flags.contains(.serviceMode)
    // The flag says only "valid" or not; the pen's own refusal gives the exact reason.
    seen.calibration = flags.contains(.calibrationValid) ? .valid : .missing
    let cartridge = flags.contains(.cartridgeValid)
    seen.cartridge = CartridgeStatus(
      present: cartridge, valid: cartridge, useCount: 0, maxUses: 1, boundToSession: cartridge)
  }

  /// The guard's per-sample path: check, and stop on a violation (SR-026). The stop goes out
  /// with no lock held.
  func onTelemetry(_ t: Telemetry, now: Microseconds, _ guardPath: inout SafetyGuardPath) {
    let envelope = shared.withLock { s -> SessionEnvelope? in
      var seen = TickInputs(
        now: now, depth: t.depth, speed: t.speed, rfPower: t.rfPower, impedance: t.impedance,
        tissueTemperature: t.tissueTemperature, handpieceTemperature: t.handpieceTemperature)
      // Readings come from telemetry; the interlock bits only from status frames, which are
      // ordered with the answers to commands (a sample sent before a command took effect must
      // not undo what its answer told the mirror).
      seen.skinContact = t.flags.contains(.skinContact)
      seen.calibration = s.mirror.observed.calibration
      seen.cartridge = s.mirror.observed.cartridge
      seen.serviceMode = s.mirror.observed.serviceMode
      s.mirror.observe(seen)
      return s.mirror.envelope
    }
    let action = guardPath.react(to: t, envelope: envelope, now: now, transport: transport)
    act(on: action)
    telemetryOut.yield(t)
  }

  func act(on action: GuardAction) {
    switch action {
    case .none:
      break
    case .sendStop(let fault):
      // The stop already went straight onto the wire (SafetyGuardPath), ahead of any command.
      eventsOut.yield(.guardStopped(fault))
    case .escalateToEmergencyStop(let fault):
      try? transport.emergencyStop()
      eventsOut.yield(.guardEmergencyStop(fault))
    case .report(let fault):
      eventsOut.yield(.fault(fault))
    }
  }

  func answer(_ frame: Frame, _ guardPath: inout SafetyGuardPath) {
    if frame.header.sequence == SafetyGuardPath.stopSequence {
      act(on: guardPath.stopAcknowledged())
      return
    }
    let watchAfresh = shared.withLock { s -> Bool in
      // Only the command on the wire can be answered; a late answer to one given up is ignored
      // (the status request that followed it told the mirror where the pen stands).
      guard var out = s.inFlight, out.sequence == frame.header.sequence else { return false }
      if case .readEventLog(let request) = out.message,
        case .eventLogEntry(let entry) = frame.message
      {
        out.collected.append(frame.message)
        let expected = Int(min(UInt32(request.count), entry.total &- request.startIndex))
        if out.collected.count < expected {
          s.inFlight = out
          return false
        }
      }
      s.inFlight = nil
      if case .nack(let n) = frame.message {
        Self.finish(
          &s, out, .failure(.refused(message: n.ackedMessage, code: n.code, detail: n.detail)))
        return false
      }
      // Only the answer framing.md section 5 gives this command counts as accepting it. Anything
      // else is a confused pen: nothing is taken as done, and the next thing on the wire asks the
      // pen where it stands.
      guard Self.isAnswer(frame.message, to: out.message, sequence: out.sequence) else {
        Self.finish(
          &s, out,
          .failure(.unexpectedAnswer(message: out.message.id, got: frame.message.id)))
        s.resync = true
        return false
      }
      // The pen accepted it: the host's mirror follows, so later vetting sees the same state.
      switch out.message {
      case .serviceResponse: s.mirror.serviceModeChanged(to: true)
      case .exitServiceMode: s.mirror.serviceModeChanged(to: false)
      default: break
      }
      var watchAfresh = false
      if let command = out.command {
        var applied = command
        if case .setParameters(_, let confirmed) = command,
          case .setParameters(let sent) = out.message
        {
          applied = .setParameters(
            Setpoints(
              depth: sent.depth, speed: sent.speed, rfEnergyPerPin: sent.rfEnergyPerPin,
              rfPulseDuration: sent.rfPulseDuration), confirmed: confirmed)
        }
        s.mirror.apply(applied)
        // A fault dealt with, a new arming: the guard watches afresh.
        switch command {
        case .arm, .acknowledgeFault, .resetEstop: watchAfresh = true
        default: break
        }
      }
      Self.finish(&s, out, .success(frame.message))
      return watchAfresh
    }
    if watchAfresh { guardPath.reset() }
  }

  /// Whether `answer` is what the pen may answer `message` with, a nack aside (framing.md
  /// section 5): the named reply, or an ack of this very command.
  static func isAnswer(_ answer: Message, to message: Message, sequence: UInt16) -> Bool {
    let reply: UInt16? =
      switch message {
      case .hello: DeviceInfo.id
      case .getStatus: Status.id
      case .getCartridgeInfo: CartridgeInfo.id
      case .readCalibration: CalibrationData.id
      case .serviceChallengeRequest: ServiceChallenge.id
      case .readEventLog: EventLogEntry.id
      default: nil
      }
    if let reply { return answer.id == reply }
    guard case .ack(let ack) = answer else { return false }
    return ack.ackedMessage == message.id && ack.ackedSequence == sequence
  }

  /// Heartbeats every 100 ms, the guard's escalation timer, and the lost-pen watchdog.
  func housekeeping(_ guardPath: inout SafetyGuardPath) {
    let now = transport.now
    let (heartbeat, lost) = shared.withLock { s -> ([UInt8]?, Bool) in
      var frame: [UInt8]? = nil
      if now.rawValue >= s.lastHeartbeat.rawValue + 100_000 {
        s.lastHeartbeat = now
        s.heartbeatCounter &+= 1
        frame = try? FrameCodec.encode(
          .hostHeartbeat(HostHeartbeat(counter: s.heartbeatCounter)), sequence: 0)
      }
      return (frame, s.watchdog.isLost(at: now))
    }
    act(on: guardPath.tick(now: now))
    if let heartbeat { try? transport.send(heartbeat, timeout: Handshake.answerTimeout) }
    if lost { declareLost() }
  }

  func declareLost() {
    let first = shared.withLock { s -> Bool in
      defer {
        s.lost = true
        s.running = false
      }
      return !s.lost
    }
    guard first else { return }
    eventsOut.yield(.lost)
    eventsOut.finish()
    telemetryOut.finish()
  }
}
