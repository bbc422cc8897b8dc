import Foundation
import PenDriver
import PenSafety
import PenWire

/// The sweeps of one calibration: one envelope and one session for both sweeps, so the pen's
/// cartridge is armed once (SR-018), and a record of what must be undone when the procedure stops.
struct SweepSession {
  let calibrator: Calibrator
  let sessionID: UInt32
  var envelope: SessionEnvelope? = nil
  var rfLoadAttached = false

  /// Ten time constants of the depth actuator (5 ms) and of the motor (10 ms): settled to
  /// e⁻¹⁰ of a step, far below the fixtures' uncertainty.
  static let depthSettle = Microseconds.milliseconds(50)
  static let speedSettle = Microseconds.milliseconds(100)
  /// Between two fixture readings that are averaged.
  static let readingInterval = Microseconds.milliseconds(1)
  /// After a pulse ends, before the power meter is read.
  static let pulseMargin = Microseconds.milliseconds(20)

  init(calibrator: Calibrator, sessionID: UInt32) {
    self.calibrator = calibrator
    self.sessionID = sessionID
  }

  var pen: Pen { calibrator.pen }
  var fixtures: any CalibrationFixtures { calibrator.fixtures }
  var options: CalibrationOptions { calibrator.options }

  /// The `body` envelope with a preset spanning the model's whole range: body's hard limits cover
  /// both models' capabilities, and the soft range is the hard range so nothing is clamped.
  mutating func loadEnvelope() throws(CalibrationError) {
    let cap = calibrator.capability
    let preset = PresetLimits(
      depth: SoftRange(cap.minDepth, min: cap.minDepth, max: cap.maxDepth),
      speed: SoftRange(cap.minSpeed, min: cap.minSpeed, max: cap.maxSpeed),
      rfEnergyPerPin: cap.hasRF
        ? SoftRange(.zero, min: .zero, max: cap.maxRFEnergyPerPin) : .exactly(.zero),
      rfPulseDuration: cap.hasRF ? options.rfPulseDuration : .zero)
    let built: SessionEnvelope
    do {
      // Fitzpatrick type I: no skin-type reduction, the fixtures are not skin.
      built = try SessionEnvelope.build(
        model: cap.model, area: .body, preset: preset, skin: .typeI)
    } catch {
      throw .envelopeRefused(error)
    }
    try command("loading the calibration envelope") { () throws(PenError) in
      try pen.load(built, sessionID: sessionID)
    }
    envelope = built
  }

  /// Arms (in service mode, SR-033), sweeps each quantity, and brings the pen back to rest.
  mutating func sweep(
    _ quantities: [CalibrationQuantity], verifying: Bool,
    progress: (CalibrationProgress) -> Void
  ) throws(CalibrationError) -> [CalibrationQuantity: [CalibrationPoint]] {
    guard let e = envelope else { preconditionFailure("sweep before the envelope was loaded") }
    let gentle = Setpoints(depth: e.minDepth, speed: e.minSpeed)
    try set(gentle)
    try command(
      "arming for the \(verifying ? "verification " : "")sweep (it needs a fitted, unused cartridge)"
    ) {
      () throws(PenError) in try pen.arm()
    }
    try command("starting the sweep") { () throws(PenError) in try pen.start() }
    var results: [CalibrationQuantity: [CalibrationPoint]] = [:]
    for q in quantities {
      results[q] = try sweep(q, envelope: e, verifying: verifying, progress: progress)
    }
    try set(gentle)
    try command("stopping after the sweep") { () throws(PenError) in try pen.stop() }
    try command("disarming after the sweep") { () throws(PenError) in try pen.disarm() }
    return results
  }

  mutating func sweep(
    _ q: CalibrationQuantity, envelope e: SessionEnvelope, verifying: Bool,
    progress: (CalibrationProgress) -> Void
  ) throws(CalibrationError) -> [CalibrationPoint] {
    let planned = plannedSetpoints(q, envelope: e)
    let phase: CalibrationProgress.Phase = verifying ? .verifying : .sweeping
    var rfSpeed = e.minSpeed
    var rfWait = Microseconds.zero
    if q == .rf {
      try fixture { () throws(FixtureError) in try fixtures.attachRFLoad(true) }
      rfLoadAttached = true
      // Mid-range speed: far from the speed limit whatever the correction, and the stroke period
      // measured with the tachometer, so the wait covers a whole pulse at the new setpoint.
      rfSpeed = Hertz(snapped(.speed, (e.minSpeed.value + e.maxSpeed.value) / 2, .down))
      try set(Setpoints(depth: e.minDepth, speed: rfSpeed))
      pen.wait(for: Self.speedSettle)
      try checkTreating(q, setpoint: 0, verifying: verifying)
      let speed = try averaged { () throws(FixtureError) in try fixtures.measureSpeed().value }
      let period = speed > 0 ? 1 / speed : 1
      rfWait = Microseconds(
        rawValue: UInt64((2 * period + options.rfPulseDuration.value / 1000) * 1_000_000)
          + Self.pulseMargin.rawValue)
    }
    var points: [CalibrationPoint] = []
    for (i, plannedSetpoint) in planned.enumerated() {
      var s = plannedSetpoint
      if !verifying {
        // The correction is not known yet: never command an output beyond the envelope's maximum
        // (SR-002, SR-004 stay in force in service mode, SR-033).
        guard let safe = safeSetpoint(q, s, after: points, envelope: e) else { break }
        s = safe
      }
      progress(CalibrationProgress(phase: phase, quantity: q, step: i + 1, steps: planned.count))
      let measured = try whileTreating(q, setpoint: s, verifying: verifying) {
        () throws(CalibrationError) in
        try measure(q, s, envelope: e, rfSpeed: rfSpeed, rfWait: rfWait, verifying: verifying)
      }
      points.append(CalibrationPoint(q, setpoint: s, measured: measured))
    }
    if q == .rf {
      try set(Setpoints(depth: e.minDepth, speed: e.minSpeed))
      try fixture { () throws(FixtureError) in try fixtures.attachRFLoad(false) }
      rfLoadAttached = false
    }
    return points
  }

  /// Drives one setpoint, lets it settle, and measures it with the fixture.
  func measure(
    _ q: CalibrationQuantity, _ s: Double, envelope e: SessionEnvelope, rfSpeed: Hertz,
    rfWait: Microseconds, verifying: Bool
  ) throws(CalibrationError) -> Double {
    let measured: Double
    switch q {
    case .depth:
      try set(Setpoints(depth: Millimetres(s), speed: e.minSpeed))
      pen.wait(for: Self.depthSettle)
      try checkTreating(q, setpoint: s, verifying: verifying)
      measured = try averaged { () throws(FixtureError) in try fixtures.measureDepth().value }
    case .speed:
      try set(Setpoints(depth: e.minDepth, speed: Hertz(s)))
      pen.wait(for: Self.speedSettle)
      try checkTreating(q, setpoint: s, verifying: verifying)
      measured = try averaged { () throws(FixtureError) in try fixtures.measureSpeed().value }
    case .rf:
      try set(
        Setpoints(
          depth: e.minDepth, speed: rfSpeed, rfEnergyPerPin: Millijoules(s),
          rfPulseDuration: options.rfPulseDuration))
      pen.wait(for: rfWait)
      try checkTreating(q, setpoint: s, verifying: verifying)
      measured = try fixture { () throws(FixtureError) in try fixtures.readPowerMeter().value }
    }
    return measured
  }

  /// Runs `body`; when a command of it fails because the pen left treatment (a trip between two
  /// checks makes the next command illegal), reports the trip rather than the refused command.
  func whileTreating<T>(
    _ q: CalibrationQuantity, setpoint: Double, verifying: Bool,
    _ body: () throws(CalibrationError) -> T
  ) throws(CalibrationError) -> T {
    do {
      return try body()
    } catch .penRefused(let step, let error) {
      if let status = try? pen.status(), status.state != .treating {
        throw .penFault(
          status.fault, state: status.state, quantity: q, setpoint: setpoint,
          verifying: verifying)
      }
      throw .penRefused(step: step, error)
    }
  }

  /// The step a setpoint of `q` can take: the model's depth step, and the wire's resolution of
  /// speed (0.1 Hz) and RF energy (0.1 mJ) in `set_parameters` — a setpoint between steps would be
  /// rounded on the way to the pen, and the fit would pair a measurement with the wrong setpoint.
  func resolution(_ q: CalibrationQuantity) -> Double {
    switch q {
    case .depth: max(calibrator.capability.depthStep.value, 0.001)
    case .speed: 0.1
    case .rf: 0.1
    }
  }

  /// `value` on the grid of `q`'s resolution, rounded as `rule` says.
  func snapped(_ q: CalibrationQuantity, _ value: Double, _ rule: FloatingPointRoundingRule)
    -> Double
  {
    let step = resolution(q)
    // Rounded to a millionth so that the grid's values print and compare as written (0.3, not
    // 0.30000000000000004); the wire's finest step is a thousandth.
    return
      ((value / step + (rule == .down ? 1e-9 : rule == .up ? -1e-9 : 0)).rounded(rule) * step
      * 1e6).rounded() / 1e6
  }

  /// At least `setpointsPerQuantity` setpoints from the model's minimum to its maximum (RF energy:
  /// from a tenth of the maximum), evenly spaced on the grid of `resolution(q)`.
  func plannedSetpoints(_ q: CalibrationQuantity, envelope e: SessionEnvelope) -> [Double] {
    let n = options.setpointsPerQuantity
    let (lo, hi): (Double, Double)
    switch q {
    case .depth: (lo, hi) = (e.minDepth.value, e.maxDepth.value)
    case .speed: (lo, hi) = (e.minSpeed.value, e.maxSpeed.value)
    case .rf: (lo, hi) = (e.maxRFEnergyPerPin.value / 10, e.maxRFEnergyPerPin.value)
    }
    let first = snapped(q, lo, .up)
    let last = snapped(q, hi, .down)
    var values: [Double] = []
    for i in 0..<n {
      let v =
        i == 0
        ? first
        : i == n - 1
          ? last
          : min(
            last,
            max(
              first,
              snapped(q, lo + (hi - lo) * Double(i) / Double(n - 1), .toNearestOrAwayFromZero)))
      if values.last.map({ v > $0 + 1e-9 }) ?? true { values.append(v) }
    }
    return values
  }

  /// The setpoint to command in the first sweep: `s`, or lower when the points so far predict an
  /// output above the envelope's maximum there; nil when no higher setpoint remains below it.
  func safeSetpoint(
    _ q: CalibrationQuantity, _ s: Double, after points: [CalibrationPoint],
    envelope e: SessionEnvelope
  ) -> Double? {
    let limit: Double
    switch q {
    case .depth: limit = e.maxDepth.value
    case .speed: limit = e.maxSpeed.value
    case .rf: return s  // each pulse is cut at its planned energy (SR-006)
    }
    guard points.count >= 2 else { return s }
    let x = points.map(\.setpoint)
    let y = points.map(\.measured)
    let fit =
      q == .depth ? try? LinearFit.line(x: x, y: y) : try? LinearFit.throughOrigin(x: x, y: y)
    guard let fit, fit.slope > 0, fit(s) > limit, var lowered = fit.inverse(limit) else {
      return s
    }
    lowered = snapped(q, lowered, .down)
    return lowered > (points.last?.setpoint ?? -Double.infinity) + 1e-9 ? lowered : nil
  }

  // MARK: The pen and the fixtures

  func set(_ setpoints: Setpoints) throws(CalibrationError) {
    try command("setting \(setpoints.depth.value) mm, \(setpoints.speed.value) Hz") {
      () throws(PenError) in
      // Soft limits are the hard ones here; confirmed so that nothing is clamped silently.
      _ = try pen.set(setpoints, confirmed: true)
    }
  }

  /// The pen must still be treating: a trip during a sweep ends the procedure.
  func checkTreating(_ q: CalibrationQuantity, setpoint: Double, verifying: Bool)
    throws(CalibrationError)
  {
    let status = try command("reading the pen's status") { () throws(PenError) in
      try pen.status()
    }
    guard status.state == .treating else {
      throw .penFault(
        status.fault, state: status.state, quantity: q, setpoint: setpoint, verifying: verifying)
    }
  }

  func averaged(_ read: () throws(FixtureError) -> Double) throws(CalibrationError) -> Double {
    var sum = 0.0
    let n = options.readingsPerSetpoint
    for i in 0..<n {
      if i > 0 { pen.wait(for: Self.readingInterval) }
      sum += try fixture(read)
    }
    return sum / Double(n)
  }

  func fixture<T>(_ body: () throws(FixtureError) -> T) throws(CalibrationError) -> T {
    do {
      return try body()
    } catch {
      throw .fixtureFailed(error)
    }
  }

  func command<T>(_ what: String, _ body: () throws(PenError) -> T) throws(CalibrationError) -> T {
    do {
      return try body()
    } catch {
      throw .penRefused(step: what, error)
    }
  }

  /// After a failure: the pen back at rest, the RF load off, service mode left. Best effort — the
  /// pen may be lost or in a fault that the technician must acknowledge.
  func abandon() {
    if let e = envelope, let state = try? pen.status().state {
      if [.ready, .armed, .treating, .paused].contains(state) {
        _ = try? pen.set(Setpoints(depth: e.minDepth, speed: e.minSpeed), confirmed: true)
      }
      if state == .treating || state == .paused { try? pen.stop() }
      if [.armed, .treating, .paused].contains(state) { try? pen.disarm() }
    }
    if rfLoadAttached { try? fixtures.attachRFLoad(false) }
    calibrator.leaveServiceMode()
  }
}

extension Calibrator {
  /// Ends the service-mode session without storing anything.
  func leaveServiceMode() {
    try? pen.exitServiceMode()
  }
}
