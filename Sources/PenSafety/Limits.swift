public import PenWire

/// The timing and tolerance constants of Firmware-Specs/safety-requirements.md, in one place.
public enum SafetyTiming {
  /// The control tick: 10 kHz (SR-027).
  public static let controlTick = Microseconds(100)
  /// Host or pen silence after which the other side is lost (SR-015, SR-016).
  public static let heartbeatTimeout = Microseconds.milliseconds(300)
  /// Measured depth may exceed the limit by this much ... (SR-002)
  public static let depthTolerance = Millimetres(0.05)
  /// ... for at most this long.
  public static let depthPersistence = Microseconds.milliseconds(2)
  /// Measured speed may exceed the limit by this fraction ... (SR-004)
  public static let speedToleranceFraction = 0.05
  /// ... for at most this long.
  public static let speedPersistence = Microseconds.milliseconds(10)
  /// A measured pulse may exceed its per-pin limit by this fraction (SR-006).
  public static let pulseEnergyToleranceFraction = 0.10
  /// Impedance must be back in the window this long before RF resumes (SR-011).
  public static let impedanceReentry = Microseconds.milliseconds(50)
  /// A reading unchanged this long while its actuator moves is stuck (SR-029).
  public static let stuckWindow = Microseconds.milliseconds(50)
  /// One wire step of each reading: changes smaller than this count as unchanged (SR-029).
  public static let depthLSB = Millimetres(0.001)
  public static let speedLSB = Hertz(0.1)
  /// Speed below this fraction of its setpoint for `stallWindow` is a stall (SR-030).
  public static let stallFraction = 0.20
  public static let stallWindow = Microseconds.milliseconds(50)
  /// RF power above this while RF is disabled, for longer than `rfStuckWindow`, is stuck-on (SR-031).
  public static let rfStuckPower = Watts(1.0)
  public static let rfStuckWindow = Microseconds.milliseconds(1)
  /// `base`, or two cycles at `speed` when that is longer: a stroke-counting speed sensor only
  /// changes once a cycle (SR-029, SR-030).
  public static func window(_ base: Microseconds, cyclesAt speed: Hertz) -> Microseconds {
    guard speed.value > 0 else { return base }
    let twoCycles = 2_000_000 / speed.value
    return twoCycles > Double(Int(truncatingIfNeeded: base.rawValue)) && twoCycles < 10_000_000
      ? Microseconds(UInt64(_truncatingBits: UInt(twoCycles))) : base
  }
  /// Depth at or below this counts as needles retracted (SR-023).
  public static let retractedDepth = Millimetres(0.05)
  /// A temperature fault clears only this far below its cut-off (SR-021).
  public static let temperatureHysteresis = Celsius(1.0)
}

/// An area's hard limits (Firmware-Specs/treatment-areas.json).
@frozen public struct TreatmentAreaLimits: Sendable, Hashable {
  public var area: TreatmentAreaID
  /// The deepest mechanical needling allowed.
  public var maxDepth: Millimetres
  /// The deepest RF needling allowed (0 where RF is not allowed).
  public var maxRFDepth: Millimetres
  public var maxSpeed: Hertz
  public var rfAllowed: Bool
  /// RF energy per pulse per pin.
  public var maxRFEnergyPerPin: Millijoules
  /// The cumulative RF energy one session may deliver to the area.
  public var rfDoseCap: Millijoules

  @inlinable public init(
    area: TreatmentAreaID, maxDepth: Millimetres, maxRFDepth: Millimetres, maxSpeed: Hertz,
    rfAllowed: Bool, maxRFEnergyPerPin: Millijoules, rfDoseCap: Millijoules
  ) {
    self.area = area
    self.maxDepth = maxDepth
    self.maxRFDepth = maxRFDepth
    self.maxSpeed = maxSpeed
    self.rfAllowed = rfAllowed
    self.maxRFEnergyPerPin = maxRFEnergyPerPin
    self.rfDoseCap = rfDoseCap
  }
}

/// What a pen model can do (Firmware-Specs/pen-models.json).
@frozen public struct PenCapability: Sendable, Hashable {
  public var model: PenModelID
  public var minDepth: Millimetres
  public var maxDepth: Millimetres
  public var depthStep: Millimetres
  public var minSpeed: Hertz
  public var maxSpeed: Hertz
  public var pinCount: Int
  public var hasRF: Bool
  public var maxRFPower: Watts
  public var maxRFEnergyPerPin: Millijoules
  public var minPulse: Milliseconds
  public var maxPulse: Milliseconds
  public var minImpedance: Ohms
  public var maxImpedance: Ohms
  public var tissueTemperatureCutoff: Celsius
  public var maxTissueTemperatureCutoff: Celsius
  public var handpieceTemperatureCutoff: Celsius
  public var cartridgeMaxUses: Int

  @inlinable public init(
    model: PenModelID, minDepth: Millimetres, maxDepth: Millimetres, depthStep: Millimetres,
    minSpeed: Hertz, maxSpeed: Hertz, pinCount: Int, hasRF: Bool, maxRFPower: Watts,
    maxRFEnergyPerPin: Millijoules, minPulse: Milliseconds, maxPulse: Milliseconds,
    minImpedance: Ohms, maxImpedance: Ohms, tissueTemperatureCutoff: Celsius,
    maxTissueTemperatureCutoff: Celsius, handpieceTemperatureCutoff: Celsius, cartridgeMaxUses: Int
  ) {
    self.model = model
    self.minDepth = minDepth
    self.maxDepth = maxDepth
    self.depthStep = depthStep
    self.minSpeed = minSpeed
    self.maxSpeed = maxSpeed
    self.pinCount = pinCount
    self.hasRF = hasRF
    self.maxRFPower = maxRFPower
    self.maxRFEnergyPerPin = maxRFEnergyPerPin
    self.minPulse = minPulse
    self.maxPulse = maxPulse
    self.minImpedance = minImpedance
    self.maxImpedance = maxImpedance
    self.tissueTemperatureCutoff = tissueTemperatureCutoff
    self.maxTissueTemperatureCutoff = maxTissueTemperatureCutoff
    self.handpieceTemperatureCutoff = handpieceTemperatureCutoff
    self.cartridgeMaxUses = cartridgeMaxUses
  }
}

/// Fitzpatrick skin phototype, I to VI.
public enum FitzpatrickType: UInt8, Sendable, Hashable {
  case typeI = 1
  case typeII = 2
  case typeIII = 3
  case typeIV = 4
  case typeV = 5
  case typeVI = 6
}
