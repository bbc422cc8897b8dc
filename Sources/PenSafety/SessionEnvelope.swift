public import PenWire

/// A preset's default and recommended (soft) range for one setting.
@frozen public struct SoftRange<Q: PhysicalQuantity>: Sendable, Hashable {
  public var value: Q
  public var min: Q
  public var max: Q

  @inlinable public init(_ value: Q, min: Q, max: Q) {
    self.value = value
    self.min = min
    self.max = max
  }

  /// A single value with no room either side.
  @inlinable public static func exactly(_ value: Q) -> SoftRange {
    SoftRange(value, min: value, max: value)
  }
}

/// What a preset asks for: defaults with recommended ranges, which must lie inside the hard limits.
@frozen public struct PresetLimits: Sendable, Hashable {
  public var depth: SoftRange<Millimetres>
  public var speed: SoftRange<Hertz>
  /// RF energy per pin; all zero for a mechanical preset.
  public var rfEnergyPerPin: SoftRange<Millijoules>
  public var rfPulseDuration: Milliseconds
  /// A lower cumulative RF cap than the area's, or nil to use the area's.
  public var rfDoseCap: Millijoules?
  /// A lower tissue temperature cut-off than the pen's, or nil to use the pen's.
  public var tissueTemperatureCutoff: Celsius?

  @inlinable public init(
    depth: SoftRange<Millimetres>, speed: SoftRange<Hertz>,
    rfEnergyPerPin: SoftRange<Millijoules> = .exactly(.zero),
    rfPulseDuration: Milliseconds = .zero, rfDoseCap: Millijoules? = nil,
    tissueTemperatureCutoff: Celsius? = nil
  ) {
    self.depth = depth
    self.speed = speed
    self.rfEnergyPerPin = rfEnergyPerPin
    self.rfPulseDuration = rfPulseDuration
    self.rfDoseCap = rfDoseCap
    self.tissueTemperatureCutoff = tissueTemperatureCutoff
  }

  /// True when the preset asks for any RF energy.
  @inlinable public var usesRF: Bool {
    rfEnergyPerPin.max.value > 0 || rfEnergyPerPin.value.value > 0
  }
}

/// The quantity a limit or refusal is about.
public enum Quantity: UInt8, Sendable, Hashable {
  case depth = 1
  case speed = 2
  case rfEnergyPerPin = 3
  case rfPulseDuration = 4
  case rfDoseCap = 5
  case impedance = 6
  case tissueTemperature = 7
  case handpieceTemperature = 8
  case rfPower = 9
}

/// Where a limit comes from.
public enum LimitSource: Sendable, Hashable {
  case penModel(PenModelID)
  case area(TreatmentAreaID)
  case skinType(FitzpatrickType)
  /// The preset's recommended range (a soft limit).
  case preset
}

/// Why a session envelope could not be built (SR-009). Every case names the value and the limit.
public enum EnvelopeError: Error, Sendable, Hashable {
  /// No area was given.
  case noArea
  /// A value is not a number.
  case notANumber(Quantity)
  /// The preset uses RF where the area does not allow it (SR-008).
  case rfNotAllowed(area: TreatmentAreaID)
  /// The preset uses RF on a pen without RF.
  case rfOnMechanicalPen(model: PenModelID)
  /// A preset value lies above a limit.
  case aboveLimit(Quantity, value: Double, limit: Double, source: LimitSource)
  /// A preset value lies below a limit.
  case belowLimit(Quantity, value: Double, limit: Double, source: LimitSource)
  /// A preset's recommended range is inverted or does not contain its default.
  case inconsistentPreset(Quantity, value: Double, min: Double, max: Double)
}

/// The limits a session runs inside: the intersection of pen capability, area hard limits and the
/// preset, with RF energy adjusted for skin type (SR-009, SR-010). Limits are only ever narrowed.
@frozen public struct SessionEnvelope: Sendable, Hashable {
  public var area: TreatmentAreaID
  public var model: PenModelID
  public var pinCount: Int
  /// Hard limits: beyond them a setpoint is refused and a measurement trips.
  public var minDepth: Millimetres
  public var maxDepth: Millimetres
  public var minSpeed: Hertz
  public var maxSpeed: Hertz
  public var rfAllowed: Bool
  public var maxRFEnergyPerPin: Millijoules
  public var maxRFPower: Watts
  public var minPulse: Milliseconds
  public var maxPulse: Milliseconds
  public var rfDoseCap: Millijoules
  public var minImpedance: Ohms
  public var maxImpedance: Ohms
  public var tissueTemperatureCutoff: Celsius
  public var handpieceTemperatureCutoff: Celsius
  /// Soft limits: the preset's recommended ranges, inside the hard limits.
  public var recommendedDepth: SoftRange<Millimetres>
  public var recommendedSpeed: SoftRange<Hertz>
  public var recommendedRFEnergyPerPin: SoftRange<Millijoules>
  public var defaultPulse: Milliseconds

  /// Builds the envelope for `preset` on `model` in `area` for skin of type `skin`.
  ///
  /// Refuses (never clamps) a preset whose default or recommended range lies outside the hard
  /// limits, and RF where the pen or the area has none.
  public static func build(
    model: PenModelID, area: TreatmentAreaID, preset: PresetLimits, skin: FitzpatrickType
  ) throws(EnvelopeError) -> SessionEnvelope {
    guard let areaLimits = TreatmentAreaLimits.of(area) else { throw .noArea }
    let pen = PenCapability.of(model)
    try checkNumbers(preset)
    if preset.usesRF {
      guard pen.hasRF else { throw .rfOnMechanicalPen(model: model) }
      guard areaLimits.rfAllowed else { throw .rfNotAllowed(area: area) }
    }
    let rfAllowed = pen.hasRF && areaLimits.rfAllowed
    let areaDepth = rfAllowed ? areaLimits.maxRFDepth : areaLimits.maxDepth
    // Intersection: the smallest maximum and the largest minimum, each remembered with its source.
    let (maxDepth, maxDepthSource) =
      pen.maxDepth <= areaDepth
      ? (pen.maxDepth, LimitSource.penModel(model)) : (areaDepth, .area(area))
    let (maxSpeed, maxSpeedSource) =
      pen.maxSpeed <= areaLimits.maxSpeed
      ? (pen.maxSpeed, LimitSource.penModel(model)) : (areaLimits.maxSpeed, .area(area))
    var maxEnergy = Millijoules.zero
    var maxEnergySource = LimitSource.area(area)
    if rfAllowed {
      maxEnergy = pen.maxRFEnergyPerPin
      maxEnergySource = .penModel(model)
      if areaLimits.maxRFEnergyPerPin < maxEnergy {
        maxEnergy = areaLimits.maxRFEnergyPerPin
        maxEnergySource = .area(area)
      }
      let scaled = maxEnergy * skin.rfEnergyFactor
      if scaled < maxEnergy {
        maxEnergy = scaled
        maxEnergySource = .skinType(skin)
      }
      if skin.rawValue > FitzpatrickType.typeIV.rawValue
        && FitzpatrickType.maxEnergyPerPinAboveTypeIV < maxEnergy
      {
        maxEnergy = FitzpatrickType.maxEnergyPerPinAboveTypeIV
        maxEnergySource = .skinType(skin)
      }
    }
    try within(
      .depth, preset.depth, min: pen.minDepth, minSource: .penModel(model), max: maxDepth,
      maxSource: maxDepthSource)
    try within(
      .speed, preset.speed, min: pen.minSpeed, minSource: .penModel(model), max: maxSpeed,
      maxSource: maxSpeedSource)
    if preset.usesRF {
      try within(
        .rfEnergyPerPin, preset.rfEnergyPerPin, min: .zero, minSource: .penModel(model),
        max: maxEnergy,
        maxSource: maxEnergySource)
      if preset.rfPulseDuration < pen.minPulse {
        throw .belowLimit(
          .rfPulseDuration, value: preset.rfPulseDuration.value, limit: pen.minPulse.value,
          source: .penModel(model))
      }
      if preset.rfPulseDuration > pen.maxPulse {
        throw .aboveLimit(
          .rfPulseDuration, value: preset.rfPulseDuration.value, limit: pen.maxPulse.value,
          source: .penModel(model))
      }
    }
    var doseCap = rfAllowed ? areaLimits.rfDoseCap : .zero
    if let presetCap = preset.rfDoseCap {
      if presetCap > doseCap {
        throw .aboveLimit(
          .rfDoseCap, value: presetCap.value, limit: doseCap.value, source: .area(area))
      }
      doseCap = presetCap
    }
    var tissueCutoff = pen.tissueTemperatureCutoff
    if let presetCutoff = preset.tissueTemperatureCutoff, pen.hasRF {
      if presetCutoff > pen.maxTissueTemperatureCutoff {
        throw .aboveLimit(
          .tissueTemperature, value: presetCutoff.value,
          limit: pen.maxTissueTemperatureCutoff.value,
          source: .penModel(model))
      }
      if presetCutoff < tissueCutoff { tissueCutoff = presetCutoff }
    }
    return SessionEnvelope(
      area: area, model: model, pinCount: pen.pinCount, minDepth: pen.minDepth, maxDepth: maxDepth,
      minSpeed: pen.minSpeed, maxSpeed: maxSpeed, rfAllowed: rfAllowed,
      maxRFEnergyPerPin: maxEnergy,
      maxRFPower: pen.maxRFPower, minPulse: pen.minPulse, maxPulse: pen.maxPulse,
      rfDoseCap: doseCap,
      minImpedance: pen.minImpedance, maxImpedance: pen.maxImpedance,
      tissueTemperatureCutoff: tissueCutoff,
      handpieceTemperatureCutoff: pen.handpieceTemperatureCutoff,
      recommendedDepth: preset.depth, recommendedSpeed: preset.speed,
      recommendedRFEnergyPerPin: preset.usesRF ? preset.rfEnergyPerPin : .exactly(.zero),
      defaultPulse: preset.usesRF ? preset.rfPulseDuration : .zero)
  }

  /// The envelope a pen accepts from the wire: the host's values, refused when any lies beyond
  /// the pen's own model capability or its own copy of the area's hard limits (SR-009, SR-027).
  /// Soft ranges are the host's business; the pen keeps only hard limits.
  public static func fromWire(_ m: SetSessionEnvelope, model: PenModelID) throws(EnvelopeError)
    -> SessionEnvelope
  {
    guard let areaLimits = TreatmentAreaLimits.of(m.area) else { throw .noArea }
    let pen = PenCapability.of(model)
    let rfAllowed = pen.hasRF && areaLimits.rfAllowed
    if m.rfAllowed && !rfAllowed {
      if !pen.hasRF { throw .rfOnMechanicalPen(model: model) }
      throw .rfNotAllowed(area: m.area)
    }
    let areaDepth = rfAllowed ? areaLimits.maxRFDepth : areaLimits.maxDepth
    try atMost(.depth, m.maxDepth, pen.maxDepth, .penModel(model))
    try atMost(.depth, m.maxDepth, areaDepth, .area(m.area))
    try atMost(.speed, m.maxSpeed, pen.maxSpeed, .penModel(model))
    try atMost(.speed, m.maxSpeed, areaLimits.maxSpeed, .area(m.area))
    if m.rfAllowed {
      try atMost(.rfEnergyPerPin, m.maxRfEnergyPerPin, pen.maxRFEnergyPerPin, .penModel(model))
      try atMost(.rfEnergyPerPin, m.maxRfEnergyPerPin, areaLimits.maxRFEnergyPerPin, .area(m.area))
      try atMost(.rfDoseCap, m.rfDoseCap, areaLimits.rfDoseCap, .area(m.area))
      try atMost(
        .tissueTemperature, m.tissueTemperatureCutoff, pen.maxTissueTemperatureCutoff,
        .penModel(model))
      if m.minImpedance < pen.minImpedance {
        throw .belowLimit(
          .impedance, value: m.minImpedance.value, limit: pen.minImpedance.value,
          source: .penModel(model))
      }
      try atMost(.impedance, m.maxImpedance, pen.maxImpedance, .penModel(model))
    }
    if m.maxDepth < pen.minDepth {
      throw .belowLimit(
        .depth, value: m.maxDepth.value, limit: pen.minDepth.value, source: .penModel(model))
    }
    let energy = m.rfAllowed ? m.maxRfEnergyPerPin : .zero
    return SessionEnvelope(
      area: m.area, model: model, pinCount: pen.pinCount, minDepth: pen.minDepth,
      maxDepth: m.maxDepth,
      minSpeed: pen.minSpeed, maxSpeed: m.maxSpeed, rfAllowed: m.rfAllowed,
      maxRFEnergyPerPin: energy,
      maxRFPower: pen.maxRFPower, minPulse: pen.minPulse, maxPulse: pen.maxPulse,
      rfDoseCap: m.rfAllowed ? m.rfDoseCap : .zero,
      minImpedance: m.rfAllowed ? m.minImpedance : pen.minImpedance,
      maxImpedance: m.rfAllowed ? m.maxImpedance : pen.maxImpedance,
      tissueTemperatureCutoff: m.rfAllowed
        ? m.tissueTemperatureCutoff : pen.tissueTemperatureCutoff,
      handpieceTemperatureCutoff: pen.handpieceTemperatureCutoff,
      // Until the host sets parameters, the pen starts at its gentlest: shallowest, slowest, no RF.
      recommendedDepth: SoftRange(pen.minDepth, min: pen.minDepth, max: m.maxDepth),
      recommendedSpeed: SoftRange(pen.minSpeed, min: pen.minSpeed, max: m.maxSpeed),
      recommendedRFEnergyPerPin: SoftRange(.zero, min: .zero, max: energy),
      defaultPulse: pen.maxPulse)
  }

  /// A stand-in for "no envelope": every limit zero, nothing allowed.
  public static let placeholder = SessionEnvelope(
    area: .none, model: .mn100, pinCount: 1, minDepth: .zero, maxDepth: .zero, minSpeed: .zero,
    maxSpeed: .zero, rfAllowed: false, maxRFEnergyPerPin: .zero, maxRFPower: .zero, minPulse: .zero,
    maxPulse: .zero, rfDoseCap: .zero, minImpedance: .zero, maxImpedance: .zero,
    tissueTemperatureCutoff: .zero, handpieceTemperatureCutoff: .zero,
    recommendedDepth: .exactly(.zero),
    recommendedSpeed: .exactly(.zero), recommendedRFEnergyPerPin: .exactly(.zero),
    defaultPulse: .zero)

  /// The envelope as the set_session_envelope message that carries it to a pen.
  public func wireMessage(sessionID: UInt32) -> SetSessionEnvelope {
    SetSessionEnvelope(
      sessionId: sessionID, area: area, maxDepth: maxDepth, maxSpeed: maxSpeed,
      rfAllowed: rfAllowed,
      maxRfEnergyPerPin: maxRFEnergyPerPin, rfDoseCap: rfDoseCap, minImpedance: minImpedance,
      maxImpedance: maxImpedance,
      // A pen without RF has no tissue cut-off (zero), which the field (30–45 °C) cannot carry;
      // without RF the pen ignores the field, so it carries the lowest, strictest cut-off.
      tissueTemperatureCutoff: rfAllowed || tissueTemperatureCutoff >= Self.lowestWireCutoff
        ? tissueTemperatureCutoff : Self.lowestWireCutoff)
  }

  /// The lowest tissue cut-off `set_session_envelope` can carry.
  static let lowestWireCutoff = Celsius(30)

  @inlinable static func checkNumbers(_ p: PresetLimits) throws(EnvelopeError) {
    if !(p.depth.value.isFinite && p.depth.min.isFinite && p.depth.max.isFinite) {
      throw .notANumber(.depth)
    }
    if !(p.speed.value.isFinite && p.speed.min.isFinite && p.speed.max.isFinite) {
      throw .notANumber(.speed)
    }
    if !(p.rfEnergyPerPin.value.isFinite && p.rfEnergyPerPin.min.isFinite
      && p.rfEnergyPerPin.max.isFinite)
    {
      throw .notANumber(.rfEnergyPerPin)
    }
    if !p.rfPulseDuration.isFinite { throw .notANumber(.rfPulseDuration) }
    if let cap = p.rfDoseCap, !(cap.isFinite && cap.value >= 0) { throw .notANumber(.rfDoseCap) }
    if let t = p.tissueTemperatureCutoff, !t.isFinite { throw .notANumber(.tissueTemperature) }
  }

  @inlinable static func within<Q: PhysicalQuantity>(
    _ quantity: Quantity, _ range: SoftRange<Q>, min: Q, minSource: LimitSource, max: Q,
    maxSource: LimitSource
  ) throws(EnvelopeError) {
    // The default first, so that the message names the value the preset would actually use.
    if range.value > max {
      throw .aboveLimit(quantity, value: range.value.value, limit: max.value, source: maxSource)
    }
    if range.value < min {
      throw .belowLimit(quantity, value: range.value.value, limit: min.value, source: minSource)
    }
    guard range.min <= range.value && range.value <= range.max else {
      throw .inconsistentPreset(
        quantity, value: range.value.value, min: range.min.value, max: range.max.value)
    }
    // Then the recommended range, which must fit the hard limits too.
    if range.max > max {
      throw .aboveLimit(quantity, value: range.max.value, limit: max.value, source: maxSource)
    }
    if range.min < min {
      throw .belowLimit(quantity, value: range.min.value, limit: min.value, source: minSource)
    }
  }

  @inlinable static func atMost<Q: PhysicalQuantity>(
    _ quantity: Quantity, _ value: Q, _ limit: Q, _ source: LimitSource
  ) throws(EnvelopeError) {
    guard value <= limit else {
      throw .aboveLimit(quantity, value: value.value, limit: limit.value, source: source)
    }
  }
}
