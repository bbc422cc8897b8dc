public import Foundation
public import PenWire

/// One setpoint of a sweep and what the fixture measured there.
public struct CalibrationPoint: Sendable, Hashable, Codable {
  /// The setpoint sent to the pen (mm, Hz or mJ per pin).
  public var setpoint: Double
  /// What the reference fixture measured, in the same unit.
  public var measured: Double
  /// Depth: `measured − setpoint` in mm. Speed and RF energy: `(measured − setpoint) / setpoint`.
  public var error: Double

  public init(setpoint: Double, measured: Double, error: Double) {
    self.setpoint = setpoint
    self.measured = measured
    self.error = error
  }

  /// The point for `quantity`, with its error computed as calibration.md section 6 defines it.
  public init(_ quantity: CalibrationQuantity, setpoint: Double, measured: Double) {
    self.init(
      setpoint: setpoint, measured: measured,
      error: quantity.errorIsRelative ? (measured - setpoint) / setpoint : measured - setpoint)
  }
}

/// The correction a record applies (calibration.md section 2).
public struct CalibrationCoefficients: Sendable, Hashable {
  public var depthGain: Double
  public var depthOffset: Millimetres
  public var speedGain: Double
  public var rfGain: Double

  public init(depthGain: Double, depthOffset: Millimetres, speedGain: Double, rfGain: Double) {
    self.depthGain = depthGain
    self.depthOffset = depthOffset
    self.speedGain = speedGain
    self.rfGain = rfGain
  }

  /// Gains 1.0, offset 0: what a pen applies without a usable record.
  public static let neutral = CalibrationCoefficients(
    depthGain: 1, depthOffset: .zero, speedGain: 1, rfGain: 1)

  /// The coefficients of `record`.
  public init(_ record: CalibrationRecord) {
    self.init(
      depthGain: record.depthGain, depthOffset: record.depthOffset, speedGain: record.speedGain,
      rfGain: record.rfGain)
  }
}

/// One quantity's sweeps: before (the correction in force) and after (the new one).
public struct QuantityCalibration: Sendable, Hashable, Codable {
  public var quantity: CalibrationQuantity
  /// The first sweep, under the correction that was in force.
  public var before: [CalibrationPoint]
  /// The verification sweep, under the new correction; empty when the procedure ended before it.
  public var after: [CalibrationPoint]
  /// The fit of the first sweep (`measured` against `setpoint`).
  public var fit: LinearFit
  /// The largest absolute error of each sweep, rounded up to the record's step (1 µm or 0.1 %).
  public var maxErrorBefore: Double
  public var maxErrorAfter: Double?
  /// calibration.md section 4.
  public var tolerance: Double

  public init(
    quantity: CalibrationQuantity, before: [CalibrationPoint], after: [CalibrationPoint],
    fit: LinearFit, maxErrorBefore: Double, maxErrorAfter: Double?, tolerance: Double
  ) {
    self.quantity = quantity
    self.before = before
    self.after = after
    self.fit = fit
    self.maxErrorBefore = maxErrorBefore
    self.maxErrorAfter = maxErrorAfter
    self.tolerance = tolerance
  }

  /// True when the verification sweep stayed within tolerance.
  public var withinTolerance: Bool { maxErrorAfter.map { $0 <= tolerance } ?? false }
}

/// What a calibration found and stored: the technician's record of it.
public struct CalibrationOutcome: Sendable, Hashable {
  public var serial: String
  public var model: PenModelID
  public var source: CalibrationSource
  /// When the record was made (its `timestamp`).
  public var time: Date
  public var technician: UInt32
  /// The correction in force before (G0, O0), and the stored record it came from, if any.
  public var previous: CalibrationCoefficients
  public var previousRecord: CalibrationRecord?
  /// The correction stored now.
  public var coefficients: CalibrationCoefficients
  /// Per quantity swept, in sweep order.
  public var quantities: [QuantityCalibration]
  /// True when the stored record is valid for arming.
  public var passed: Bool
  public var markedBad: Bool
  /// What the procedure concluded, for a person ("depth_gain 1.31 outside 0.8–1.25 …").
  public var findings: [String]
  /// The stored record, and its 64 bytes as written.
  public var record: CalibrationRecord
  public var recordBytes: [UInt8]

  public init(
    serial: String, model: PenModelID, source: CalibrationSource, time: Date, technician: UInt32,
    previous: CalibrationCoefficients, previousRecord: CalibrationRecord?,
    coefficients: CalibrationCoefficients, quantities: [QuantityCalibration], passed: Bool,
    markedBad: Bool, findings: [String], record: CalibrationRecord, recordBytes: [UInt8]
  ) {
    self.serial = serial
    self.model = model
    self.source = source
    self.time = time
    self.technician = technician
    self.previous = previous
    self.previousRecord = previousRecord
    self.coefficients = coefficients
    self.quantities = quantities
    self.passed = passed
    self.markedBad = markedBad
    self.findings = findings
    self.record = record
    self.recordBytes = recordBytes
  }

  /// The result for `quantity`, when it was swept.
  public subscript(quantity: CalibrationQuantity) -> QuantityCalibration? {
    quantities.first { $0.quantity == quantity }
  }
}

/// Where a calibration is, for a progress line: phase, quantity, and step `step` of `steps`.
public struct CalibrationProgress: Sendable, Hashable {
  public enum Phase: String, Sendable, Hashable, CaseIterable {
    case readingRecord = "reading the stored record"
    case enteringServiceMode = "entering service mode"
    case sweeping = "sweeping"
    case fitting = "fitting"
    case writingFitted = "writing the fitted record"
    case verifying = "verifying"
    case writingFinal = "writing the final record"
    case finished = "finished"
  }

  public var phase: Phase
  public var quantity: CalibrationQuantity?
  /// 1-based; 0 when the phase has no steps.
  public var step: Int
  public var steps: Int

  public init(phase: Phase, quantity: CalibrationQuantity? = nil, step: Int = 0, steps: Int = 0) {
    self.phase = phase
    self.quantity = quantity
    self.step = step
    self.steps = steps
  }

  /// "verifying depth 3/7".
  public var line: String {
    var text = phase.rawValue
    if let quantity { text += " \(quantity.rawValue)" }
    if steps > 0 { text += " \(step)/\(steps)" }
    return text
  }
}
