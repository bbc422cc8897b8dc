public import PenWire

/// Silence detection for either end of the link: the pen watching the host (SR-015) and the host
/// watching the pen (SR-016).
@frozen public struct LinkWatchdog: Sendable, Hashable {
  public let timeout: Microseconds
  public private(set) var lastFrame: Microseconds?

  public init(timeout: Microseconds = SafetyTiming.heartbeatTimeout) { self.timeout = timeout }

  /// Notes a valid frame from the other side.
  public mutating func frameReceived(at now: Microseconds) { lastFrame = now }

  /// Time since the last valid frame; from the start when none has arrived.
  public func age(at now: Microseconds) -> Microseconds {
    let since = lastFrame ?? .zero
    return Microseconds(now.rawValue >= since.rawValue ? now.rawValue - since.rawValue : 0)
  }

  /// True once the other side has been silent for longer than the timeout.
  public func isLost(at now: Microseconds) -> Bool { age(at: now) > timeout }
}

/// The host's check of each telemetry sample against the session envelope (SR-026): the second,
/// independent line of defence behind the pen's own control tick. A violation means: send stop,
/// then emergency stop if the stop is not acknowledged in time, and report the fault.
public enum TelemetryCheck {
  /// The first violation the sample shows, or nil when it is inside the envelope.
  public static func violation(_ t: Telemetry, envelope e: SessionEnvelope) -> FaultCode? {
    let rfOn = t.flags.contains(.rfEnabled)
    if t.depth > e.maxDepth + SafetyTiming.depthTolerance { return .depthOverLimit }
    if t.speed > e.maxSpeed * (1 + SafetyTiming.speedToleranceFraction) { return .speedOverLimit }
    if t.pulseEnergyPerPin.value > e.maxRFEnergyPerPin.value
      * (1 + SafetyTiming.pulseEnergyToleranceFraction)
    {
      return .rfPulseOverLimit
    }
    if t.rfDelivered > e.rfDoseCap && (t.rfDelivered.value > 0) { return .rfDoseCapReached }
    if rfOn && !e.rfAllowed { return .rfNotAllowed }
    if rfOn && !t.flags.contains(.skinContact) { return .skinContactLost }
    if rfOn && !(t.impedance >= e.minImpedance && t.impedance <= e.maxImpedance) {
      return .impedanceOutOfWindow
    }
    if e.rfAllowed && t.tissueTemperature >= e.tissueTemperatureCutoff {
      return .tissueOverTemperature
    }
    if t.handpieceTemperature >= e.handpieceTemperatureCutoff { return .handpieceOverTemperature }
    return stateViolation(t)
  }

  /// What no sample may show in any state, envelope or not: RF or needles running outside
  /// treatment (the pen is not doing what its own state says).
  public static func stateViolation(_ t: Telemetry) -> FaultCode? {
    if t.flags.contains(.rfEnabled) && t.state != .treating { return .rfStuckOn }
    if t.flags.contains(.needlesDriving) && t.state != .treating { return .internalError }
    return nil
  }
}

/// What the host guard must do next (SR-026).
public enum GuardAction: Sendable, Hashable {
  case none
  /// Send a stop frame on the command endpoint now.
  case sendStop(FaultCode)
  /// The stop went unanswered: send EMERGENCY_STOP on endpoint 0 now.
  case escalateToEmergencyStop(FaultCode)
  /// Report the fault to the application (the pen is stopped or estopped).
  case report(FaultCode)
}

/// The host guard's reaction to telemetry, as a pure state machine that the driver's per-pen
/// thread feeds: a sample outside the envelope asks for a stop; a stop not acknowledged within
/// `escalateAfter` asks for the endpoint-0 emergency stop; either way the fault is reported once.
/// No allocation: the driver's per-sample path runs this on every telemetry frame.
@frozen public struct GuardReaction: Sendable, Hashable {
  /// How long a stop may go unanswered before the emergency stop (SR-026).
  public static let escalateAfter = Microseconds.milliseconds(50)

  public private(set) var stopSentAt: Microseconds?
  public private(set) var fault: FaultCode = .none
  public private(set) var escalated = false
  public private(set) var reported = false

  public init() {}

  /// A telemetry sample arrived. `envelope` is nil when none is loaded.
  public mutating func onTelemetry(_ t: Telemetry, envelope: SessionEnvelope?, now: Microseconds)
    -> GuardAction
  {
    guard !escalated else { return .none }
    // RF or needles running outside treatment, in any state: the pen is not obeying its own
    // state, so a stop command would not help; go straight to the endpoint-0 emergency stop.
    if let violation = TelemetryCheck.stateViolation(t) {
      fault = violation
      escalated = true
      stopSentAt = nil
      return .escalateToEmergencyStop(violation)
    }
    guard stopSentAt == nil else { return .none }
    // A fault the pen latched itself: it has stopped; the host reports it once. (Inhibit reasons
    // carried while treating, such as lost contact, are not faults.)
    if t.state == .fault || t.state == .estop {
      if t.fault != .none && !reported {
        reported = true
        fault = t.fault
        return .report(t.fault)
      }
      return .none
    }
    guard let envelope, t.state == .treating || t.state == .paused || t.state == .armed,
      let violation = TelemetryCheck.violation(t, envelope: envelope)
    else { return .none }
    fault = violation
    stopSentAt = now
    return .sendStop(violation)
  }

  /// The pen answered the stop (ack or nack): it no longer needs escalating.
  public mutating func onStopAcknowledged() -> GuardAction {
    guard stopSentAt != nil else { return .none }
    stopSentAt = nil
    guard !reported else { return .none }
    reported = true
    return .report(fault)
  }

  /// Time passed with no answer: escalate once the stop is overdue.
  public mutating func onTick(now: Microseconds) -> GuardAction {
    guard let sent = stopSentAt, !escalated,
      now.rawValue >= sent.rawValue + Self.escalateAfter.rawValue
    else { return .none }
    escalated = true
    stopSentAt = nil
    return .escalateToEmergencyStop(fault)
  }

  /// After the application has dealt with a fault (acknowledged, re-armed), watch again.
  public mutating func reset() { self = GuardReaction() }
}
