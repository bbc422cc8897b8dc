public import PenSafety
public import PenWire

/// The host guard's per-sample path (SR-026), exactly as each pen's thread runs it: check a
/// telemetry sample against the envelope and, on a violation, encode a stop frame into a buffer
/// kept for the purpose and hand it straight to the transport. Nothing on this path allocates;
/// the GuardReactionPath benchmark times it and checks that.
public struct SafetyGuardPath: Sendable {
  /// The sequence number the guard's own stop frames carry, kept out of the command sequence.
  public static let stopSequence: UInt16 = 0xFFFF

  public private(set) var reaction = GuardReaction()
  var stopFrame = FrameBuffer()

  public init() {}

  /// Watches afresh after the application has dealt with a fault.
  public mutating func reset() { reaction.reset() }

  /// Checks one sample; a violation sends the stop before this returns.
  public mutating func react(
    to sample: Telemetry, envelope: SessionEnvelope?, now: Microseconds, transport: any PenTransport
  ) -> GuardAction {
    let action = reaction.onTelemetry(sample, envelope: envelope, now: now)
    if case .sendStop = action {
      do {
        try FrameCodec.encode(
          Stop(), sequence: Self.stopSequence, flags: .ackRequested, into: &stopFrame)
        try transport.send(stopFrame, timeout: Handshake.answerTimeout)
      } catch {
        // Stop did not go out: the escalation timer sends the endpoint-0 emergency stop.
      }
    }
    return action
  }

  /// The pen acknowledged the guard's stop.
  public mutating func stopAcknowledged() -> GuardAction { reaction.onStopAcknowledged() }

  /// Time passed: escalate when the stop is overdue.
  public mutating func tick(now: Microseconds) -> GuardAction { reaction.onTick(now: now) }
}
