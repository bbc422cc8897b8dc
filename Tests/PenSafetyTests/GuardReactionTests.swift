import PenSafety
import PenWire
import Testing

@Suite("Host guard reaction")
struct GuardReactionTests {
  static func sample(depth: Double = 0.75, state: PenState = .treating, fault: FaultCode = .none)
    -> Telemetry
  {
    Telemetry(
      timestamp: .zero, state: state, fault: fault,
      flags: PenFlags.skinContact.union(.needlesDriving),
      depth: Millimetres(depth), speed: Hertz(2), rfPower: .zero, pulseEnergyPerPin: .zero,
      impedance: Ohms(300),
      tissueTemperature: Celsius(35), handpieceTemperature: Celsius(30), rfDelivered: .zero,
      rfRemaining: Millijoules(80_000), pulseCount: 0)
  }

  @Test("SR-026: a violating sample asks for a stop; an acknowledged stop is reported once")
  func stopThenReport() throws {
    let e = try Fixture.envelope()
    var g = GuardReaction()
    #expect(g.onTelemetry(Self.sample(), envelope: e, now: Microseconds(1_000)) == .none)
    #expect(
      g.onTelemetry(Self.sample(depth: 1.2), envelope: e, now: Microseconds(2_000))
        == .sendStop(.depthOverLimit))
    #expect(
      g.onTelemetry(Self.sample(depth: 1.3), envelope: e, now: Microseconds(3_000)) == .none,
      "one stop, not a storm")
    #expect(g.onTick(now: Microseconds(40_000)) == .none)
    #expect(g.onStopAcknowledged() == .report(.depthOverLimit))
    #expect(g.onTick(now: Microseconds(100_000)) == .none, "an acknowledged stop never escalates")
  }

  @Test("SR-026: a stop unanswered for 50 ms escalates to the endpoint-0 emergency stop, once")
  func escalation() throws {
    let e = try Fixture.envelope()
    var g = GuardReaction()
    #expect(
      g.onTelemetry(Self.sample(depth: 1.2), envelope: e, now: Microseconds(10_000))
        == .sendStop(.depthOverLimit))
    #expect(g.onTick(now: Microseconds(59_999)) == .none)
    #expect(g.onTick(now: Microseconds(60_000)) == .escalateToEmergencyStop(.depthOverLimit))
    #expect(g.onTick(now: Microseconds(200_000)) == .none)
    #expect(g.onStopAcknowledged() == .none)
  }

  @Test("SR-026: a fault the pen reports itself is passed on once; idle samples are not judged")
  func penFaultAndIdle() throws {
    let e = try Fixture.envelope()
    var g = GuardReaction()
    #expect(g.onTelemetry(Self.sample(depth: 3, state: .ready), envelope: e, now: .zero) == .none)
    #expect(
      g.onTelemetry(Self.sample(state: .fault, fault: .heartbeatLost), envelope: e, now: .zero)
        == .report(.heartbeatLost))
    #expect(
      g.onTelemetry(Self.sample(state: .fault, fault: .heartbeatLost), envelope: e, now: .zero)
        == .none)
    g.reset()
    #expect(
      g.onTelemetry(Self.sample(depth: 1.2), envelope: e, now: .zero) == .sendStop(.depthOverLimit))
  }
}
