public import Foundation
public import PenDriver
import PenSafety
public import PenWire

/// Options of the calibration procedure.
public struct CalibrationOptions: Sendable, Hashable {
  /// Setpoints per quantity and sweep, the model's minimum and maximum included (at least 5).
  public var setpointsPerQuantity: Int
  /// Fixture readings averaged at each depth and speed setpoint.
  public var readingsPerSetpoint: Int
  /// The session the sweeps run under; 0 picks a random one. One session for the whole procedure,
  /// so that re-arming for the verification sweep is not cartridge reuse (SR-018).
  public var sessionID: UInt32
  /// The RF pulse duration of the RF sweep.
  public var rfPulseDuration: Milliseconds

  public init(
    setpointsPerQuantity: Int = 7, readingsPerSetpoint: Int = 3, sessionID: UInt32 = 0,
    rfPulseDuration: Milliseconds = Milliseconds(50)
  ) {
    self.setpointsPerQuantity = setpointsPerQuantity
    self.readingsPerSetpoint = readingsPerSetpoint
    self.sessionID = sessionID
    self.rfPulseDuration = rfPulseDuration
  }
}

/// Runs the technician's calibration procedure of calibration.md section 6 on a connected pen with
/// the reference fixtures: sweep under the correction in force, fit, write the fitted record
/// unverified, sweep again to verify, and write the final record — verified, or marked bad.
///
/// The sweeps arm the pen in service mode (SR-033): the pen may be new, unverified or marked bad,
/// and every other safety requirement stays in force, so the first sweep never commands a setpoint
/// whose predicted output lies above the envelope's maximum. The pen's cartridge is armed like any
/// other (SR-017, SR-018). On every exit the pen is left at rest and out of service mode.
public struct Calibrator {
  public let pen: Pen
  public let fixtures: any CalibrationFixtures
  public let serviceKey: [UInt8]
  /// The operator's id, stored in the record (non-zero).
  public let technician: UInt32
  public let scope: CalibrationScope
  public let options: CalibrationOptions
  /// The time the record is stamped with.
  public let clock: @Sendable () -> Date

  public init(
    pen: Pen, fixtures: any CalibrationFixtures, serviceKey: [UInt8], technician: UInt32,
    scope: CalibrationScope = .all, options: CalibrationOptions = CalibrationOptions(),
    clock: @escaping @Sendable () -> Date = { Date() }
  ) {
    self.pen = pen
    self.fixtures = fixtures
    self.serviceKey = serviceKey
    self.technician = technician
    self.scope = scope
    self.options = options
    self.clock = clock
  }

  var model: PenModelID { pen.info.model }
  var serial: FixedASCII<16> { pen.info.serial }

  /// Runs the whole procedure; `progress` is called at every phase and setpoint.
  public func run(progress: (CalibrationProgress) -> Void = { _ in }) throws(CalibrationError)
    -> CalibrationOutcome
  {
    guard technician != 0 else { throw .invalidTechnician }
    try checkOptions()
    let quantities = try scope.quantities(for: model)
    let time = clock()

    // 1. The stored record gives the correction in force (calibration.md sections 2 and 6).
    progress(CalibrationProgress(phase: .readingRecord))
    let state = try step("reading the pen's status") { () throws(PenError) in try pen.status() }
      .state
    guard state == .idle || state == .ready else { throw .penBusy(state) }
    let stored = try readStoredRecord()
    let inForce = correctionInForce(stored)
    let completeScope = quantities == (try CalibrationScope.all.quantities(for: model))
    if !completeScope {
      try checkKeptCoefficients(stored)
    }

    // 2. Service mode (SR-033), the envelope, and the first sweep.
    progress(CalibrationProgress(phase: .enteringServiceMode))
    try enterServiceMode()
    var session = SweepSession(calibrator: self, sessionID: resolvedSessionID())
    do {
      try session.loadEnvelope()
      let before = try session.sweep(quantities, verifying: false, progress: progress)

      // 3. Fit.
      progress(CalibrationProgress(phase: .fitting))
      var fits: [CalibrationQuantity: LinearFit] = [:]
      for q in quantities { fits[q] = try fit(q, before[q] ?? []) }
      let fitted = Self.corrected(inForce, fits: fits)
      let fittedRecord = record(
        fitted, errors: keptErrors(stored), verified: false, bad: false, at: time)
      if let implausible = Self.implausibility(fittedRecord) {
        // A broken actuator: the correction in force is kept and the pen taken out of service.
        let bad = record(
          inForce, errors: Self.errors(before, over: keptErrors(stored)), verified: false,
          bad: true, at: time)
        let bytes = try write(bad, phase: .writingFinal, progress: progress)
        progress(CalibrationProgress(phase: .finished))
        return outcome(
          time: time, previous: stored, inForce: inForce, written: bad, bytes: bytes,
          quantities: quantities.map { q in
            QuantityCalibration(
              quantity: q, before: before[q] ?? [], after: [], fit: fits[q]!,
              maxErrorBefore: Self.maxError(before[q] ?? []), maxErrorAfter: nil,
              tolerance: q.tolerance)
          }, passed: false, findings: [implausible])
      }

      // 4. The fitted record, unverified: not valid for arming until step 6.
      _ = try write(fittedRecord, phase: .writingFitted, progress: progress)

      // 5. Verify under the new correction, back in service mode.
      try enterServiceMode()
      let after = try session.sweep(quantities, verifying: true, progress: progress)

      // 6. The final record: verified with its errors, and marked bad when out of tolerance.
      var final = record(
        fitted, errors: Self.errors(after, over: keptErrors(stored)), verified: true, bad: false,
        at: time)
      let validity = final.validity(forModel: model, serial: serial)
      final.markedBad = !validity.isValidForArming
      let bytes = try write(final, phase: .writingFinal, progress: progress)
      progress(CalibrationProgress(phase: .finished))
      let results = quantities.map { q in
        QuantityCalibration(
          quantity: q, before: before[q] ?? [], after: after[q] ?? [], fit: fits[q]!,
          maxErrorBefore: Self.maxError(before[q] ?? []),
          maxErrorAfter: Self.maxError(after[q] ?? []), tolerance: q.tolerance)
      }
      var findings: [String] = []
      if !validity.isValidForArming {
        findings.append("\(validity): the pen is marked bad and cannot be armed until repaired")
      }
      for r in results where !r.withinTolerance {
        findings.append(
          "\(r.quantity.title): largest error \(r.quantity.format(error: r.maxErrorAfter ?? .nan)) exceeds the tolerance of \(r.quantity.format(error: r.tolerance))"
        )
      }
      return outcome(
        time: time, previous: stored, inForce: inForce, written: final, bytes: bytes,
        quantities: results, passed: validity.isValidForArming, findings: findings)
    } catch {
      session.abandon()
      throw error
    }
  }

  // MARK: Steps

  var capability: PenCapability { PenCapability.of(model) }

  func checkOptions() throws(CalibrationError) {
    if options.setpointsPerQuantity < 5 || options.setpointsPerQuantity > 50 {
      throw .invalidOption(
        name: "setpointsPerQuantity", value: "\(options.setpointsPerQuantity)",
        requirement: "at least 5 (calibration.md section 6) and at most 50")
    }
    if options.readingsPerSetpoint < 1 || options.readingsPerSetpoint > 20 {
      throw .invalidOption(
        name: "readingsPerSetpoint", value: "\(options.readingsPerSetpoint)",
        requirement: "between 1 and 20")
    }
    if capability.hasRF
      && !(options.rfPulseDuration >= capability.minPulse
        && options.rfPulseDuration <= capability.maxPulse)
    {
      throw .invalidOption(
        name: "rfPulseDuration", value: "\(options.rfPulseDuration.value) ms",
        requirement:
          "within the pen's \(capability.minPulse.value)–\(capability.maxPulse.value) ms")
    }
  }

  func resolvedSessionID() -> UInt32 {
    options.sessionID != 0 ? options.sessionID : UInt32.random(in: 1...UInt32.max)
  }

  /// The stored record, or nil when there is none or it does not decode (the pen then applies the
  /// neutral correction, calibration.md section 2).
  func readStoredRecord() throws(CalibrationError) -> CalibrationRecord? {
    do {
      return try pen.readCalibration()
    } catch .badCalibrationRecord {
      return nil
    } catch {
      throw .penRefused(step: "reading the stored calibration record", error)
    }
  }

  /// G0 and O0: the stored record's coefficients when it is this pen's, otherwise neutral.
  func correctionInForce(_ stored: CalibrationRecord?) -> CalibrationCoefficients {
    guard let stored, stored.model == model, stored.serial == serial else { return .neutral }
    return CalibrationCoefficients(stored)
  }

  func checkKeptCoefficients(_ stored: CalibrationRecord?) throws(CalibrationError) {
    guard let stored else {
      throw .subsetNeedsVerifiedRecord(scope: scope, stored: "missing or unreadable")
    }
    if stored.model != model || stored.serial != serial {
      throw .subsetNeedsVerifiedRecord(scope: scope, stored: "another pen's record")
    }
    if stored.markedBad { throw .subsetNeedsVerifiedRecord(scope: scope, stored: "marked bad") }
    if !stored.verified { throw .subsetNeedsVerifiedRecord(scope: scope, stored: "not verified") }
  }

  func enterServiceMode() throws(CalibrationError) {
    do {
      try pen.enterServiceMode(key: serviceKey)
    } catch .refused(_, .serviceAuthFailed, let left) {
      throw .serviceKeyRefused(serial: serial.description, attemptsRemaining: left)
    } catch .refused(_, .serviceLocked, let seconds) {
      throw .serviceLocked(serial: serial.description, secondsRemaining: seconds)
    } catch {
      throw .penRefused(step: "entering service mode", error)
    }
  }

  /// Writes a record; `Pen.writeCalibration` enters service mode for the write and leaves it after.
  func write(
    _ record: CalibrationRecord, phase: CalibrationProgress.Phase,
    progress: (CalibrationProgress) -> Void
  ) throws(CalibrationError) -> [UInt8] {
    progress(CalibrationProgress(phase: phase))
    let bytes: [UInt8]
    do {
      bytes = try record.encode().bytes
    } catch {
      throw .writeRefused(verified: record.verified, .badCalibrationRecord(error))
    }
    do {
      try pen.writeCalibration(record, serviceKey: serviceKey)
    } catch {
      throw .writeRefused(verified: record.verified, error)
    }
    return bytes
  }

  func fit(_ quantity: CalibrationQuantity, _ points: [CalibrationPoint]) throws(CalibrationError)
    -> LinearFit
  {
    let x = points.map(\.setpoint)
    let y = points.map(\.measured)
    do {
      return quantity == .depth
        ? try LinearFit.line(x: x, y: y) : try LinearFit.throughOrigin(x: x, y: y)
    } catch {
      throw .fitFailed(quantity, error)
    }
  }

  func step<T>(_ what: String, _ body: () throws(PenError) -> T) throws(CalibrationError) -> T {
    do {
      return try body()
    } catch {
      throw .penRefused(step: what, error)
    }
  }

  // MARK: Records

  /// The error fields kept from the stored record for quantities not swept.
  func keptErrors(_ stored: CalibrationRecord?) -> [CalibrationQuantity: Double] {
    guard let stored else { return [:] }
    return [.depth: stored.depthError.value, .speed: stored.speedError, .rf: stored.rfError]
  }

  func record(
    _ c: CalibrationCoefficients, errors: [CalibrationQuantity: Double], verified: Bool, bad: Bool,
    at time: Date
  ) -> CalibrationRecord {
    let hasRF = capability.hasRF
    return CalibrationRecord(
      source: .technician, markedBad: bad, verified: verified, model: model, serial: serial,
      timestamp: UInt64(max(0, time.timeIntervalSince1970.rounded(.down))),
      depthGain: c.depthGain, depthOffset: c.depthOffset, speedGain: c.speedGain,
      // calibration.md section 1: a pen without RF carries a neutral RF gain and no RF error.
      rfGain: hasRF ? c.rfGain : 1, depthError: Millimetres(errors[.depth] ?? 0),
      speedError: errors[.speed] ?? 0, rfError: hasRF ? (errors[.rf] ?? 0) : 0,
      technician: technician)
  }

  /// The new correction from the fits (calibration.md section 6, step 3); quantities not swept
  /// keep the correction in force.
  static func corrected(_ g0: CalibrationCoefficients, fits: [CalibrationQuantity: LinearFit])
    -> CalibrationCoefficients
  {
    var c = g0
    if let f = fits[.depth] {
      c.depthGain = g0.depthGain / f.slope
      c.depthOffset = Millimetres(g0.depthOffset.value - f.intercept * g0.depthGain / f.slope)
    }
    if let f = fits[.speed] { c.speedGain = g0.speedGain / f.slope }
    if let f = fits[.rf] { c.rfGain = g0.rfGain / f.slope }
    return c
  }

  /// Why a fitted record cannot be stored (a coefficient outside calibration.md section 3), or nil.
  static func implausibility(_ record: CalibrationRecord) -> String? {
    do {
      _ = try record.encode()
      return nil
    } catch .fieldOutOfRange(let field, let raw) {
      let range = field.rawRange.map { "\($0.min)…\($0.max)" } ?? "its range"
      return
        "fitted \(field.specName) raw \(raw) is outside \(range) (calibration.md section 3): the actuator needs repair, not calibration; the pen is marked bad"
    } catch {
      return "the fitted record cannot be stored: \(error); the pen is marked bad"
    }
  }

  /// The largest absolute error of a sweep, rounded up to the record's step: 1 µm for depth,
  /// 0.1 % for speed and RF energy (calibration.md section 6, step 5).
  static func maxError(_ points: [CalibrationPoint]) -> Double {
    let largest = points.map { abs($0.error) }.max() ?? 0
    guard largest.isFinite else { return largest }
    return ((largest * 1000) - 1e-6).rounded(.up) / 1000
  }

  /// The error fields: each swept quantity's largest error (at most what the record can carry),
  /// the kept ones for the rest.
  static func errors(
    _ sweep: [CalibrationQuantity: [CalibrationPoint]], over kept: [CalibrationQuantity: Double]
  ) -> [CalibrationQuantity: Double] {
    var errors = kept
    for (q, points) in sweep { errors[q] = min(maxError(points), 65.535) }
    return errors
  }

  func outcome(
    time: Date, previous: CalibrationRecord?, inForce: CalibrationCoefficients,
    written record: CalibrationRecord, bytes: [UInt8], quantities: [QuantityCalibration],
    passed: Bool, findings: [String]
  ) -> CalibrationOutcome {
    // The record as the pen holds it: coefficients and errors on the wire's steps.
    let record = (try? CalibrationRecord.decode(bytes)) ?? record
    return CalibrationOutcome(
      serial: serial.description, model: model, source: .technician,
      time: Date(timeIntervalSince1970: TimeInterval(record.timestamp)), technician: technician,
      previous: inForce, previousRecord: previous, coefficients: CalibrationCoefficients(record),
      quantities: quantities, passed: passed, markedBad: record.markedBad, findings: findings,
      record: record, recordBytes: bytes)
  }
}
