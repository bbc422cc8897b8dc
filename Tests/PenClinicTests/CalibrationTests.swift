import Foundation
import PenClinic
import PenDriver
import PenSafety
import PenSimulator
import PenWire
import Testing

/// The simulator's reference fixtures as PenClinic sees them. PenClinic does not depend on the
/// simulator, so this adapter lives with whoever has both (here, and in penctl).
struct SimulatorFixtures: CalibrationFixtures {
  let pen: SimulatedPen
  func measureDepth() -> Millimetres { pen.with { $0.measureDepthWithGauge() } }
  func measureSpeed() -> Hertz { pen.with { $0.measureSpeedWithTachometer() } }
  func attachRFLoad(_ attached: Bool) { pen.with { $0.attachRFLoad(attached) } }
  func readPowerMeter() -> Millijoules { pen.with { $0.readPowerMeter() } }
}

/// Fixtures that misreport after a number of readings: a pen that will not hold its calibration,
/// or a bench that drifts. `bias(quantity, reading)` returns what the fixture reports instead.
final class SkewedFixtures: CalibrationFixtures {
  let base: SimulatorFixtures
  let skew: (CalibrationQuantity, Double, Int) -> Double
  var readings = 0

  init(_ pen: SimulatedPen, skew: @escaping (CalibrationQuantity, Double, Int) -> Double) {
    base = SimulatorFixtures(pen: pen)
    self.skew = skew
  }

  func next(_ q: CalibrationQuantity, _ value: Double) -> Double {
    readings += 1
    return skew(q, value, readings)
  }

  func measureDepth() -> Millimetres { Millimetres(next(.depth, base.measureDepth().value)) }
  func measureSpeed() -> Hertz { Hertz(next(.speed, base.measureSpeed().value)) }
  func attachRFLoad(_ attached: Bool) { base.attachRFLoad(attached) }
  func readPowerMeter() -> Millijoules { Millijoules(next(.rf, base.readPowerMeter().value)) }
}

/// A simulated pen on the bench: its firmware, the connected `Pen`, and its fixtures.
struct Bench {
  let sim: SimulatedPen
  let pen: Pen
  var fixtures: SimulatorFixtures { SimulatorFixtures(pen: sim) }
  var serial: String { pen.info.serial.description }
  var key: [UInt8] { simulatedServiceKey(serial: serial) }

  static let time = Date(timeIntervalSince1970: 1_780_000_000)

  /// A factory-new pen (with its factory record).
  static func factory(_ model: PenModelID, seed: UInt64) throws -> Bench {
    try connect(SimulatedPen(model: model, seed: seed))
  }

  /// A pen whose memory holds `record` bytes, or no record at all (a new, uncalibrated unit).
  static func holding(_ record: [UInt8]?, _ model: PenModelID, seed: UInt64) throws -> Bench {
    let serial = SimulatedPen.serial(model: model, seed: seed)
    var nvm = NonVolatileMemory(
      model: model, serial: serial, serviceKey: simulatedServiceKey(serial: serial))
    nvm.calibrationRecord = record
    return try connect(
      SimulatedPen(PenFirmware(model: model, serial: serial, seed: seed, nvm: nvm)))
  }

  static func connect(_ sim: SimulatedPen) throws -> Bench {
    sim.advance(by: PenFirmware.bootTime)
    return Bench(sim: sim, pen: try Pen.connect(over: LoopbackTransport(pen: sim)))
  }

  func calibrator(
    scope: CalibrationScope = .all, key: [UInt8]? = nil,
    fixtures: (any CalibrationFixtures)? = nil
  ) -> Calibrator {
    Calibrator(
      pen: pen, fixtures: fixtures ?? self.fixtures, serviceKey: key ?? self.key, technician: 4711,
      scope: scope, options: CalibrationOptions(sessionID: 77), clock: { Bench.time })
  }

  var storedBytes: [UInt8]? { sim.with { $0.nvm.calibrationRecord } }

  /// A new cartridge, as a technician fits one after calibrating.
  func fitNewCartridge() {
    sim.with {
      $0.cartridge = SimulatedCartridge(
        id: 0xC0FF_EE00 &+ UInt64($0.now.rawValue), needleCount: $0.cartridge.needleCount)
    }
  }

  /// Loads a body envelope at gentle setpoints, ready to arm.
  func ready() throws {
    let cap = PenCapability.of(pen.info.model)
    let preset = PresetLimits(
      depth: SoftRange(cap.minDepth, min: cap.minDepth, max: cap.maxDepth),
      speed: SoftRange(cap.minSpeed, min: cap.minSpeed, max: cap.maxSpeed))
    try pen.load(
      try SessionEnvelope.build(model: cap.model, area: .body, preset: preset, skin: .typeII),
      sessionID: 901)
    try pen.set(Setpoints(depth: cap.minDepth, speed: cap.minSpeed))
  }

  func inServiceMode() throws -> Bool {
    pen.wait(for: .milliseconds(20))  // a status frame from a tick after the last command
    return try pen.status().flags.contains(.serviceMode)
  }
}

@Suite("Least squares")
struct LeastSquaresTests {
  @Test("a line fit recovers the slope and intercept of exact data, with zero residuals")
  func lineExact() throws {
    let x = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    let fit = try LinearFit.line(x: x, y: x.map { 1.07 * $0 - 0.09 })
    #expect(abs(fit.slope - 1.07) < 1e-12 && abs(fit.intercept + 0.09) < 1e-12)
    #expect(fit.maxAbsResidual < 1e-12 && !fit.throughOrigin)
    #expect(abs(fit(4) - (1.07 * 4 - 0.09)) < 1e-12)
    #expect(abs(try #require(fit.inverse(1.0)) - (1.09 / 1.07)) < 1e-12)
  }

  @Test("a line fit of noisy data: the textbook values, and residuals that sum to zero")
  func lineNoisy() throws {
    // y = 2x + 1 with residuals +0.1, -0.1, -0.1, +0.1 (centred x): slope 2, intercept 1 exactly.
    let fit = try LinearFit.line(x: [1, 2, 3, 4], y: [3.1, 4.9, 6.9, 9.1])
    #expect(abs(fit.slope - 2) < 1e-12 && abs(fit.intercept - 1) < 1e-12)
    #expect(zip(fit.residuals, [0.1, -0.1, -0.1, 0.1]).allSatisfy { abs($0 - $1) < 1e-12 })
    #expect(abs(fit.residuals.reduce(0, +)) < 1e-12)
    #expect(abs(fit.rmsResidual - 0.1) < 1e-12)
  }

  @Test("a fit through the origin recovers the gain, and differs from a line fit with an offset")
  func throughOrigin() throws {
    let x = [30.0, 60, 90, 120, 150]
    let fit = try LinearFit.throughOrigin(x: x, y: x.map { 0.93 * $0 })
    #expect(abs(fit.slope - 0.93) < 1e-12 && fit.intercept == 0 && fit.throughOrigin)
    // Σxy / Σx² for y = x + 1 on x = 1, 2: (2 + 6) / 5 = 1.6.
    let offset = try LinearFit.throughOrigin(x: [1, 2], y: [2, 3])
    #expect(abs(offset.slope - 1.6) < 1e-12)
    #expect(zip(offset.residuals, [0.4, -0.2]).allSatisfy { abs($0 - $1) < 1e-12 })
  }

  @Test("degenerate input is refused with the reason")
  func degenerate() {
    #expect(throws: FitError.self) { try LinearFit.line(x: [1, 1, 1], y: [1, 2, 3]) }
    #expect(throws: FitError.self) { try LinearFit.line(x: [1], y: [1]) }
    #expect(throws: FitError.self) { try LinearFit.line(x: [1, 2], y: [1]) }
    #expect(throws: FitError.self) { try LinearFit.throughOrigin(x: [0, 0], y: [1, 2]) }
    #expect(throws: FitError.self) { try LinearFit.line(x: [1, .nan], y: [1, 2]) }
  }
}

@Suite("Calibration procedure")
struct CalibrationTests {
  @Test(
    "SR-033: a new RF pen without a record is calibrated: errors within tolerance and smaller, record verified, pen arms"
  )
  func newPenCalibrates() throws {
    let bench = try Bench.holding(nil, .rf200, seed: 7)
    defer { bench.pen.disconnect() }
    var phases: [CalibrationProgress.Phase] = []
    let outcome = try bench.calibrator().run { phases.append($0.phase) }

    #expect(outcome.passed && !outcome.markedBad && outcome.findings.isEmpty)
    #expect(outcome.previous == .neutral && outcome.previousRecord == nil)
    #expect(outcome.quantities.map(\.quantity) == [.depth, .speed, .rf])
    for q in outcome.quantities {
      let before = q.maxErrorBefore
      let after = try #require(q.maxErrorAfter)
      #expect(after <= q.tolerance, "\(q.quantity): after \(after)")
      #expect(after < before, "\(q.quantity): after \(after), before \(before)")
      #expect(q.after.count == 7 && q.before.count >= 5)
      #expect(q.after.first?.setpoint == q.before.first?.setpoint)
    }
    // The unit was out of tolerance before; the sweeps covered the model's range.
    #expect(try #require(outcome[.speed]).maxErrorBefore > 0.05)
    #expect(try #require(outcome[.depth]).after.map(\.setpoint) == [0.5, 1, 1.5, 2, 2.5, 3, 3.5])
    #expect(try #require(outcome[.speed]).after.last?.setpoint == 4)
    #expect(try #require(outcome[.rf]).after.last?.setpoint == 62)

    // The correction found inverts the unit's imperfections.
    let p = bench.sim.with { $0.physics.profile }
    #expect(abs(outcome.coefficients.depthGain * p.depthGain - 1) < 0.01)
    #expect(abs(outcome.coefficients.speedGain * p.speedGain - 1) < 0.01)
    #expect(abs(outcome.coefficients.rfGain * p.rfGain - 1) < 0.03)
    #expect(
      abs(outcome.coefficients.depthOffset.value + p.depthOffset.value / p.depthGain) < 0.01)

    // What the pen stores is what the outcome says, and it is valid for arming.
    #expect(bench.storedBytes == outcome.recordBytes && outcome.recordBytes.count == 64)
    let stored = try #require(try bench.pen.readCalibration())
    #expect(stored == outcome.record)
    #expect(stored.verified && !stored.markedBad && stored.source == .technician)
    #expect(stored.technician == 4711 && stored.timestamp == 1_780_000_000)
    #expect(stored.validity(forModel: .rf200, serial: bench.pen.info.serial) == .valid)
    #expect(stored.depthError.value == outcome[.depth]?.maxErrorAfter)

    // The procedure went through every phase, and left service mode.
    #expect(
      phases.first == .readingRecord && phases.last == .finished
        && phases.contains(.writingFitted) && phases.contains(.verifying))
    #expect(try !bench.inServiceMode())

    // Outside service mode the calibrated pen arms (with a new cartridge: the sweeps used one).
    bench.fitNewCartridge()
    try bench.ready()
    try bench.pen.arm()
    #expect(try bench.pen.status().state == .armed)
  }

  @Test("a factory-calibrated RF pen (seed 7) is recalibrated within tolerance")
  func factoryPenRecalibrates() throws {
    let bench = try Bench.factory(.rf200, seed: 7)
    defer { bench.pen.disconnect() }
    let factory = try #require(try bench.pen.readCalibration())
    let outcome = try bench.calibrator().run()
    #expect(outcome.passed)
    #expect(outcome.previousRecord == factory)
    #expect(outcome.previous == CalibrationCoefficients(factory))
    for q in outcome.quantities {
      #expect(q.maxErrorBefore <= q.tolerance, "the factory record was good: \(q.quantity)")
      #expect(try #require(q.maxErrorAfter) <= q.tolerance)
    }
    #expect(try #require(try bench.pen.readCalibration()).verified)
  }

  @Test("a mechanical pen is calibrated for depth and speed; RF alone is not applicable")
  func mechanicalPen() throws {
    let bench = try Bench.holding(nil, .mn100, seed: 3)
    defer { bench.pen.disconnect() }
    #expect(throws: CalibrationError.fixtureNotApplicable(quantity: .rf, model: .mn100)) {
      try bench.calibrator(scope: .rf).run()
    }
    #expect(bench.storedBytes == nil)
    let outcome = try bench.calibrator().run()
    #expect(outcome.passed && outcome.quantities.map(\.quantity) == [.depth, .speed])
    #expect(outcome.record.rfGain == 1 && outcome.record.rfError == 0)
    let depths = try #require(outcome[.depth]).after.map(\.setpoint)
    #expect(depths.first == 0.2 && depths.last == 2.5 && depths.count == 7)
    #expect(
      depths.allSatisfy { abs(($0 / 0.05).rounded() * 0.05 - $0) < 1e-9 }, "on the depth step")
  }

  @Test("a subset keeps the other coefficients and their errors from the stored record")
  func subsetKeepsOthers() throws {
    let bench = try Bench.factory(.rf200, seed: 11)
    defer { bench.pen.disconnect() }
    let factory = try #require(try bench.pen.readCalibration())
    let outcome = try bench.calibrator(scope: .speed).run()
    #expect(outcome.passed && outcome.quantities.map(\.quantity) == [.speed])
    #expect(outcome.record.depthGain == factory.depthGain)
    #expect(outcome.record.depthOffset == factory.depthOffset)
    #expect(outcome.record.rfGain == factory.rfGain)
    #expect(
      outcome.record.depthError == factory.depthError && outcome.record.rfError == factory.rfError)
    #expect(outcome.record.speedError == outcome[.speed]?.maxErrorAfter)
  }

  @Test("a subset on a pen without a verified record is refused before anything is driven")
  func subsetNeedsVerifiedRecord() throws {
    let bench = try Bench.holding(nil, .rf200, seed: 12)
    defer { bench.pen.disconnect() }
    #expect(
      throws: CalibrationError.subsetNeedsVerifiedRecord(
        scope: .depth, stored: "missing or unreadable")
    ) { try bench.calibrator(scope: .depth).run() }
    #expect(bench.sim.with { $0.truth.maxDepth } == .zero)
  }

  @Test(
    "SR-019: a pen whose record is marked bad, or missing, is refused arming through the Pen API")
  func markedBadCannotArm() throws {
    let serial = SimulatedPen.serial(model: .rf200, seed: 5)
    let bad = CalibrationRecord(
      source: .technician, markedBad: true, verified: true, model: .rf200,
      serial: FixedASCII<16>(string: serial)!, timestamp: 1_767_225_600, depthGain: 1,
      depthOffset: .zero, speedGain: 1, rfGain: 1, depthError: Millimetres(0.01), speedError: 0.01,
      rfError: 0.01, technician: 3)
    for stored in [try bad.encodedBytes(), nil] {
      let bench = try Bench.holding(stored, .rf200, seed: 5)
      defer { bench.pen.disconnect() }
      try bench.ready()
      #expect(
        throws: PenError.refused(
          message: Arm.id, code: .calibrationInvalid,
          detail: Int32(
            stored == nil
              ? CalibrationStatus.missing.rawValue : CalibrationStatus.markedBad.rawValue))
      ) { try bench.pen.arm() }
      #expect(try bench.pen.status().state == .ready)
    }
  }

  @Test("a wrong service key is a typed error; the pen's record is unchanged and nothing moved")
  func wrongKey() throws {
    let bench = try Bench.factory(.rf200, seed: 8)
    defer { bench.pen.disconnect() }
    let before = bench.storedBytes
    let wrong = simulatedServiceKey(serial: "SIM-RF200-000009")
    #expect(
      throws: CalibrationError.serviceKeyRefused(serial: bench.serial, attemptsRemaining: 2)
    ) { try bench.calibrator(key: wrong).run() }
    #expect(bench.storedBytes == before)
    #expect(bench.sim.with { $0.truth.maxDepth } == .zero)
    #expect(try !bench.inServiceMode())
    let description = CalibrationError.serviceKeyRefused(serial: bench.serial, attemptsRemaining: 2)
      .description
    #expect(description.contains(bench.serial) && description.contains("2 attempts"))
  }

  @Test("a pen that fails verification is stored marked bad and cannot be armed (SR-019)")
  func outOfToleranceMarkedBad() throws {
    let bench = try Bench.holding(nil, .rf200, seed: 7)
    defer { bench.pen.disconnect() }
    // The tachometer reads true for the first sweep, then 8 % high: the pen no longer holds speed.
    var verifying = false
    let skewed = SkewedFixtures(bench.sim) { q, value, _ in
      q == .speed && verifying ? value * 1.08 : value
    }
    let outcome = try bench.calibrator(fixtures: skewed).run { p in
      if p.phase == .verifying { verifying = true }
    }
    #expect(!outcome.passed && outcome.markedBad)
    #expect(try #require(outcome[.speed]?.maxErrorAfter) > 0.05)
    #expect(outcome.findings.contains { $0.contains("Needle speed") })
    let stored = try #require(try bench.pen.readCalibration())
    #expect(stored.markedBad && stored.verified)
    bench.fitNewCartridge()
    try bench.ready()
    #expect(
      throws: PenError.refused(
        message: Arm.id, code: .calibrationInvalid,
        detail: Int32(CalibrationStatus.markedBad.rawValue))
    ) { try bench.pen.arm() }
  }

  @Test("a fit beyond the plausible range marks the pen bad with the correction that was in force")
  func implausibleFitMarksBad() throws {
    let bench = try Bench.factory(.rf200, seed: 9)
    defer { bench.pen.disconnect() }
    let factory = try #require(try bench.pen.readCalibration())
    // The gauge sees 40 % more depth than the setpoint: no correction within ±25 % can fix that.
    let skewed = SkewedFixtures(bench.sim) { q, value, _ in q == .depth ? value * 1.4 : value }
    let outcome = try bench.calibrator(fixtures: skewed).run()
    #expect(!outcome.passed && outcome.markedBad)
    #expect(outcome.findings.first?.contains("depth_gain") == true)
    #expect(outcome.coefficients == CalibrationCoefficients(factory))
    #expect(outcome.quantities.allSatisfy { $0.after.isEmpty })
    let stored = try #require(try bench.pen.readCalibration())
    #expect(stored.markedBad && !stored.verified)
    // The first sweep never drove the pen beyond its envelope, judged by the physics.
    #expect(bench.sim.with { $0.truth.maxDepth.value } <= 3.5 + 0.05)
    #expect(try !bench.inServiceMode())
  }

  @Test("a trip during a sweep is a typed error; the pen is left out of service mode")
  func faultDuringSweep() throws {
    let bench = try Bench.holding(nil, .rf200, seed: 7)
    defer { bench.pen.disconnect() }
    // The tissue sensor reads 45 °C a fifth of a second in: SR-013 stays in force (SR-033).
    bench.sim.with {
      $0.inject(ScheduledFault(.overTemperature, at: Microseconds($0.now.rawValue + 200_000)))
    }
    #expect {
      try bench.calibrator().run()
    } throws: { error in
      guard
        case CalibrationError.penFault(.tissueOverTemperature, .fault, .depth, _, false) = error
      else { return false }
      return "\(error)".contains("tissue_over_temperature")
    }
    #expect(bench.storedBytes == nil, "nothing was written")
    #expect(try !bench.inServiceMode())
  }

  @Test(
    "an uncalibrated pen that over-delivers is never swept beyond its envelope (SR-002, SR-004)")
  func firstSweepStaysInside() throws {
    // Units that over-deliver depth or speed: uncorrected, their maximum setpoint would trip.
    let overDelivering = (UInt64(1)...60).filter { seed in
      let p = UnitProfile.drawn(seed: seed)
      return p.depthGain * 3.5 + p.depthOffset.value > 3.55 && p.speedGain * 4 > 4.2
    }
    for seed in overDelivering.prefix(2) {
      let bench = try Bench.holding(nil, .rf200, seed: seed)
      defer { bench.pen.disconnect() }
      let outcome = try bench.calibrator(scope: .all).run()
      #expect(outcome.passed, "seed \(seed): \(outcome.findings)")
      let truth = bench.sim.with { $0.truth }
      #expect(try #require(outcome[.depth]?.before.last).setpoint < 3.5, "lowered, seed \(seed)")
      #expect(try #require(outcome[.speed]?.before.last).setpoint < 4, "lowered, seed \(seed)")
      #expect(truth.maxDepth.value <= 3.5 + 0.05, "seed \(seed)")
      #expect(truth.maxSpeed.value <= 4 * 1.05, "seed \(seed)")
    }
  }

  @Test("progress reports every setpoint of every sweep, step i of n")
  func progressSteps() throws {
    let bench = try Bench.factory(.mn100, seed: 2)
    defer { bench.pen.disconnect() }
    var lines: [String] = []
    var steps: [CalibrationProgress] = []
    _ = try bench.calibrator().run { p in
      lines.append(p.line)
      if p.phase == .verifying { steps.append(p) }
    }
    #expect(steps.count == 14)
    #expect(
      steps.first == CalibrationProgress(phase: .verifying, quantity: .depth, step: 1, steps: 7))
    #expect(lines.contains("verifying speed 7/7"))
  }
}
