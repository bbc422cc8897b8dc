public import Foundation
public import PenSafety
public import PenWire

/// A pen as the records store knows it: identity and when it was first and last connected.
public struct DeviceRecord: Sendable, Hashable {
  public var serial: String
  public var model: PenModelID
  public var firmware: String
  public var firstSeen: Date
  public var lastSeen: Date
}

/// What a connected pen reports about itself, to record with `RecordsStore.upsertDevice(_:)`.
public struct DeviceIdentity: Sendable, Hashable {
  public var serial: String
  public var model: PenModelID
  public var firmware: String

  public init(serial: String, model: PenModelID, firmware: String) {
    self.serial = serial
    self.model = model
    self.firmware = firmware
  }
}

/// The largest errors a calibration sweep found: depth in µm, speed and RF energy in percent.
public struct CalibrationErrors: Sendable, Hashable {
  public var depthMicrometres: Double
  public var speedPercent: Double
  /// Nil for a pen without RF.
  public var rfPercent: Double?

  public init(depthMicrometres: Double, speedPercent: Double, rfPercent: Double?) {
    self.depthMicrometres = depthMicrometres
    self.speedPercent = speedPercent
    self.rfPercent = rfPercent
  }
}

/// One setpoint of a calibration sweep: what was asked and what the fixture measured before and
/// after the correction. Units follow the quantity: depth mm, speed Hz, RF energy mJ per pin.
public struct CalibrationSweepPoint: Codable, Sendable, Hashable {
  /// The quantity a sweep point measures.
  public enum Quantity: String, Codable, Sendable, Hashable {
    case depth
    case speed
    case rfEnergy = "rf_energy"
  }

  public var quantity: Quantity
  public var setpoint: Double
  public var before: Double?
  public var after: Double?

  public init(quantity: Quantity, setpoint: Double, before: Double?, after: Double?) {
    self.quantity = quantity
    self.setpoint = setpoint
    self.before = before
    self.after = after
  }
}

/// A calibration as stored: who made it, the coefficients, the sweep and its verdict, and the
/// 64-byte record written to the pen (Firmware-Specs/calibration.md).
public struct CalibrationEntry: Sendable, Hashable {
  /// Set by the store; ignored by `addCalibration(_:)`.
  public var id: Int64?
  public var serial: String
  public var source: CalibrationSource
  public var at: Date
  /// The technician's operator id; 0 for a factory calibration.
  public var technicianID: UInt32
  public var depthGain: Double
  public var depthOffset: Millimetres
  public var speedGain: Double
  public var rfGain: Double
  /// The errors before the correction, when they were measured.
  public var before: CalibrationErrors?
  /// The errors of the verification sweep after the correction.
  public var after: CalibrationErrors
  public var sweep: [CalibrationSweepPoint]
  public var passed: Bool
  public var markedBad: Bool
  /// The 64-byte record written to the pen; nil when nothing was written.
  public var record: [UInt8]?

  public init(
    id: Int64? = nil, serial: String, source: CalibrationSource, at: Date, technicianID: UInt32,
    depthGain: Double, depthOffset: Millimetres, speedGain: Double, rfGain: Double,
    before: CalibrationErrors?, after: CalibrationErrors, sweep: [CalibrationSweepPoint],
    passed: Bool, markedBad: Bool, record: [UInt8]?
  ) {
    self.id = id
    self.serial = serial
    self.source = source
    self.at = at
    self.technicianID = technicianID
    self.depthGain = depthGain
    self.depthOffset = depthOffset
    self.speedGain = speedGain
    self.rfGain = rfGain
    self.before = before
    self.after = after
    self.sweep = sweep
    self.passed = passed
    self.markedBad = markedBad
    self.record = record
  }
}

/// Where a treatment session stands.
public enum SessionStatus: String, Sendable, Hashable, CaseIterable {
  case inProgress = "in_progress"
  case completed
  case aborted
  case refused
}

/// How a session that ran ended.
public enum SessionOutcome: String, Sendable, Hashable {
  case completed
  case aborted

  var status: SessionStatus { self == .completed ? .completed : .aborted }
}

/// What is known when a session starts (or is refused before it starts).
public struct SessionStart: Sendable, Hashable {
  /// A pseudonymous patient id (`RecordsStore.validatePatientID(_:)`); never a name.
  public var patient: String
  public var area: TreatmentAreaID
  public var presetID: String
  /// Nil only for a session refused before a pen was connected.
  public var penSerial: String?
  public var model: PenModelID?
  public var fitzpatrick: FitzpatrickType
  public var isTestPatch: Bool
  /// The session envelope the pen ran inside (`RecordJSON(envelope:)`); nil if none was built.
  public var envelope: RecordJSON?
  /// Why the clinician confirmed settings outside the preset's recommended range, if they did.
  public var overrideReason: String?
  /// The contraindication screening answers and verdict.
  public var screening: RecordJSON?

  public init(
    patient: String, area: TreatmentAreaID, presetID: String, penSerial: String?,
    model: PenModelID?, fitzpatrick: FitzpatrickType, isTestPatch: Bool = false,
    envelope: RecordJSON? = nil, overrideReason: String? = nil, screening: RecordJSON? = nil
  ) {
    self.patient = patient
    self.area = area
    self.presetID = presetID
    self.penSerial = penSerial
    self.model = model
    self.fitzpatrick = fitzpatrick
    self.isTestPatch = isTestPatch
    self.envelope = envelope
    self.overrideReason = overrideReason
    self.screening = screening
  }
}

/// A persisted telemetry checkpoint of a session, on the pen's monotonic clock.
public struct SessionSample: Sendable, Hashable {
  public var time: Microseconds
  public var state: PenState
  public var depth: Millimetres
  public var speed: Hertz
  public var rfPower: Watts
  /// RF energy delivered in the session so far.
  public var delivered: Millijoules
  public var contact: Bool

  public init(
    time: Microseconds, state: PenState, depth: Millimetres, speed: Hertz, rfPower: Watts,
    delivered: Millijoules, contact: Bool
  ) {
    self.time = time
    self.state = state
    self.depth = depth
    self.speed = speed
    self.rfPower = rfPower
    self.delivered = delivered
    self.contact = contact
  }

  /// The checkpoint of one telemetry message.
  public init(_ telemetry: Telemetry) {
    self.init(
      time: telemetry.timestamp, state: telemetry.state, depth: telemetry.depth,
      speed: telemetry.speed, rfPower: telemetry.rfPower, delivered: telemetry.rfDelivered,
      contact: telemetry.flags.contains(.skinContact))
  }
}

/// A treatment session as stored.
public struct SessionRecord: Sendable, Hashable {
  public var id: Int64
  public var start: SessionStart
  public var startedAt: Date
  public var endedAt: Date?
  public var status: SessionStatus
  /// Why the session was aborted or refused; nil for a completed or running one.
  public var reason: String?
  public var delivered: Millijoules
  /// Nil while in progress, and for a recovered session (the passes were not known).
  public var passes: Int?
}

/// A session that was still in progress when its process ended, closed by
/// `RecordsStore.recoverInterrupted()`.
public struct RecoveredSession: Sendable, Hashable {
  public var id: Int64
  public var patient: String
  public var area: TreatmentAreaID
  /// The energy of the last persisted sample (zero if none was persisted).
  public var delivered: Millijoules
  public var samples: Int
  /// The pen time of the last persisted sample, if any.
  public var lastSampleTime: Microseconds?
}
