import PenSafety
import PenWire

/// Shared set-ups for the safety-core tests.
enum Fixture {
  static let rfForehead = PresetLimits(
    depth: SoftRange(Millimetres(0.75), min: Millimetres(0.5), max: Millimetres(1.0)),
    speed: SoftRange(Hertz(2), min: Hertz(1), max: Hertz(3)),
    rfEnergyPerPin: SoftRange(Millijoules(20), min: Millijoules(10), max: Millijoules(25)),
    rfPulseDuration: Milliseconds(80))

  static let mechanicalForehead = PresetLimits(
    depth: SoftRange(Millimetres(0.5), min: Millimetres(0.25), max: Millimetres(0.6)),
    speed: SoftRange(Hertz(100), min: Hertz(60), max: Hertz(120)))

  static func envelope(
    _ model: PenModelID = .rf200, _ area: TreatmentAreaID = .forehead,
    _ preset: PresetLimits = rfForehead,
    skin: FitzpatrickType = .typeII
  ) throws -> SessionEnvelope {
    try SessionEnvelope.build(model: model, area: area, preset: preset, skin: skin)
  }

  /// Readings of a pen resting on skin with good contact and everything in range.
  /// The speed reading jitters by more than a wire step, as a live tachometer does.
  static func onSkin(_ now: Microseconds, _ core: SafetyCore, rfPower: Watts = .zero) -> TickInputs
  {
    let jitter = Double((now.rawValue / 100) % 3) * 0.11 - 0.11
    // Needles and motor are out only while treating; otherwise they are retracted and still.
    let treating = core.state == .treating
    return TickInputs(
      now: now, depth: treating ? core.setpoints.depth : .zero,
      speed: Hertz(treating ? max(0, core.setpoints.speed.value + jitter) : 0), rfPower: rfPower,
      impedance: Ohms(300), tissueTemperature: Celsius(34), handpieceTemperature: Celsius(28),
      skinContact: true, heartbeatAge: Microseconds(10_000), cartridge: .fresh, calibration: .valid,
      pulseRequested: false)
  }

  /// A core that has been loaded, armed and started, with one tick of good readings seen.
  static func treating(
    _ model: PenModelID = .rf200, envelope: SessionEnvelope? = nil
  ) throws -> (SafetyCore, Microseconds) {
    var core = SafetyCore(model: model)
    core.finishSelfTest(passed: true)
    let env =
      try envelope
      ?? Self.envelope(model, .forehead, model == .rf200 ? rfForehead : mechanicalForehead)
    var now = Microseconds(1_000)
    _ = core.evaluate(TickInputs(now: now, skinContact: true, heartbeatAge: .zero))
    precondition(core.apply(.loadEnvelope(env, sessionID: 7)).isAccepted)
    precondition(core.apply(.arm).isAccepted)
    precondition(core.apply(.start).isAccepted)
    now = Microseconds(now.rawValue + 100)
    _ = core.evaluate(onSkin(now, core))
    return (core, now)
  }

  /// Runs `ticks` control ticks of `inputs` (with the clock advanced), returning the last actuation.
  @discardableResult
  static func run(
    _ core: inout SafetyCore, from now: inout Microseconds, ticks: Int,
    _ inputs: (Microseconds, SafetyCore) -> TickInputs
  ) -> Actuation {
    var last = Actuation.safe(core.state, fault: core.latchedFault)
    for _ in 0..<ticks {
      now = Microseconds(now.rawValue + 100)
      last = core.evaluate(inputs(now, core))
    }
    return last
  }
}
