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
    if rfOn && t.state != .treating { return .rfStuckOn }
    return nil
  }
}
