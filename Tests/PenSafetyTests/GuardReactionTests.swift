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
    #expect(
      g.onTelemetry(Self.sample(depth: 0, state: .ready).withFlags(.empty), envelope: e, now: .zero)
        == .none)
    #expect(
      g.onTelemetry(
        Self.sample(state: .fault, fault: .heartbeatLost).withFlags(.empty), envelope: e, now: .zero
      )
        == .report(.heartbeatLost))
    #expect(
      g.onTelemetry(
        Self.sample(state: .fault, fault: .heartbeatLost).withFlags(.empty), envelope: e, now: .zero
      )
        == .none)
    g.reset()
    #expect(
      g.onTelemetry(Self.sample(depth: 1.2), envelope: e, now: .zero) == .sendStop(.depthOverLimit))
  }
}

extension Telemetry {
  func withFlags(_ flags: PenFlags) -> Telemetry {
    var t = self
    t.flags = flags
    return t
  }
}

@Suite("Host guard reaction: review findings")
struct GuardReviewTests {
  @Test("SR-026: an inhibit reason while treating is not a fault, and does not disable the guard")
  func inhibitDoesNotDisable() throws {
    let e = try Fixture.envelope()
    var g = GuardReaction()
    #expect(
      g.onTelemetry(GuardReactionTests.sample(fault: .skinContactLost), envelope: e, now: .zero)
        == .none)
    #expect(
      g.onTelemetry(GuardReactionTests.sample(depth: 1.3), envelope: e, now: Microseconds(1_000))
        == .sendStop(.depthOverLimit))
    #expect(g.onStopAcknowledged() == .report(.depthOverLimit))
    #expect(g.onTick(now: Microseconds(100_000)) == .none, "an answered stop never escalates")
  }

  @Test(
    "SR-026: RF or needles running outside treatment, in any state and with no envelope, go straight to the emergency stop"
  )
  func stateViolations() throws {
    for state in [PenState.idle, .ready, .armed, .paused, .fault, .estop] {
      var g = GuardReaction()
      let rf = GuardReactionTests.sample(state: state).withFlags(PenFlags.rfEnabled)
      #expect(
        g.onTelemetry(rf, envelope: nil, now: .zero) == .escalateToEmergencyStop(.rfStuckOn),
        "\(state)")
      var h = GuardReaction()
      let needles = GuardReactionTests.sample(state: state).withFlags(PenFlags.needlesDriving)
      #expect(
        h.onTelemetry(needles, envelope: nil, now: .zero)
          == .escalateToEmergencyStop(.internalError), "\(state)")
    }
  }
}
