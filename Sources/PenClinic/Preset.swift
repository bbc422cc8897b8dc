public import Foundation
public import PenSafety
public import PenWire

/// Whether a preset needles only or also delivers RF.
public enum PresetKind: String, Sendable, Hashable, CaseIterable {
  case mechanical
  case rf
}

/// Where a preset came from.
public enum PresetOrigin: Sendable, Hashable {
  /// Shipped with PenControl (Sources/PenClinic/Presets).
  case shipped
  /// A clinic's own file, by path.
  case file(String)
}

/// Values the operator asks for instead of a preset's defaults (penctl --depth/--speed/--rf-energy).
public struct PresetOverrides: Sendable, Hashable {
  public var depth: Millimetres?
  public var speed: Hertz?
  /// RF energy per pin as delivered, i.e. already for this patient's skin type.
  public var rfEnergy: Millijoules?
  /// The operator confirmed values outside the recommended (soft) range. Never reaches past a
  /// hard limit.
  public var confirmed: Bool

  public init(
    depth: Millimetres? = nil, speed: Hertz? = nil, rfEnergy: Millijoules? = nil,
    confirmed: Bool = false
  ) {
    self.depth = depth
    self.speed = speed
    self.rfEnergy = rfEnergy
    self.confirmed = confirmed
  }

  /// No overrides: the preset's defaults.
  public static let none = PresetOverrides()
}

/// A named set of defaults and recommended ranges for one treatment area (Firmware-Specs/presets.md).
public struct Preset: Sendable, Hashable {
  public var id: String
  public var name: String
  public var area: TreatmentAreaID
  public var kind: PresetKind
  /// Defaults and recommended ranges; RF energies as written, i.e. for skin types I-III.
  public var limits: PresetLimits
  public var origin: PresetOrigin
  /// Set on a test patch made by `testPatch(model:skin:)`: the skin type its RF energy is already
  /// scaled for. Nil on presets as written.
  public var testPatchSkin: FitzpatrickType?

  public init(
    id: String, name: String, area: TreatmentAreaID, kind: PresetKind, limits: PresetLimits,
    origin: PresetOrigin, testPatchSkin: FitzpatrickType? = nil
  ) {
    self.id = id
    self.name = name
    self.area = area
    self.kind = kind
    self.limits = limits
    self.origin = origin
    self.testPatchSkin = testPatchSkin
  }

  /// True for a test patch made by `testPatch(model:skin:)`.
  public var isTestPatch: Bool { testPatchSkin != nil }

  /// The lowest tissue temperature cut-off a preset may set (clinical.md: adjustable 35-43 degC).
  public static let minTissueTemperatureCutoff = Celsius(35)
  /// A test patch may deliver at most this many stamps' worth of RF (conservative choice).
  public static let testPatchStamps = 10

  /// The preset's ranges for skin of type `skin`: RF energies (written for types I-III) scaled by
  /// the factor in treatment-areas.json fitzpatrick_rf_scale (SR-010), so that every shipped RF
  /// preset builds for every skin type with its recommendations as far inside the scaled limit as
  /// they are inside the unscaled one.
  public func limits(for skin: FitzpatrickType) -> PresetLimits {
    var out = limits
    if kind == .rf && testPatchSkin == nil {
      out.rfEnergyPerPin = Self.scaled(limits.rfEnergyPerPin, for: skin)
    }
    return out
  }

  static func scaled(_ r: SoftRange<Millijoules>, for skin: FitzpatrickType) -> SoftRange<
    Millijoules
  > {
    let f = skin.rfEnergyFactor
    return SoftRange(r.value * f, min: r.min * f, max: r.max * f)
  }

  /// The session envelope for this preset on `model` for skin of type `skin`, with the operator's
  /// overrides. An override inside the recommended range becomes the default; outside it but
  /// inside the hard limits it needs `overrides.confirmed` (and then widens the recommended range
  /// to reach it); beyond a hard limit it is refused, naming the limit and its source.
  public func envelope(
    model: PenModelID, skin: FitzpatrickType, overrides: PresetOverrides = .none
  ) throws(PresetRefusal) -> SessionEnvelope {
    let pen = PenCapability.of(model)
    switch (kind, pen.hasRF) {
    case (.rf, false): throw .rfOnMechanicalPen(preset: id, area: area, model: model)
    case (.mechanical, true): throw .mechanicalPresetOnRFPen(preset: id, area: area, model: model)
    default: break
    }
    if let prepared = testPatchSkin, prepared != skin {
      throw .testPatchForOtherSkin(preset: id, preparedFor: prepared, requested: skin)
    }
    var limits = limits(for: skin)
    _ = try build(limits, model: model, skin: skin)

    if let depth = overrides.depth {
      limits.depth = try apply(
        .depth, depth, to: limits.depth, in: limits, model: model, skin: skin,
        confirmed: overrides.confirmed
      ) { $0.depth = $1 }
    }
    if let speed = overrides.speed {
      limits.speed = try apply(
        .speed, speed, to: limits.speed, in: limits, model: model, skin: skin,
        confirmed: overrides.confirmed
      ) { $0.speed = $1 }
    }
    if let energy = overrides.rfEnergy {
      guard kind == .rf else { throw .overrideNotApplicable(.rfEnergyPerPin, preset: id) }
      limits.rfEnergyPerPin = try apply(
        .rfEnergyPerPin, energy, to: limits.rfEnergyPerPin, in: limits, model: model, skin: skin,
        confirmed: overrides.confirmed
      ) { $0.rfEnergyPerPin = $1 }
    }
    return try build(limits, model: model, skin: skin)
  }

  /// Conservative settings for a test patch (Firmware-Specs/presets.md "Test patch"): the
  /// recommended minimum depth and speed, RF at the recommended minimum energy scaled for `skin`,
  /// and an RF dose cap of `testPatchStamps` stamps at that energy on `model`'s pins.
  public func testPatch(model: PenModelID, skin: FitzpatrickType) -> Preset {
    var patch = self
    patch.id = "\(id)-test-patch"
    patch.name = "\(name) (test patch)"
    patch.testPatchSkin = skin
    let scaled = limits(for: skin)
    patch.limits.depth = .exactly(scaled.depth.min)
    patch.limits.speed = .exactly(scaled.speed.min)
    if kind == .rf {
      let energy = scaled.rfEnergyPerPin.min
      patch.limits.rfEnergyPerPin = .exactly(energy)
      var cap = energy * Double(PenCapability.of(model).pinCount * Self.testPatchStamps)
      if let presetCap = limits.rfDoseCap, presetCap < cap { cap = presetCap }
      if let areaCap = TreatmentAreaLimits.of(area)?.rfDoseCap, areaCap < cap { cap = areaCap }
      patch.limits.rfDoseCap = cap
    }
    return patch
  }

  private func apply<Q: PhysicalQuantity>(
    _ quantity: Quantity, _ value: Q, to range: SoftRange<Q>, in limits: PresetLimits,
    model: PenModelID, skin: FitzpatrickType, confirmed: Bool,
    _ set: (inout PresetLimits, SoftRange<Q>) -> Void
  ) throws(PresetRefusal) -> SoftRange<Q> {
    guard value.isFinite, value.value > 0 else {
      throw .invalidOverride(quantity, value: value.value)
    }
    // Hard limits first: build with the recommended range widened to reach the value, so that
    // PenSafety names the limit and its source exactly as it would for a preset.
    let widened = SoftRange(
      value, min: value < range.min ? value : range.min, max: value > range.max ? value : range.max)
    var trial = limits
    set(&trial, widened)
    _ = try build(trial, model: model, skin: skin)
    if value < range.min || value > range.max {
      guard confirmed else {
        throw .outsideRecommended(
          quantity, value: value.value, min: range.min.value, max: range.max.value, preset: id)
      }
      return widened
    }
    return SoftRange(value, min: range.min, max: range.max)
  }

  private func build(_ limits: PresetLimits, model: PenModelID, skin: FitzpatrickType)
    throws(PresetRefusal) -> SessionEnvelope
  {
    let envelope: SessionEnvelope
    do {
      envelope = try SessionEnvelope.build(model: model, area: area, preset: limits, skin: skin)
    } catch {
      throw PresetRefusal(error, preset: id, area: area)
    }
    // PenSafety bounds energy and pulse separately; their quotient is the pen's RF power.
    if kind == .rf && limits.rfPulseDuration.value > 0 {
      let pen = PenCapability.of(model)
      let watts =
        limits.rfEnergyPerPin.max.value * Double(pen.pinCount) / limits.rfPulseDuration.value
      if watts > pen.maxRFPower.value {
        throw .aboveLimit(
          .rfPower, value: watts, limit: pen.maxRFPower.value, source: .penModel(model), area: area)
      }
    }
    return envelope
  }
}

/// Why a preset cannot run as asked. Every case names both sides: the value and the limit, or the
/// preset and the pen, and what to do.
public enum PresetRefusal: Error, Sendable, Hashable, CustomStringConvertible {
  /// An RF preset on a pen without an RF generator (SR-008).
  case rfOnMechanicalPen(preset: String, area: TreatmentAreaID, model: PenModelID)
  /// A mechanical preset (tens of Hz) on an RF handpiece that stamps at a few Hz.
  case mechanicalPresetOnRFPen(preset: String, area: TreatmentAreaID, model: PenModelID)
  /// RF where the area allows none (SR-008).
  case rfNotAllowed(preset: String, area: TreatmentAreaID)
  /// A value above a hard limit (SR-009, SR-010).
  case aboveLimit(
    Quantity, value: Double, limit: Double, source: LimitSource, area: TreatmentAreaID)
  /// A value below what the pen can do.
  case belowLimit(
    Quantity, value: Double, limit: Double, source: LimitSource, area: TreatmentAreaID)
  /// An override outside the recommended range, not confirmed.
  case outsideRecommended(Quantity, value: Double, min: Double, max: Double, preset: String)
  /// An override that is not a positive number.
  case invalidOverride(Quantity, value: Double)
  /// An override for something the preset does not use (RF energy on a mechanical preset).
  case overrideNotApplicable(Quantity, preset: String)
  /// A recommended range that does not contain its default.
  case inconsistentPreset(Quantity, value: Double, min: Double, max: Double, preset: String)
  /// A preset value that is not a number.
  case notANumber(Quantity, preset: String)
  /// A preset with no area.
  case noArea(preset: String)
  /// A test patch prepared for one skin type used for another.
  case testPatchForOtherSkin(
    preset: String, preparedFor: FitzpatrickType, requested: FitzpatrickType)

  /// PenSafety's refusal, said in the clinic's words.
  public init(_ error: EnvelopeError, preset: String, area: TreatmentAreaID) {
    switch error {
    case .noArea: self = .noArea(preset: preset)
    case .notANumber(let q): self = .notANumber(q, preset: preset)
    case .rfNotAllowed(let area): self = .rfNotAllowed(preset: preset, area: area)
    case .rfOnMechanicalPen(let model):
      self = .rfOnMechanicalPen(preset: preset, area: area, model: model)
    case .aboveLimit(let q, let value, let limit, let source):
      self = .aboveLimit(q, value: value, limit: limit, source: source, area: area)
    case .belowLimit(let q, let value, let limit, let source):
      self = .belowLimit(q, value: value, limit: limit, source: source, area: area)
    case .inconsistentPreset(let q, let value, let min, let max):
      self = .inconsistentPreset(q, value: value, min: min, max: max, preset: preset)
    }
  }

  public var description: String {
    switch self {
    case .rfOnMechanicalPen(let preset, let area, let model):
      return
        "preset \(preset) uses RF, but pen model \(model.spelling) has no RF generator: load \(area.spelling)-mechanical, or use an RF pen"
    case .mechanicalPresetOnRFPen(let preset, let area, let model):
      let pen = PenCapability.of(model)
      let rate =
        "\(PresetText.number(pen.minSpeed.value))-\(PresetText.number(pen.maxSpeed.value)) Hz"
      let instead =
        TreatmentAreaLimits.of(area)?.rfAllowed == true
        ? "load \(area.spelling)-rf, or use a mechanical pen"
        : "\(area.spelling) allows no RF, so use a mechanical pen"
      return
        "preset \(preset) is for a mechanical pen, but pen model \(model.spelling) is an RF handpiece that stamps at \(rate): \(instead)"
    case .rfNotAllowed(let preset, let area):
      return
        "preset \(preset) uses RF, but \(area.spelling) does not allow RF (treatment-areas.json): load \(area.spelling)-mechanical"
    case .aboveLimit(let q, let value, let limit, let source, let area):
      let (what, unit, scale) = Self.words(q)
      let v = "\(PresetText.number(value * scale)) \(unit)"
      let l = "\(PresetText.number(limit * scale)) \(unit)"
      switch source {
      case .area:
        return
          "\(what) \(v) for \(area.spelling) is above the area's hard limit \(l) (treatment-areas.json); choose at most \(l)"
      case .penModel(let model):
        return
          "\(what) \(v) is beyond pen model \(model.spelling)'s maximum \(l) (pen-models.json); choose at most \(l)"
      case .skinType(let skin):
        return
          "\(what) \(v) is above the limit \(l) for Fitzpatrick type \(skin.roman) (treatment-areas.json fitzpatrick_rf_scale); choose at most \(l)"
      case .preset:
        return "\(what) \(v) is above the preset's maximum \(l); choose at most \(l)"
      }
    case .belowLimit(let q, let value, let limit, let source, _):
      let (what, unit, scale) = Self.words(q)
      let v = "\(PresetText.number(value * scale)) \(unit)"
      let l = "\(PresetText.number(limit * scale)) \(unit)"
      return
        "\(what) \(v) is below \(PresetText.limitPhrase(source, upper: false)) \(l) (\(PresetText.limitFile(source))); choose at least \(l)"
    case .outsideRecommended(let q, let value, let min, let max, let preset):
      let (what, unit, scale) = Self.words(q)
      return
        "\(what) \(PresetText.number(value * scale)) \(unit) is outside preset \(preset)'s recommended range \(PresetText.number(min * scale))-\(PresetText.number(max * scale)) \(unit) but inside the hard limits: confirm it to proceed, or choose a value in the range"
    case .invalidOverride(let q, let value):
      let (what, unit, scale) = Self.words(q)
      return "\(what) \(PresetText.number(value * scale)) \(unit) is not a positive number"
    case .overrideNotApplicable(let q, let preset):
      let (what, _, _) = Self.words(q)
      return
        "preset \(preset) is mechanical and uses no \(what); drop that value or load an RF preset"
    case .inconsistentPreset(let q, let value, let min, let max, let preset):
      let (what, unit, scale) = Self.words(q)
      return
        "preset \(preset): \(what) default \(PresetText.number(value * scale)) \(unit) is outside its recommended range \(PresetText.number(min * scale))-\(PresetText.number(max * scale)) \(unit); fix the preset file"
    case .notANumber(let q, let preset):
      return "preset \(preset): \(Self.words(q).0) is not a number; fix the preset file"
    case .noArea(let preset):
      return "preset \(preset) names no treatment area; fix the preset file"
    case .testPatchForOtherSkin(let preset, let preparedFor, let requested):
      return
        "test patch \(preset) was prepared for Fitzpatrick type \(preparedFor.roman), not type \(requested.roman): prepare it again for type \(requested.roman)"
    }
  }

  /// A quantity's name, unit and the factor from PenSafety's unit to that unit.
  static func words(_ q: Quantity) -> (String, String, Double) {
    switch q {
    case .depth: ("depth", "mm", 1)
    case .speed: ("speed", "Hz", 1)
    case .rfEnergyPerPin: ("RF energy", "mJ/pin", 1)
    case .rfPulseDuration: ("RF pulse", "ms", 1)
    case .rfDoseCap: ("RF dose cap", "J", 0.001)
    case .impedance: ("impedance", "ohm", 1)
    case .tissueTemperature: ("tissue temperature cut-off", "degC", 1)
    case .handpieceTemperature: ("handpiece temperature cut-off", "degC", 1)
    case .rfPower: ("RF power", "W", 1)
    }
  }
}

/// The presets a clinic can choose from: the shipped ones and any it adds.
public struct PresetLibrary: Sendable {
  /// Every preset, shipped first, each file's in file order.
  public private(set) var presets: [Preset]
  /// Where each id was defined, for duplicate-id messages.
  private var definedAt: [String: (file: String, line: Int)]

  /// An empty library.
  public init() {
    presets = []
    definedAt = [:]
  }

  /// The presets shipped with PenControl, one file per area in Sources/PenClinic/Presets.
  public static func shipped() throws(PresetFileError) -> PresetLibrary {
    guard let directory = Bundle.module.url(forResource: "Presets", withExtension: nil) else {
      throw PresetFileError(issues: [
        PresetFileIssue(
          file: "Presets", line: 1, column: 1, field: "(file)",
          kind: .unreadable("the shipped Presets folder is missing from the PenClinic bundle"))
      ])
    }
    return try PresetLibrary().adding(directory: directory, origin: .shipped, prefix: "Presets/")
  }

  /// This library with the presets of a clinic's file, or of every .yaml/.yml file in a
  /// directory. Each file is checked against the hard limits (Firmware-Specs/presets.md); an id
  /// already in the library is refused (a shipped id always means the shipped values). Any
  /// problem in any file refuses the whole call, and nothing is added.
  public func adding(contentsOf url: URL) throws(PresetFileError) -> PresetLibrary {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory),
      isDirectory.boolValue
    {
      return try adding(directory: url, origin: nil, prefix: nil)
    }
    return try adding(files: [url], origin: nil, prefix: nil)
  }

  /// The preset with this id.
  public func preset(id: String) -> Preset? {
    presets.first { $0.id == id }
  }

  /// The presets for one area, mechanical first.
  public func presets(for area: TreatmentAreaID) -> [Preset] {
    let here = presets.filter { $0.area == area }
    return here.filter { $0.kind == .mechanical } + here.filter { $0.kind == .rf }
  }

  /// The preset a pen of `model` starts with on `area`: a shipped one first, of the kind the pen
  /// is (RF on an RF pen, mechanical on a mechanical one); nil when no preset fits, e.g. an RF
  /// handpiece on an area that allows no RF.
  public func defaultPreset(area: TreatmentAreaID, model: PenModelID) -> Preset? {
    let kind: PresetKind = PenCapability.of(model).hasRF ? .rf : .mechanical
    let candidates = presets(for: area).filter { $0.kind == kind }
    return candidates.first { $0.origin == .shipped } ?? candidates.first
  }

  private func adding(directory: URL, origin: PresetOrigin?, prefix: String?)
    throws(PresetFileError) -> PresetLibrary
  {
    let names: [String]
    do {
      names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
    } catch {
      throw PresetFileError(issues: [
        PresetFileIssue(
          file: directory.path, line: 1, column: 1, field: "(file)",
          kind: .unreadable(error.localizedDescription))
      ])
    }
    if names.isEmpty {
      throw PresetFileError(issues: [
        PresetFileIssue(
          file: directory.path, line: 1, column: 1, field: "(file)",
          kind: .unreadable("no .yaml or .yml preset files in this directory"))
      ])
    }
    return try adding(
      files: names.map { directory.appendingPathComponent($0) }, origin: origin, prefix: prefix)
  }

  private func adding(files: [URL], origin: PresetOrigin?, prefix: String?)
    throws(PresetFileError) -> PresetLibrary
  {
    var library = self
    var issues: [PresetFileIssue] = []
    for url in files {
      let name = prefix.map { $0 + url.lastPathComponent } ?? url.path
      let located: [LocatedPreset]
      do {
        located = try PresetFile.loadLocated(
          url, name: name, origin: origin ?? .file(url.path))
      } catch {
        issues += error.issues
        continue
      }
      // Ids are checked across files before anything is added: one clash refuses the file.
      var fileIssues: [PresetFileIssue] = []
      for item in located {
        if let first = library.definedAt[item.preset.id] {
          fileIssues.append(
            PresetFileIssue(
              file: name, line: item.idLine, column: 1,
              field: "presets[\(located.firstIndex { $0.preset.id == item.preset.id }!)].id",
              kind: .duplicateID(item.preset.id, firstFile: first.file, firstLine: first.line)))
        }
      }
      if !fileIssues.isEmpty {
        issues += fileIssues
        continue
      }
      for item in located {
        library.presets.append(item.preset)
        library.definedAt[item.preset.id] = (name, item.idLine)
      }
    }
    if !issues.isEmpty { throw PresetFileError(issues: issues) }
    return library
  }
}
