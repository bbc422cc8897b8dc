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
/// sends every command after vetting it with PenSafety as the last step before the wire (SR-025),
/// checks every telemetry sample against the envelope and stops the pen on a violation (SR-026),
/// sends heartbeats, and declares the pen lost after 300 ms of silence (SR-016). Commands block
/// their caller until the pen answers; telemetry and events arrive as async sequences. A lost pen
/// is finished: connect again, and the pen — which went safe on its own (SR-015) — has to be
/// armed again; nothing resumes by itself (SR-032).
public final class Pen: Sendable {
  public let info: DeviceInfo
  /// Telemetry samples, in order (the newest 1,000 are kept for a slow reader).
  public let telemetry: AsyncStream<Telemetry>
  /// State changes, faults, the guard's reactions, and loss of the pen.
  public let events: AsyncStream<PenEvent>

  let transport: any PenTransport
  let shared: Mutex<Shared>
  let telemetryOut: AsyncStream<Telemetry>.Continuation
  let eventsOut: AsyncStream<PenEvent>.Continuation
  let done = DispatchSemaphore(value: 0)

  /// A command waiting to go out, or waiting for its answer.
  struct Outgoing {
    var command: Command?
    var message: Message
    var frame: [UInt8] = []
    var sequence: UInt16 = 0
    var sentAt: Microseconds? = nil
    var attempts = 0
    var answer: Result<Message, PenError>? = nil
    /// Every answer frame, for requests answered by several (read_event_log).
    var collected: [Message] = []
    let signal = DispatchSemaphore(value: 0)
  }

  struct Shared {
    var running = true
    var lost = false
    var sequence: UInt16 = 1
    var outbox: [Int: Outgoing] = [:]
    var order: [Int] = []
    var nextTicket = 0
    var mirror: SafetyCore
    var guardPath = SafetyGuardPath()
    var watchdog = LinkWatchdog()
    var lastHeartbeat = Microseconds.zero
    var heartbeatCounter: UInt32 = 0
  }

  /// Connects over a transport: hand-shakes (refusing another catalogue or protocol) and starts
  /// the pen's thread.
  public static func connect(over transport: any PenTransport) throws(PenError) -> Pen {
    let info = try Handshake.perform(over: transport)
    return Pen(info: info, transport: transport)
  }

  init(info: DeviceInfo, transport: any PenTransport) {
    self.info = info
    self.transport = transport
    var mirror = SafetyCore(model: info.model)
    mirror.finishSelfTest(passed: true)
    var shared = Shared(mirror: mirror)
    shared.watchdog.frameReceived(at: transport.now)
    shared.lastHeartbeat = transport.now
    self.shared = Mutex(shared)
    (telemetry, telemetryOut) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1_000))
    (events, eventsOut) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1_000))
    let thread = Thread { [self] in self.run() }
    thread.name = "PenDriver \(info.serial.description)"
    thread.start()
  }

  deinit {
    shared.withLock { $0.running = false }
  }

  /// Stops the pen's thread and releases the transport. The pen itself goes safe when the host's
  /// heartbeats stop (SR-015).
  public func disconnect() {
    let wasRunning = shared.withLock { s -> Bool in
      defer { s.running = false }
      return s.running
    }
    if wasRunning { done.wait() }
    transport.close()
  }

  /// True once the pen has been declared lost.
  public var isLost: Bool { shared.withLock { $0.lost } }

  /// The transport's clock: virtual time for a simulated pen, monotonic time for a real one.
  public var now: Microseconds { transport.now }

  /// Blocks the caller until `span` has passed on the transport's clock (a settling time during a
  /// calibration sweep, a pass of a scripted treatment). A simulated pen's clock runs on while
  /// the pen's thread polls it, so this never waits for real time there.
  public func wait(for span: Microseconds) {
    let until = transport.now.rawValue &+ span.rawValue
    while transport.now.rawValue < until && !isLost {
      Thread.sleep(forTimeInterval: 0.000_05)
    }
  }

  // MARK: Commands

  /// Loads the session envelope (built with `SessionEnvelope.build`).
  public func load(_ envelope: SessionEnvelope, sessionID: UInt32) throws(PenError) {
    _ = try perform(
      .loadEnvelope(envelope, sessionID: sessionID),
      .setSessionEnvelope(envelope.wireMessage(sessionID: sessionID)))
  }

  /// Sets the working setpoints; above the preset's recommended range they are clamped unless
  /// `confirmed`. Returns the verdict (accepted, clamped with a warning, or accepted above range).
  @discardableResult
  public func set(_ setpoints: Setpoints, confirmed: Bool = false) throws(PenError) -> Verdict {
    let verdict = shared.withLock { $0.mirror.vet(.setParameters(setpoints, confirmed: confirmed)) }
    var sent = setpoints
    if case .clamped(let clamped, _) = verdict { sent = clamped }
    _ = try perform(
      .setParameters(setpoints, confirmed: confirmed),
      .setParameters(
        SetParameters(
          depth: sent.depth, speed: sent.speed, rfEnergyPerPin: sent.rfEnergyPerPin,
          rfPulseDuration: sent.rfPulseDuration)))
    return verdict
  }

  public func arm() throws(PenError) { _ = try perform(.arm, .arm(Arm())) }
  public func start() throws(PenError) { _ = try perform(.start, .start(Start())) }
  public func pause() throws(PenError) { _ = try perform(.pause, .pause(Pause())) }
  public func stop() throws(PenError) { _ = try perform(.stop, .stop(Stop())) }
  public func disarm() throws(PenError) { _ = try perform(.disarm, .disarm(Disarm())) }
  public func acknowledge(_ fault: FaultCode) throws(PenError) {
    _ = try perform(.acknowledgeFault(fault), .acknowledgeFault(AcknowledgeFault(fault: fault)))
  }

  /// Emergency stop: through endpoint 0 and over bulk, each whatever happens to the other.
  public func emergencyStop() throws(PenError) {
    var controlError: TransportError? = nil
    do {
      try transport.emergencyStop()
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
    try performAll(command, message).first!
  }

  /// Like `perform`, returning every answer frame (read_event_log is answered by several).
  func performAll(_ command: Command?, _ message: Message) throws(PenError) -> [Message] {
    let ticket = shared.withLock { s -> Int? in
      guard s.running && !s.lost else { return nil }
      let t = s.nextTicket
      s.nextTicket += 1
      s.outbox[t] = Outgoing(command: command, message: message)
      s.order.append(t)
      return t
    }
    guard let ticket else { throw .transport(.disconnected) }
    let signal = shared.withLock { $0.outbox[ticket]!.signal }
    signal.wait()
    let (answer, collected) = shared.withLock { s -> (Result<Message, PenError>, [Message]) in
      defer { s.outbox[ticket] = nil }
      return (
        s.outbox[ticket]?.answer ?? .failure(.transport(.disconnected)),
        s.outbox[ticket]?.collected ?? []
      )
    }
    let first = try answer.get()
    return collected.isEmpty ? [first] : collected
  }

  /// One batch of the event log from `start` (up to 64 entries).
  func collectEventLog(from start: UInt32) throws(PenError) -> [EventLogEntry] {
    let answers: [Message]
    do {
      answers = try performAll(nil, .readEventLog(ReadEventLog(startIndex: start, count: 64)))
    } catch .refused(_, .fieldOutOfRange, _) {
      return []  // past the end of the log
    }
    return answers.compactMap { if case .eventLogEntry(let e) = $0 { e } else { nil } }
  }

  // MARK: The pen's thread

  func run() {
    defer { done.signal() }
    while shared.withLock({ $0.running }) {
      sendDue()
      receive(.telemetry)
      receive(.responses)
      housekeeping()
    }
    // Whoever still waits gets an answer.
    shared.withLock { s in
      for key in Array(s.outbox.keys) where s.outbox[key]!.answer == nil {
        s.outbox[key]!.answer = .failure(.transport(.closed))
        s.outbox[key]!.signal.signal()
      }
    }
  }

  /// Vets and sends new commands; retransmits overdue ones (framing.md: 50 ms, 3 times).
  func sendDue() {
    let now = transport.now
    let toSend = shared.withLock { s -> [(Int, [UInt8])] in
      var frames: [(Int, [UInt8])] = []
      for ticket in s.order {
        guard var out = s.outbox[ticket], out.answer == nil else { continue }
        if out.sentAt == nil {
          if let command = out.command, case .refuse(let r) = s.mirror.vet(command) {
            out.answer = .failure(
              .refused(
                message: out.message.id, code: r.code,
                detail: Int32(clamping: Int64(r.limit.rounded()))))
            s.outbox[ticket] = out
            out.signal.signal()
            continue
          }
          out.sequence = s.sequence
          s.sequence &+= 1
          // The guard's stops carry their own sequence number; commands skip it.
          if s.sequence == SafetyGuardPath.stopSequence { s.sequence = 1 }
          out.frame =
            (try? FrameCodec.encode(out.message, sequence: out.sequence, flags: .ackRequested))
            ?? []
        } else if now.rawValue >= out.sentAt!.rawValue + Handshake.answerTimeout.rawValue {
          if out.attempts > Handshake.retransmissions {
            out.answer = .failure(
              .noAnswer(
                message: out.message.id, after: Microseconds(Handshake.answerTimeout.rawValue * 4)))
            s.outbox[ticket] = out
            out.signal.signal()
            continue
          }
          out.frame =
            (try? FrameCodec.encode(
              out.message, sequence: out.sequence,
              flags: FrameFlags.ackRequested.union(.retransmission))) ?? []
        } else {
          continue
        }
        out.sentAt = now
        out.attempts += 1
        s.outbox[ticket] = out
        frames.append((ticket, out.frame))
      }
      s.order.removeAll { s.outbox[$0] == nil || s.outbox[$0]?.answer != nil }
      return frames
    }
    for (_, frame) in toSend {
      do {
        try transport.send(frame, timeout: Handshake.answerTimeout)
      } catch {
        if error == .disconnected { declareLost() }
      }
    }
  }

  func receive(_ endpoint: PenEndpoint) {
    let bytes: [UInt8]
    do {
      bytes = try transport.receive(from: endpoint, timeout: .milliseconds(1))
    } catch .disconnected {
      declareLost()
      return
    } catch { return }
    guard let frame = try? FrameCodec.decode(bytes) else { return }
    let now = transport.now
    shared.withLock { $0.watchdog.frameReceived(at: now) }
    switch frame.message {
    case .telemetry(let t):
      onTelemetry(t, now: now)
    case .status(let s):
      shared.withLock { $0.mirror.follow(state: s.state, fault: s.fault, estopCount: s.estopCount) }
      eventsOut.yield(.state(s.state, fault: s.fault))
      if frame.header.flags.contains(.response) { answer(frame) }
    case .faultEvent(let f):
      shared.withLock { $0.mirror.follow(state: .fault, fault: f.fault) }
      eventsOut.yield(.fault(f.fault))
    default:
      if frame.header.flags.contains(.response) { answer(frame) }
    }
  }

  /// The guard's per-sample path: check, and stop on a violation (SR-026).
  func onTelemetry(_ t: Telemetry, now: Microseconds) {
    let action = shared.withLock { s -> GuardAction in
      s.guardPath.react(to: t, envelope: s.mirror.envelope, now: now, transport: transport)
    }
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

  func answer(_ frame: Frame) {
    if frame.header.sequence == SafetyGuardPath.stopSequence {
      let action = shared.withLock { $0.guardPath.stopAcknowledged() }
      act(on: action)
      return
    }
    shared.withLock { s in
      guard
        let ticket = s.outbox.first(where: {
          $0.value.sequence == frame.header.sequence && $0.value.sentAt != nil
        })?.key,
        var out = s.outbox[ticket], out.answer == nil
      else { return }
      if case .readEventLog(let request) = out.message,
        case .eventLogEntry(let entry) = frame.message
      {
        out.collected.append(frame.message)
        let expected = Int(min(UInt32(request.count), entry.total &- request.startIndex))
        if out.collected.count < expected {
          s.outbox[ticket] = out
          return
        }
      }
      if case .nack(let n) = frame.message {
        out.answer = .failure(.refused(message: n.ackedMessage, code: n.code, detail: n.detail))
      } else {
        out.answer = .success(frame.message)
        // The pen accepted it: the host's mirror follows, so later vetting sees the same state.
        if let command = out.command {
          s.mirror.apply(command)
          // A fault dealt with, a new arming: the guard watches afresh.
          switch command {
          case .arm, .acknowledgeFault, .resetEstop: s.guardPath.reset()
          default: break
          }
        }
      }
      s.outbox[ticket] = out
      out.signal.signal()
    }
  }

  /// Heartbeats every 100 ms, the guard's escalation timer, and the lost-pen watchdog.
  func housekeeping() {
    let now = transport.now
    let (heartbeat, lost, action) = shared.withLock { s -> ([UInt8]?, Bool, GuardAction) in
      var frame: [UInt8]? = nil
      if now.rawValue >= s.lastHeartbeat.rawValue + 100_000 {
        s.lastHeartbeat = now
        s.heartbeatCounter &+= 1
        frame = try? FrameCodec.encode(
          .hostHeartbeat(HostHeartbeat(counter: s.heartbeatCounter)), sequence: 0)
      }
      return (frame, s.watchdog.isLost(at: now), s.guardPath.tick(now: now))
    }
    act(on: action)
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
