public import PenWire

/// The working setpoints of a pen.
@frozen public struct Setpoints: Sendable, Hashable {
  public var depth: Millimetres
  public var speed: Hertz
  /// RF energy per pulse per pin; zero for no RF.
  public var rfEnergyPerPin: Millijoules
  public var rfPulseDuration: Milliseconds

  @inlinable public init(
    depth: Millimetres, speed: Hertz, rfEnergyPerPin: Millijoules = .zero,
    rfPulseDuration: Milliseconds = .zero
  ) {
    self.depth = depth
    self.speed = speed
    self.rfEnergyPerPin = rfEnergyPerPin
    self.rfPulseDuration = rfPulseDuration
  }

  /// Needles in, motor off, no RF.
  public static let retracted = Setpoints(depth: .zero, speed: .zero)
}

/// The fitted cartridge, as the pen reads it from the cartridge's chip.
@frozen public struct CartridgeStatus: Sendable, Hashable {
  public var present: Bool
  public var valid: Bool
  public var useCount: Int
  public var maxUses: Int
  /// True when this cartridge was armed earlier in the current session (re-arming it is not reuse).
  public var boundToSession: Bool

  @inlinable public init(
    present: Bool, valid: Bool, useCount: Int, maxUses: Int, boundToSession: Bool
  ) {
    self.present = present
    self.valid = valid
    self.useCount = useCount
    self.maxUses = maxUses
    self.boundToSession = boundToSession
  }

  /// No cartridge fitted.
  public static let absent = CartridgeStatus(
    present: false, valid: false, useCount: 0, maxUses: 0, boundToSession: false)
  /// A new single-use cartridge.
  public static let fresh = CartridgeStatus(
    present: true, valid: true, useCount: 0, maxUses: 1, boundToSession: false)

  /// True when the cartridge has been used up in an earlier session (SR-018).
  @inlinable public var isUsedUp: Bool { !boundToSession && useCount >= maxUses }
}

/// The state of the pen's calibration record (SR-019).
public enum CalibrationStatus: UInt8, Sendable, Hashable {
  case valid = 0
  case missing = 1
  /// The record fails its CRC or format checks.
  case corrupt = 2
  case outOfTolerance = 3
  case markedBad = 4
  /// The record belongs to another pen (serial or model differ).
  case wrongPen = 5
}

extension CalibrationStatus {
  /// The status a decoded record gives its pen (calibration.md section 4): the pen when it loads
  /// its record, and the host when it learns why a pen is not valid for arming.
  @inlinable public init(_ validity: CalibrationValidity) {
    switch validity {
    case .valid: self = .valid
    case .markedBad: self = .markedBad
    case .wrongPen: self = .wrongPen
    case .implausible: self = .corrupt
    case .notVerified, .outOfTolerance: self = .outOfTolerance
    }
  }
}

/// A request to change what the pen does.
public enum Command: Sendable, Hashable {
  case loadEnvelope(SessionEnvelope, sessionID: UInt32)
  /// New setpoints; `confirmed` accepts values above the preset's recommended range (still inside
  /// the hard limits) instead of clamping them.
  case setParameters(Setpoints, confirmed: Bool)
  case arm
  case start
  case pause
  case stop
  case disarm
  case emergencyStop
  case acknowledgeFault(FaultCode)
  case resetEstop(estopCount: UInt16)

  /// The state-machine event this command is.
  @inlinable public var event: PenEvent {
    switch self {
    case .loadEnvelope: .setSessionEnvelope
    case .setParameters: .setParameters
    case .arm: .arm
    case .start: .start
    case .pause: .pause
    case .stop: .stop
    case .disarm: .disarm
    case .emergencyStop: .emergencyStop
    case .acknowledgeFault: .acknowledgeFault
    case .resetEstop: .resetEstop
    }
  }
}

/// Why a command was refused: the wire's nack code, and where one applies the quantity, the
/// requested value and the limit it broke.
@frozen public struct Refusal: Sendable, Hashable, Error {
  public var code: NackCode
  public var quantity: Quantity?
  public var value: Double
  public var limit: Double

  @inlinable public init(
    _ code: NackCode, _ quantity: Quantity? = nil, value: Double = 0, limit: Double = 0
  ) {
    self.code = code
    self.quantity = quantity
    self.value = value
    self.limit = limit
  }
}

extension Refusal {
  /// The `nack.detail` this refusal carries (messages.json): the limit in the quantity's wire
  /// unit (depth in µm, speed, energy and power in tenths, temperatures in hundredths), or the
  /// value itself when the refusal is about no quantity. The pen sends it; the host's guard gives
  /// the same number when it refuses first, so a refusal reads the same from either side.
  @inlinable public var nackDetail: Int32 {
    let scale: Double
    switch quantity {
    case .depth?: scale = 1000
    case .speed?, .rfEnergyPerPin?, .rfPower?: scale = 10
    case .tissueTemperature?, .handpieceTemperature?: scale = 100
    default: scale = 1
    }
    let v = ((quantity == nil ? value : limit) * scale).rounded()
    if !(v == v) { return 0 }
    if v >= 2_147_483_647 { return .max }
    if v <= -2_147_483_648 { return .min }
    return Int32(v)
  }
}

/// A setpoint above the preset's recommended range but inside the hard limits.
@frozen public struct SoftLimitWarning: Sendable, Hashable {
  public var quantity: Quantity
  public var requested: Double
  public var recommendedMax: Double

  @inlinable public init(quantity: Quantity, requested: Double, recommendedMax: Double) {
    self.quantity = quantity
    self.requested = requested
    self.recommendedMax = recommendedMax
  }
}

/// The answer to a command (vetting, SR-025).
public enum Verdict: Sendable, Hashable {
  case accept
  /// Accepted with setpoints clamped to the preset's recommended maximum (soft limits only;
  /// hard limits are never clamped).
  case clamped(Setpoints, SoftLimitWarning)
  /// Accepted above the recommended range because the operator confirmed it.
  case acceptedAboveRecommended(SoftLimitWarning)
  case refuse(Refusal)

  /// True unless the command is refused.
  @inlinable public var isAccepted: Bool {
    if case .refuse = self { return false }
    return true
  }
}
