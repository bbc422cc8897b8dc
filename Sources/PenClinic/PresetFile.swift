public import Foundation
public import PenSafety
public import PenWire
import Yams

/// One problem found in a preset file: where it is (file, line, field path) and what is wrong.
public struct PresetFileIssue: Sendable, Hashable, CustomStringConvertible {
  /// What is wrong.
  public enum Kind: Sendable, Hashable {
    /// The file could not be read at all.
    case unreadable(String)
    /// The file is larger than `PresetFile.maxBytes`.
    case tooLarge(bytes: Int, limit: Int)
    /// The text is not valid YAML (or not UTF-8, or more than one document).
    case syntax(String)
    /// The file uses YAML anchors or aliases, which preset files may not (they can expand without bound).
    case anchorsNotAllowed(String)
    /// The file has more nodes or presets than any preset file needs.
    case tooComplex(String)
    /// A required field is absent.
    case missingField
    /// A field holds the wrong kind of value.
    case wrongType(expected: String, found: String)
    /// A field this format does not define (typos are never ignored).
    case unknownField(String, suggestion: String?)
    /// A text field or list is empty.
    case empty
    /// A preset id that is not lower-case letters, digits, '-' and '_'.
    case invalidIdentifier(String)
    /// A preset id that another preset already uses.
    case duplicateID(String, firstFile: String, firstLine: Int)
    /// An area that is not in treatment-areas.json.
    case unknownArea(String)
    /// A kind other than mechanical or rf.
    case unknownKind(String)
    /// NaN or infinity.
    case notFinite(String)
    /// Zero or negative where only a positive quantity makes sense.
    case notPositive(Double, unit: String)
    /// min > max, or the default outside min...max.
    case inconsistentRange(default: Double, min: Double, max: Double, unit: String)
    /// A value above a hard limit of the area or of the pen model the preset runs on.
    case aboveHardLimit(value: Double, limit: Double, unit: String, source: LimitSource)
    /// A value below what the pen model the preset runs on can do.
    case belowHardLimit(value: Double, limit: Double, unit: String, source: LimitSource)
    /// RF power (energy per pin x pins / pulse) above the pen model's maximum.
    case rfPowerAboveLimit(watts: Double, limit: Double, model: PenModelID)
    /// An RF preset for an area where RF is not allowed (SR-008).
    case rfNotAllowed(area: TreatmentAreaID)
    /// An RF field on a mechanical preset.
    case rfFieldOnMechanical
    /// The preset passed every field check but the session envelope still refused it.
    case envelopeRefused(String)
  }

  /// The file as it was named to the loader (a shipped file as `Presets/<name>.yaml`).
  public var file: String
  /// 1-based line of the offending node (1 when the whole file is at fault).
  public var line: Int
  /// 1-based column of the offending node.
  public var column: Int
  /// The field path, e.g. `presets[1].depth_mm.max`; `(file)` when the whole file is at fault.
  public var field: String
  public var kind: Kind

  public init(file: String, line: Int, column: Int, field: String, kind: Kind) {
    self.file = file
    self.line = line
    self.column = column
    self.field = field
    self.kind = kind
  }

  /// `forehead.yaml:12: presets[1].depth_mm.max: 3.0 mm is above ...; lower it`.
  public var description: String { "\(file):\(line): \(field): \(message)" }

  /// What is wrong and what to do, without the location.
  public var message: String {
    switch kind {
    case .unreadable(let why): return "cannot read the file: \(why)"
    case .tooLarge(let bytes, let limit):
      return "the file is \(bytes) bytes, above the \(limit)-byte limit for a preset file; split it"
    case .syntax(let why): return "not valid YAML: \(why)"
    case .anchorsNotAllowed(let token):
      return
        "YAML anchors and aliases (\(token)) are not allowed in preset files; write each value out (quote the text if it is a name)"
    case .tooComplex(let why): return why
    case .missingField: return "missing; add it"
    case .wrongType(let expected, let found): return "expected \(expected), found \(found)"
    case .unknownField(let name, let suggestion):
      if let suggestion { return "unknown field '\(name)'; did you mean '\(suggestion)'?" }
      return "unknown field '\(name)'; remove it (see Firmware-Specs/presets.md for the fields)"
    case .empty: return "empty; give a value"
    case .invalidIdentifier(let id):
      return
        "id '\(id)' must be 1-64 lower-case letters, digits, '-' or '_', starting with a letter or digit"
    case .duplicateID(let id, let firstFile, let firstLine):
      return "id '\(id)' is already used at \(firstFile):\(firstLine); give this preset another id"
    case .unknownArea(let name):
      return
        "unknown area '\(name)'; use one of \(TreatmentAreaID.presetAreas.map(\.spelling).joined(separator: ", ")) (treatment-areas.json)"
    case .unknownKind(let name): return "unknown kind '\(name)'; use mechanical or rf"
    case .notFinite(let text): return "\(text) is not a finite number; give a number"
    case .notPositive(let value, let unit):
      return "\(PresetText.number(value)) \(unit) must be greater than 0"
    case .inconsistentRange(let value, let min, let max, let unit):
      if min > max {
        return
          "min \(PresetText.number(min)) \(unit) is above max \(PresetText.number(max)) \(unit); swap them"
      }
      return
        "default \(PresetText.number(value)) \(unit) is outside min...max \(PresetText.number(min))-\(PresetText.number(max)) \(unit); move it inside"
    case .aboveHardLimit(let value, let limit, let unit, let source):
      return
        "\(PresetText.number(value)) \(unit) is above \(PresetText.limitPhrase(source, upper: true)) \(PresetText.number(limit)) \(unit) (\(PresetText.limitFile(source))); lower it"
    case .belowHardLimit(let value, let limit, let unit, let source):
      return
        "\(PresetText.number(value)) \(unit) is below \(PresetText.limitPhrase(source, upper: false)) \(PresetText.number(limit)) \(unit) (\(PresetText.limitFile(source))); raise it"
    case .rfPowerAboveLimit(let watts, let limit, let model):
      return
        "RF power at the maximum energy is \(PresetText.number(watts)) W, above pen model \(model.spelling)'s maximum \(PresetText.number(limit)) W (pen-models.json); lengthen rf_pulse_ms or lower rf_energy_per_pin_mj.max"
    case .rfNotAllowed(let area):
      return
        "\(area.spelling) does not allow RF (treatment-areas.json rf_allowed: false); make this preset mechanical"
    case .rfFieldOnMechanical:
      return "RF field on a mechanical preset; remove it, or make the preset kind: rf"
    case .envelopeRefused(let why): return "the session envelope refuses this preset: \(why)"
    }
  }
}

/// A preset file was refused: every problem found in it. A refused file loads nothing.
public struct PresetFileError: Error, Sendable, Hashable, CustomStringConvertible {
  /// Every problem found, in file order; never empty.
  public var issues: [PresetFileIssue]

  public init(issues: [PresetFileIssue]) {
    precondition(!issues.isEmpty, "a PresetFileError needs at least one issue")
    self.issues = issues
  }

  /// The file of the first problem.
  public var file: String { issues[0].file }
  /// The line of the first problem.
  public var line: Int { issues[0].line }
  /// The field path of the first problem.
  public var field: String { issues[0].field }
  /// What the first problem is.
  public var kind: PresetFileIssue.Kind { issues[0].kind }

  /// One line per problem, each `file:line: field: message`.
  public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// The preset file format (Firmware-Specs/presets.md): reading and checking one file.
public enum PresetFile {
  /// No preset file needs more than this; larger files are refused unread.
  public static let maxBytes = 1 << 20
  /// No preset file needs more presets than this.
  public static let maxPresets = 256
  /// No preset file needs more YAML nodes than this (a preset is about 25).
  static let maxNodes = 20_000

  /// Reads and checks the preset file at `url`. Throws every problem found; loads nothing then.
  public static func load(_ url: URL, name: String? = nil, origin: PresetOrigin)
    throws(PresetFileError) -> [Preset]
  {
    try loadLocated(url, name: name, origin: origin).map(\.preset)
  }

  /// Checks preset file text. `file` names it in every problem.
  public static func decode(_ data: Data, file: String, origin: PresetOrigin)
    throws(PresetFileError) -> [Preset]
  {
    try decodeLocated(data, file: file, origin: origin).map(\.preset)
  }

  static func loadLocated(_ url: URL, name: String?, origin: PresetOrigin)
    throws(PresetFileError) -> [LocatedPreset]
  {
    let file = name ?? url.path
    let whole = PresetFileIssue(file: file, line: 1, column: 1, field: "(file)", kind: .empty)
    let size: Int
    do {
      let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
      size = (attributes[.size] as? NSNumber)?.intValue ?? 0
    } catch {
      var issue = whole
      issue.kind = .unreadable(error.localizedDescription)
      throw PresetFileError(issues: [issue])
    }
    // Refused before reading, so an enormous file costs nothing.
    if size > maxBytes {
      var issue = whole
      issue.kind = .tooLarge(bytes: size, limit: maxBytes)
      throw PresetFileError(issues: [issue])
    }
    let data: Data
    do {
      data = try Data(contentsOf: url)
    } catch {
      var issue = whole
      issue.kind = .unreadable(error.localizedDescription)
      throw PresetFileError(issues: [issue])
    }
    return try decodeLocated(data, file: file, origin: origin)
  }

  static func decodeLocated(_ data: Data, file: String, origin: PresetOrigin)
    throws(PresetFileError) -> [LocatedPreset]
  {
    var decoder = PresetFileDecoder(file: file, origin: origin)
    let presets = decoder.decode(data)
    if !decoder.issues.isEmpty { throw PresetFileError(issues: decoder.issues) }
    return presets
  }
}

/// A decoded preset and where its id stands, for duplicate-id messages across files.
struct LocatedPreset {
  var preset: Preset
  var idLine: Int
}

/// A number read from the file with the place it came from.
private struct Located {
  var value: Double
  var line: Int
  var column: Int
  var field: String
}

/// A default with its recommended range, as read.
private struct LocatedRange {
  var value: Located
  var min: Located
  var max: Located
  var all: [Located] { [value, min, max] }
}

/// Walks the composed YAML tree along the format's schema, collecting every problem.
private struct PresetFileDecoder {
  let file: String
  let origin: PresetOrigin
  var issues: [PresetFileIssue] = []
  var nodesSeen = 0

  static let topFields = ["area", "presets"]
  static let presetFields = [
    "id", "name", "kind", "depth_mm", "speed_hz", "rf_energy_per_pin_mj", "rf_pulse_ms",
    "rf_dose_cap_j", "tissue_temperature_cutoff_c",
  ]
  static let rfFields: Set<String> = [
    "rf_energy_per_pin_mj", "rf_pulse_ms", "rf_dose_cap_j", "tissue_temperature_cutoff_c",
  ]
  static let rangeFields = ["default", "min", "max"]

  init(file: String, origin: PresetOrigin) {
    self.file = file
    self.origin = origin
  }

  mutating func decode(_ data: Data) -> [LocatedPreset] {
    if data.count > PresetFile.maxBytes {
      report(line: 1, column: 1, "(file)", .tooLarge(bytes: data.count, limit: PresetFile.maxBytes))
      return []
    }
    guard let text = String(data: data, encoding: .utf8) else {
      report(line: 1, column: 1, "(file)", .syntax("the file is not UTF-8 text"))
      return []
    }
    // Anchors and aliases are refused before Yams sees the text: Yams expands aliases while
    // composing (and hashes aliased keys), so a small file could otherwise cost exponential time.
    if let (line, column, token) = findAnchorOrAlias(in: text) {
      report(line: line, column: column, "(file)", .anchorsNotAllowed(token))
      return []
    }
    let root: Node?
    do {
      root = try Yams.compose(yaml: text)
    } catch let error as YamlError {
      let (line, column, why) = describe(error, in: text)
      report(line: line, column: column, "(file)", .syntax(why))
      return []
    } catch {
      report(line: 1, column: 1, "(file)", .syntax("\(error)"))
      return []
    }
    guard let root else {
      report(
        line: 1, column: 1, "(file)", .syntax("the file is empty; it needs area: and presets:"))
      return []
    }
    return decodeTop(root)
  }

  // MARK: Schema

  mutating func decodeTop(_ root: Node) -> [LocatedPreset] {
    guard let fields = mapping(root, "(file)", known: Self.topFields) else { return [] }
    var area: TreatmentAreaID?
    if let node = required(fields, "area", in: root, path: "area"),
      let name = string(node, "area")
    {
      if let found = TreatmentAreaID.named(name) {
        area = found
      } else {
        report(node, "area", .unknownArea(name))
      }
    }
    guard let presetsNode = required(fields, "presets", in: root, path: "presets") else {
      return []
    }
    guard case .sequence(let items) = presetsNode else {
      report(
        presetsNode, "presets", .wrongType(expected: "a list of presets", found: kind(presetsNode)))
      return []
    }
    if items.isEmpty {
      report(presetsNode, "presets", .empty)
      return []
    }
    if items.count > PresetFile.maxPresets {
      report(
        presetsNode, "presets",
        .tooComplex("\(items.count) presets, above the limit of \(PresetFile.maxPresets) per file"))
      return []
    }
    var out: [LocatedPreset] = []
    var firstLineOfID: [String: Int] = [:]
    for (index, item) in items.enumerated() {
      let path = "presets[\(index)]"
      guard let preset = decodePreset(item, path: path, area: area) else { continue }
      if let first = firstLineOfID[preset.preset.id] {
        report(
          line: preset.idLine, column: 1, "\(path).id",
          .duplicateID(preset.preset.id, firstFile: file, firstLine: first))
        continue
      }
      firstLineOfID[preset.preset.id] = preset.idLine
      out.append(preset)
    }
    return out
  }

  mutating func decodePreset(_ node: Node, path: String, area: TreatmentAreaID?) -> LocatedPreset? {
    guard let fields = mapping(node, path, known: Self.presetFields) else { return nil }
    let before = issues.count
    var id: String?
    var idLine = line(node)
    if let n = required(fields, "id", in: node, path: "\(path).id"), let s = string(n, "\(path).id")
    {
      idLine = line(n)
      if Self.isValidIdentifier(s) {
        id = s
      } else {
        report(n, "\(path).id", .invalidIdentifier(s))
      }
    }
    var name: String?
    if let n = required(fields, "name", in: node, path: "\(path).name"),
      let s = string(n, "\(path).name")
    {
      if s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
        report(n, "\(path).name", .empty)
      } else {
        name = s
      }
    }
    var kind: PresetKind?
    if let n = required(fields, "kind", in: node, path: "\(path).kind"),
      let s = string(n, "\(path).kind")
    {
      if let k = PresetKind(rawValue: s) {
        kind = k
      } else {
        report(n, "\(path).kind", .unknownKind(s))
      }
      if kind == .rf, let area, TreatmentAreaLimits.of(area)?.rfAllowed != true {
        report(n, "\(path).kind", .rfNotAllowed(area: area))
      }
    }
    let depth = required(fields, "depth_mm", in: node, path: "\(path).depth_mm").flatMap {
      range($0, "\(path).depth_mm", unit: "mm")
    }
    let speed = required(fields, "speed_hz", in: node, path: "\(path).speed_hz").flatMap {
      range($0, "\(path).speed_hz", unit: "Hz")
    }
    var energy: LocatedRange?
    var pulse: Located?
    var doseCap: Located?
    var cutoff: Located?
    if kind == .mechanical {
      for (key, keyNode, _) in fields where Self.rfFields.contains(key) {
        report(keyNode, "\(path).\(key)", .rfFieldOnMechanical)
      }
    } else if kind == .rf {
      energy = required(
        fields, "rf_energy_per_pin_mj", in: node, path: "\(path).rf_energy_per_pin_mj"
      )
      .flatMap { range($0, "\(path).rf_energy_per_pin_mj", unit: "mJ/pin") }
      pulse = required(fields, "rf_pulse_ms", in: node, path: "\(path).rf_pulse_ms").flatMap {
        number($0, "\(path).rf_pulse_ms", unit: "ms")
      }
      doseCap = optional(fields, "rf_dose_cap_j").flatMap {
        number($0, "\(path).rf_dose_cap_j", unit: "J")
      }
      cutoff = optional(fields, "tissue_temperature_cutoff_c").flatMap {
        number($0, "\(path).tissue_temperature_cutoff_c", unit: "degC")
      }
    }
    guard issues.count == before, let id, let name, let kind, let depth, let speed, let area,
      let areaLimits = TreatmentAreaLimits.of(area)
    else { return nil }
    if kind == .rf {
      guard let energy, let pulse else { return nil }
      checkRF(
        depth: depth, speed: speed, energy: energy, pulse: pulse, doseCap: doseCap,
        cutoff: cutoff, area: areaLimits)
    } else {
      checkMechanical(depth: depth, speed: speed, area: areaLimits)
    }
    guard issues.count == before else { return nil }
    let presetLimits = PresetLimits(
      depth: SoftRange(
        Millimetres(depth.value.value), min: Millimetres(depth.min.value),
        max: Millimetres(depth.max.value)),
      speed: SoftRange(
        Hertz(speed.value.value), min: Hertz(speed.min.value), max: Hertz(speed.max.value)),
      rfEnergyPerPin: energy.map {
        SoftRange(
          Millijoules($0.value.value), min: Millijoules($0.min.value),
          max: Millijoules($0.max.value))
      } ?? .exactly(.zero),
      rfPulseDuration: pulse.map { Milliseconds($0.value) } ?? .zero,
      rfDoseCap: doseCap.map { Millijoules($0.value * 1000) },
      tissueTemperatureCutoff: cutoff.map { Celsius($0.value) })
    let preset = Preset(
      id: id, name: name, area: area, kind: kind, limits: presetLimits, origin: origin)
    // The last word is PenSafety's: every loaded preset must build an envelope on every pen model
    // of its kind for every skin type, so a check missed above can never reach a session.
    for model in PenModelID.presetModels where PenCapability.of(model).hasRF == (kind == .rf) {
      for skin in FitzpatrickType.presetSkinTypes {
        do {
          _ = try preset.envelope(model: model, skin: skin)
        } catch {
          report(
            node, path, .envelopeRefused("\(error) (pen model \(model.spelling), \(skin.roman))"))
          return nil
        }
      }
    }
    return LocatedPreset(preset: preset, idLine: idLine)
  }

  // MARK: Limits

  mutating func checkMechanical(
    depth: LocatedRange, speed: LocatedRange, area limits: TreatmentAreaLimits
  ) {
    consistent(depth, unit: "mm")
    consistent(speed, unit: "Hz")
    let area = limits.area
    for model in PenModelID.presetModels where !PenCapability.of(model).hasRF {
      let pen = PenCapability.of(model)
      within(
        depth, unit: "mm", floor: (pen.minDepth.value, .penModel(model)),
        ceilings: [(limits.maxDepth.value, .area(area)), (pen.maxDepth.value, .penModel(model))])
      within(
        speed, unit: "Hz", floor: (pen.minSpeed.value, .penModel(model)),
        ceilings: [(limits.maxSpeed.value, .area(area)), (pen.maxSpeed.value, .penModel(model))])
    }
  }

  mutating func checkRF(
    depth: LocatedRange, speed: LocatedRange, energy: LocatedRange, pulse: Located,
    doseCap: Located?, cutoff: Located?, area: TreatmentAreaLimits
  ) {
    consistent(depth, unit: "mm")
    consistent(speed, unit: "Hz")
    consistent(energy, unit: "mJ/pin")
    for model in PenModelID.presetModels where PenCapability.of(model).hasRF {
      let pen = PenCapability.of(model)
      within(
        depth, unit: "mm", floor: (pen.minDepth.value, .penModel(model)),
        ceilings: [
          (area.maxRFDepth.value, .area(area.area)), (pen.maxDepth.value, .penModel(model)),
        ])
      within(
        speed, unit: "Hz", floor: (pen.minSpeed.value, .penModel(model)),
        ceilings: [(area.maxSpeed.value, .area(area.area)), (pen.maxSpeed.value, .penModel(model))])
      // Energies are written for skin types I-III; the envelope scales them down for IV-VI.
      within(
        energy, unit: "mJ/pin", floor: nil,
        ceilings: [
          (area.maxRFEnergyPerPin.value, .area(area.area)),
          (pen.maxRFEnergyPerPin.value, .penModel(model)),
        ])
      within(
        [pulse], unit: "ms", floor: (pen.minPulse.value, .penModel(model)),
        ceilings: [(pen.maxPulse.value, .penModel(model))])
      if let cutoff {
        within(
          [cutoff], unit: "degC", floor: (Preset.minTissueTemperatureCutoff.value, .preset),
          ceilings: [(pen.maxTissueTemperatureCutoff.value, .penModel(model))])
      }
      let watts = energy.max.value * Double(pen.pinCount) / pulse.value
      if watts > pen.maxRFPower.value {
        report(
          line: energy.max.line, column: energy.max.column, energy.max.field,
          .rfPowerAboveLimit(watts: watts, limit: pen.maxRFPower.value, model: model))
      }
    }
    if let doseCap {
      within(
        [doseCap], unit: "J", floor: nil,
        ceilings: [(area.rfDoseCap.value / 1000, .area(area.area))])
    }
  }

  mutating func consistent(_ r: LocatedRange, unit: String) {
    if r.min.value > r.max.value {
      report(
        line: r.min.line, column: r.min.column, r.min.field,
        .inconsistentRange(default: r.value.value, min: r.min.value, max: r.max.value, unit: unit))
    } else if r.value.value < r.min.value || r.value.value > r.max.value {
      report(
        line: r.value.line, column: r.value.column, r.value.field,
        .inconsistentRange(default: r.value.value, min: r.min.value, max: r.max.value, unit: unit))
    }
  }

  mutating func within(
    _ r: LocatedRange, unit: String, floor: (Double, LimitSource)?,
    ceilings: [(Double, LimitSource)]
  ) {
    within(r.all, unit: unit, floor: floor, ceilings: ceilings)
  }

  /// Reports each value above the lowest ceiling or below the floor, naming that limit's source.
  mutating func within(
    _ values: [Located], unit: String, floor: (Double, LimitSource)?,
    ceilings: [(Double, LimitSource)]
  ) {
    let ceiling = ceilings.min { $0.0 < $1.0 }
    for v in values {
      if let (limit, source) = ceiling, v.value > limit {
        report(
          line: v.line, column: v.column, v.field,
          .aboveHardLimit(value: v.value, limit: limit, unit: unit, source: source))
      } else if let (limit, source) = floor, v.value < limit {
        report(
          line: v.line, column: v.column, v.field,
          .belowHardLimit(value: v.value, limit: limit, unit: unit, source: source))
      }
    }
  }

  // MARK: Nodes

  /// The pairs of a mapping, with unknown keys reported; nil (reported) when not a mapping.
  mutating func mapping(_ node: Node, _ path: String, known: [String]) -> [(String, Node, Node)]? {
    count(node)
    guard case .mapping(let m) = node else {
      report(node, path, .wrongType(expected: "a mapping of fields", found: kind(node)))
      return nil
    }
    var out: [(String, Node, Node)] = []
    for (key, value) in m {
      count(key)
      count(value)
      guard case .scalar(let k) = key else {
        report(key, path, .wrongType(expected: "a field name", found: kind(key)))
        continue
      }
      let child = path == "(file)" ? k.string : "\(path).\(k.string)"
      if !known.contains(k.string) {
        report(key, child, .unknownField(k.string, suggestion: Self.suggestion(k.string, known)))
        continue
      }
      out.append((k.string, key, value))
    }
    return out
  }

  mutating func required(
    _ fields: [(String, Node, Node)], _ key: String, in parent: Node, path: String
  ) -> Node? {
    if let value = optional(fields, key) { return value }
    report(parent, path, .missingField)
    return nil
  }

  func optional(_ fields: [(String, Node, Node)], _ key: String) -> Node? {
    fields.first { $0.0 == key }?.2
  }

  mutating func string(_ node: Node, _ path: String) -> String? {
    guard case .scalar(let s) = node else {
      report(node, path, .wrongType(expected: "text", found: kind(node)))
      return nil
    }
    return s.string
  }

  mutating func range(_ node: Node, _ path: String, unit: String) -> LocatedRange? {
    guard let fields = mapping(node, path, known: Self.rangeFields) else { return nil }
    let value = required(fields, "default", in: node, path: "\(path).default").flatMap {
      number($0, "\(path).default", unit: unit)
    }
    let min = required(fields, "min", in: node, path: "\(path).min").flatMap {
      number($0, "\(path).min", unit: unit)
    }
    let max = required(fields, "max", in: node, path: "\(path).max").flatMap {
      number($0, "\(path).max", unit: unit)
    }
    guard let value, let min, let max else { return nil }
    return LocatedRange(value: value, min: min, max: max)
  }

  /// A plain decimal number greater than zero. Quoted text, YAML's .inf/.nan, hex and the like
  /// are refused: a dose is never written in a form a reader could misread.
  mutating func number(_ node: Node, _ path: String, unit: String) -> Located? {
    guard case .scalar(let s) = node else {
      report(node, path, .wrongType(expected: "a number in \(unit)", found: kind(node)))
      return nil
    }
    let text = s.string.trimmingCharacters(in: .whitespaces)
    if s.style == .singleQuoted || s.style == .doubleQuoted {
      report(
        node, path,
        .wrongType(expected: "a number in \(unit)", found: "the quoted text \"\(text)\""))
      return nil
    }
    let lower = text.lowercased()
    if lower.contains("inf") || lower.contains("nan") {
      report(node, path, .notFinite(text))
      return nil
    }
    let decimal = !text.isEmpty && text.allSatisfy { "0123456789+-.eE".contains($0) }
    guard decimal, let value = Double(text) else {
      let found = text.isEmpty ? "nothing" : "'\(text)'"
      report(node, path, .wrongType(expected: "a number in \(unit)", found: found))
      return nil
    }
    guard value.isFinite else {
      report(node, path, .notFinite(text))
      return nil
    }
    guard value > 0 else {
      report(node, path, .notPositive(value, unit: unit))
      return nil
    }
    return Located(value: value, line: line(node), column: column(node), field: path)
  }

  mutating func count(_ node: Node) {
    nodesSeen += 1
    if nodesSeen == PresetFile.maxNodes {
      report(
        node, "(file)",
        .tooComplex("more than \(PresetFile.maxNodes) YAML nodes; a preset file needs far fewer"))
    }
  }

  func kind(_ node: Node) -> String {
    switch node {
    case .scalar(let s): s.string.isEmpty ? "nothing" : "'\(s.string)'"
    case .mapping: "a mapping"
    case .sequence: "a list"
    case .alias: "an alias"
    }
  }

  func line(_ node: Node) -> Int { node.mark?.line ?? 1 }
  func column(_ node: Node) -> Int { node.mark?.column ?? 1 }

  mutating func report(_ node: Node, _ field: String, _ kind: PresetFileIssue.Kind) {
    report(line: line(node), column: column(node), field, kind)
  }

  mutating func report(line: Int, column: Int, _ field: String, _ kind: PresetFileIssue.Kind) {
    // After the node budget is spent, one report is enough: the file is refused anyway.
    if nodesSeen > PresetFile.maxNodes { return }
    issues.append(
      PresetFileIssue(file: file, line: line, column: column, field: field, kind: kind))
  }

  // MARK: Helpers

  static func isValidIdentifier(_ id: String) -> Bool {
    guard (1...64).contains(id.count), let first = id.unicodeScalars.first,
      "abcdefghijklmnopqrstuvwxyz0123456789".unicodeScalars.contains(first)
    else { return false }
    return id.unicodeScalars.allSatisfy {
      "abcdefghijklmnopqrstuvwxyz0123456789-_".unicodeScalars.contains($0)
    }
  }

  /// The known field nearest to a misspelt one, when it is close enough to be a typo.
  static func suggestion(_ name: String, _ known: [String]) -> String? {
    let best = known.map { ($0, editDistance(name, $0)) }.min { $0.1 < $1.1 }
    guard let best, best.1 <= max(2, name.count / 3) else { return nil }
    return best.0
  }

  static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
      var current = [i] + Array(repeating: 0, count: b.count)
      for j in stride(from: 1, through: b.count, by: 1) {
        let cost = a[i - 1] == b[j - 1] ? 0 : 1
        current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
      }
      previous = current
    }
    return previous[b.count]
  }

  /// The first token that starts a YAML anchor (`&name`) or alias (`*name`), outside comments
  /// and quoted scalars, with its line and column. Conservative: text such as `Cheeks *deep*`
  /// is refused too, and the message says to quote it.
  func findAnchorOrAlias(in text: String) -> (Int, Int, String)? {
    var line = 1
    var column = 0
    var quote: Character?
    var inComment = false
    var previous: Character = "\n"
    let chars = Array(text)
    var i = 0
    while i < chars.count {
      let c = chars[i]
      column += 1
      defer {
        previous = c
        i += 1
      }
      if c == "\n" || c == "\r\n" {
        line += 1
        column = 0
        inComment = false
        continue
      }
      if inComment { continue }
      if let q = quote {
        if q == "\"" && c == "\\" {
          // Skip the escaped character (it cannot end the string).
          if i + 1 < chars.count, chars[i + 1] != "\n" {
            i += 1
            column += 1
          }
        } else if c == q {
          quote = nil
        }
        continue
      }
      let atTokenStart =
        previous == "\n" || previous == " " || previous == "\t"
        || "[{,".contains(previous)
      if c == "#" && (previous == "\n" || previous == " " || previous == "\t") {
        inComment = true
      } else if (c == "\"" || c == "'") && (atTokenStart || previous == ":") {
        quote = c
      } else if (c == "&" || c == "*") && atTokenStart, i + 1 < chars.count {
        let next = chars[i + 1]
        if !(next == " " || next == "\t" || next == "\n" || next == "\r\n"
          || "[]{},".contains(next))
        {
          var token = String(c)
          var j = i + 1
          while j < chars.count, token.count < 24,
            !(chars[j] == " " || chars[j] == "\n" || chars[j] == "\r\n"
              || "[]{},".contains(chars[j]))
          {
            token.append(chars[j])
            j += 1
          }
          return (line, column, token)
        }
      }
    }
    return nil
  }

  func describe(_ error: YamlError, in text: String) -> (Int, Int, String) {
    switch error {
    case .scanner(let context, let problem, let mark, _),
      .parser(let context, let problem, let mark, _),
      .composer(let context, let problem, let mark, _):
      let why = context.map { "\(problem) (\($0.text) at line \($0.mark.line))" } ?? problem
      return (mark.line, mark.column, why)
    case .reader(let problem, let offset, _, _):
      let line = offset.map { o in text.prefix(o).filter { $0 == "\n" }.count + 1 } ?? 1
      return (line, 1, problem)
    case .duplicatedKeysInMapping(let duplicates, let context):
      return (
        context.mark.line, context.mark.column,
        "duplicate field \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in one mapping"
      )
    default:
      return (1, 1, "\(error)")
    }
  }
}

/// How presets, refusals and course decisions write numbers and limits in messages.
enum PresetText {
  /// Numbers in messages: up to three decimals, at least one ("3.0 mm", "0.25 mm", "9.75 mJ/pin").
  static func number(_ value: Double) -> String {
    guard value.isFinite else { return "\(value)" }
    let rounded = (value * 1000).rounded() / 1000
    var text = String(format: "%.3f", rounded)
    while text.hasSuffix("0") && !text.hasSuffix(".0") { text.removeLast() }
    return text
  }

  /// "the forehead's hard limit" / "pen model mn100's maximum" / ...
  static func limitPhrase(_ source: LimitSource, upper: Bool) -> String {
    switch source {
    case .area(let area): "the \(area.spelling)'s hard limit"
    case .penModel(let model): "pen model \(model.spelling)'s \(upper ? "maximum" : "minimum")"
    case .skinType(let skin): "the limit for Fitzpatrick type \(skin.roman)"
    case .preset: upper ? "the format's maximum" : "the format's minimum"
    }
  }

  /// The file a limit comes from.
  static func limitFile(_ source: LimitSource) -> String {
    switch source {
    case .area: "treatment-areas.json"
    case .penModel: "pen-models.json"
    case .skinType: "treatment-areas.json fitzpatrick_rf_scale"
    case .preset: "presets.md"
    }
  }
}

extension TreatmentAreaID {
  /// Every real area (not `.none`), in catalogue order.
  static let presetAreas: [TreatmentAreaID] = (1...255).compactMap {
    TreatmentAreaID(rawValue: UInt8($0))
  }

  /// The catalogue's name, as preset files and treatment-areas.json spell it.
  var spelling: String { "\(catalogueName)" }

  /// The area a preset file names, or nil.
  static func named(_ name: String) -> TreatmentAreaID? {
    presetAreas.first { $0.spelling == name }
  }
}

extension PenModelID {
  /// Every pen model, in catalogue order.
  static let presetModels: [PenModelID] = (0...255).compactMap { PenModelID(rawValue: UInt8($0)) }

  /// The catalogue's name (`mn100`, `rf200`).
  var spelling: String { "\(catalogueName)" }
}

extension FitzpatrickType {
  /// Types I to VI.
  static let presetSkinTypes: [FitzpatrickType] = (1...6).compactMap {
    FitzpatrickType(rawValue: $0)
  }

  /// The Roman numeral clinicians use.
  var roman: String {
    switch self {
    case .typeI: "I"
    case .typeII: "II"
    case .typeIII: "III"
    case .typeIV: "IV"
    case .typeV: "V"
    case .typeVI: "VI"
    }
  }
}
