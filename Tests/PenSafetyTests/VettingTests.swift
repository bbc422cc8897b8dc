import PenSafety
import PenWire
import Testing

@Suite("Command vetting")
struct VettingTests {
  static func ready(_ model: PenModelID = .rf200) throws -> SafetyCore {
    var core = SafetyCore(model: model)
    core.finishSelfTest(passed: true)
    _ = core.evaluate(TickInputs(now: Microseconds(100), skinContact: true))
    let preset = model == .rf200 ? Fixture.rfForehead : Fixture.mechanicalForehead
    #expect(
      core.apply(.loadEnvelope(try Fixture.envelope(model, .forehead, preset), sessionID: 3))
        == .accept)
    return core
  }

  static func params(depth: Double, speed: Double = 2, rf: Double = 20, pulse: Double = 80)
    -> Setpoints
  {
    Setpoints(
      depth: Millimetres(depth), speed: Hertz(speed), rfEnergyPerPin: Millijoules(rf),
      rfPulseDuration: Milliseconds(pulse))
  }

  @Test(
    "SR-001: a depth beyond the envelope is refused with the value and the limit, state unchanged")
  func depthRefused() throws {
    var core = try Self.ready()
    let verdict = core.apply(.setParameters(Self.params(depth: 1.5), confirmed: true))
    #expect(verdict == .refuse(Refusal(.outsideEnvelope, .depth, value: 1.5, limit: 1.0)))
    #expect(core.setpoints.depth == Millimetres(0.75))
    #expect(core.state == .ready)
  }

  @Test("SR-003: a speed beyond the envelope is refused")
  func speedRefused() throws {
    var core = try Self.ready()
    #expect(
      core.apply(.setParameters(Self.params(depth: 0.75, speed: 5), confirmed: true))
        == .refuse(Refusal(.outsideEnvelope, .speed, value: 5, limit: 4)))
  }

  @Test("SR-005: RF energy per pin beyond the envelope is refused, never clamped")
  func energyRefused() throws {
    var core = try Self.ready()
    #expect(
      core.apply(.setParameters(Self.params(depth: 0.75, rf: 31), confirmed: false))
        == .refuse(Refusal(.outsideEnvelope, .rfEnergyPerPin, value: 31, limit: 30)))
  }

  @Test("SR-008: RF energy on a mechanical envelope is refused as not allowed")
  func rfOnMechanical() throws {
    var core = try Self.ready(.mn100)
    let verdict = core.apply(
      .setParameters(Self.params(depth: 0.5, speed: 100, rf: 5), confirmed: true))
    #expect(verdict == .refuse(Refusal(.rfNotAllowed, .rfEnergyPerPin, value: 5, limit: 0)))
  }

  @Test("SR-001: not-a-number setpoints are refused")
  func nanRefused() throws {
    var core = try Self.ready()
    #expect(!core.apply(.setParameters(Self.params(depth: .nan), confirmed: true)).isAccepted)
    #expect(
      !core.apply(.setParameters(Self.params(depth: 0.75, speed: .nan), confirmed: true)).isAccepted
    )
    #expect(
      !core.apply(.setParameters(Self.params(depth: 0.75, rf: .nan), confirmed: true)).isAccepted)
  }

  @Test("soft limits: above the recommended range is clamped with a warning unless confirmed")
  func softLimitClampOrConfirm() throws {
    var core = try Self.ready()
    let warning = SoftLimitWarning(quantity: .rfEnergyPerPin, requested: 28, recommendedMax: 25)
    #expect(
      core.apply(.setParameters(Self.params(depth: 0.75, rf: 28), confirmed: false))
        == .clamped(Self.params(depth: 0.75, rf: 25), warning))
    #expect(core.setpoints.rfEnergyPerPin == Millijoules(25))
    #expect(
      core.apply(.setParameters(Self.params(depth: 0.75, rf: 28), confirmed: true))
        == .acceptedAboveRecommended(warning))
    #expect(core.setpoints.rfEnergyPerPin == Millijoules(28))
  }

  @Test("SR-019: arming is refused for every calibration that is not valid")
  func armingNeedsCalibration() throws {
    for status in [CalibrationStatus.missing, .corrupt, .outOfTolerance, .markedBad, .wrongPen] {
      var core = try Self.ready()
      _ = core.evaluate(TickInputs(now: Microseconds(200), cartridge: .fresh, calibration: status))
      #expect(
        core.apply(.arm) == .refuse(Refusal(.calibrationInvalid, value: Double(status.rawValue))))
      #expect(core.state == .ready)
    }
  }

  @Test("SR-017: arming is refused without a present, valid cartridge")
  func armingNeedsCartridge() throws {
    var core = try Self.ready()
    _ = core.evaluate(TickInputs(now: Microseconds(200), cartridge: .absent))
    #expect(core.apply(.arm) == .refuse(Refusal(.cartridgeInvalid)))
    var invalid = CartridgeStatus.fresh
    invalid.valid = false
    _ = core.evaluate(TickInputs(now: Microseconds(300), cartridge: invalid))
    #expect(core.apply(.arm) == .refuse(Refusal(.cartridgeInvalid)))
  }

  @Test(
    "SR-018: a cartridge used in an earlier session is refused; re-arming within the session is not reuse"
  )
  func cartridgeReuse() throws {
    var core = try Self.ready()
    let used = CartridgeStatus(
      present: true, valid: true, useCount: 1, maxUses: 1, boundToSession: false)
    _ = core.evaluate(TickInputs(now: Microseconds(200), cartridge: used))
    #expect(core.apply(.arm) == .refuse(Refusal(.cartridgeUsed, value: 1, limit: 1)))
    var bound = used
    bound.boundToSession = true
    _ = core.evaluate(TickInputs(now: Microseconds(300), cartridge: bound))
    #expect(core.apply(.arm) == .accept)
  }

  @Test("SR-025: vetting has no effect; only accepted commands change anything")
  func vetIsPure() throws {
    let core = try Self.ready()
    let copy = core
    _ = copy.vet(.arm)
    _ = copy.vet(.setParameters(Self.params(depth: 3), confirmed: true))
    #expect(copy.state == core.state && copy.setpoints == core.setpoints)
  }

  @Test("SR-024: commands illegal in a state are refused with illegal_transition")
  func illegalCommands() throws {
    var core = SafetyCore(model: .rf200)
    core.finishSelfTest(passed: true)
    #expect(core.apply(.start) == .refuse(Refusal(.illegalTransition, value: 1)))
    #expect(core.apply(.arm) == .refuse(Refusal(.illegalTransition, value: 1)))
    #expect(
      core.apply(.setParameters(Self.params(depth: 0.75), confirmed: true))
        == .refuse(Refusal(.illegalTransition, value: 1)))
    #expect(core.state == .idle)
  }

  @Test(
    "SR-023: estop reset needs the current estop count, retracted needles and RF off; it drops the envelope"
  )
  func estopReset() throws {
    var (core, now) = try Fixture.treating()
    #expect(core.apply(.emergencyStop) == .accept)
    #expect(core.state == .estop && core.estopCount == 1)
    #expect(core.apply(.emergencyStop) == .accept, "a second emergency stop is never refused")
    #expect(core.estopCount == 1)
    #expect(core.apply(.start) == .refuse(Refusal(.estopActive)))
    #expect(core.apply(.acknowledgeFault(.emergencyStop)) == .refuse(Refusal(.estopActive)))
    // Needles still out: refused.
    now = Microseconds(now.rawValue + 100)
    _ = core.evaluate(TickInputs(now: now, depth: Millimetres(0.7)))
    #expect(
      core.apply(.resetEstop(estopCount: 1))
        == .refuse(Refusal(.estopActive, .depth, value: 0.7, limit: 0.05)))
    now = Microseconds(now.rawValue + 100)
    _ = core.evaluate(TickInputs(now: now, depth: .zero))
    #expect(
      core.apply(.resetEstop(estopCount: 0)) == .refuse(Refusal(.estopActive, value: 0, limit: 1)))
    #expect(core.apply(.resetEstop(estopCount: 1)) == .accept)
    #expect(core.state == .idle)
    #expect(core.envelope == nil)
  }
}

@Suite("Command vetting: deliverable pulses")
struct DeliverablePulseTests {
  @Test("SR-005: a pulse the pen cannot deliver at its rated power is refused")
  func undeliverablePulseRefused() throws {
    var core = try VettingTests.ready()
    // 25 mJ x 24 pins in 10 ms needs 60 W: exactly the rf200's rating, accepted.
    #expect(
      core.apply(
        .setParameters(VettingTests.params(depth: 0.75, rf: 25, pulse: 10), confirmed: true)
      ).isAccepted)
    // 30 mJ x 24 pins in 11 ms would need 65.5 W.
    let verdict = core.apply(
      .setParameters(VettingTests.params(depth: 0.75, rf: 30, pulse: 11), confirmed: true))
    guard case .refuse(let r) = verdict else {
      Issue.record("accepted \(verdict)")
      return
    }
    #expect(r.code == .outsideEnvelope && r.quantity == .rfPower && r.limit == 60, "\(r)")
  }

  @Test(
    "SR-005: a pen that loads an envelope from the wire starts with no RF, shallowest and slowest")
  func wireEnvelopeStartsGently() throws {
    var core = SafetyCore(model: .rf200)
    core.finishSelfTest(passed: true)
    let envelope = try SessionEnvelope.fromWire(
      try Fixture.envelope().wireMessage(sessionID: 2), model: .rf200)
    #expect(core.apply(.loadEnvelope(envelope, sessionID: 2)) == .accept)
    #expect(core.setpoints.rfEnergyPerPin == .zero)
    #expect(core.setpoints.depth == Millimetres(0.5) && core.setpoints.speed == Hertz(0.5))
  }
}
