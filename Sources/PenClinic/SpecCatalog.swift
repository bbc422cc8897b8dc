public import Foundation
import PenWire

/// A pen model as Firmware-Specs/pen-models.json describes it.
public struct PenModelSpec: Codable, Sendable, Hashable {
  /// RF capability of an RF handpiece.
  public struct RF: Codable, Sendable, Hashable {
    public var frequencyHz: Double
    public var maxPowerW: Double
    public var maxEnergyPerPinMj: Double
    public var minPulseMs: Double
    public var maxPulseMs: Double
    public var impedanceWindowOhm: [Double]
    public var tissueTemperatureCutoffC: Double
    public var maxTissueTemperatureCutoffC: Double
    public var contactLossRfOffMs: Double
  }

  public var id: String
  public var name: String
  public var kind: String
  public var minDepthMm: Double
  public var maxDepthMm: Double
  public var depthStepMm: Double
  public var minSpeedHz: Double
  public var maxSpeedHz: Double
  public var pinCount: Int
  public var rf: RF?
  public var maxHandpieceTemperatureC: Double
  public var sensors: [String]
  public var cartridgeMaxUses: Int
  public var source: String
}

/// A treatment area's hard limits as Firmware-Specs/treatment-areas.json gives them.
public struct TreatmentAreaSpec: Codable, Sendable, Hashable {
  public var id: String
  public var name: String
  public var maxDepthMm: Double
  public var maxRfDepthMm: Double
  public var maxSpeedHz: Double
  public var rfAllowed: Bool
  public var maxRfEnergyPerPinMj: Double
  public var rfDoseCapJ: Double
  public var source: String
}

/// Firmware-Specs read from disk and checked: pen models, treatment areas, and the agreement of
/// the message catalogue with the one compiled into this build.
public struct SpecCatalog: Sendable {
  public var directory: URL
  public var models: [PenModelSpec]
  public var areas: [TreatmentAreaSpec]
  /// Fitzpatrick type (1–6) → RF energy factor.
  public var fitzpatrickScale: [Int: Double]
  public var catalogueHash: UInt32

  /// Loads and validates every machine-readable spec file in `directory`. Throws the first
  /// problems found, each naming the file, the field, the value and the limit.
  public init(directory: URL) throws(SpecError) {
    self.directory = directory
    let modelsFile = try Self.decode(ModelsFile.self, "pen-models.json", in: directory)
    let areasFile = try Self.decode(AreasFile.self, "treatment-areas.json", in: directory)
    let messages = try Self.decode(MessagesFile.self, "messages.json", in: directory)
    models = modelsFile.models
    areas = areasFile.areas
    var scale: [Int: Double] = [:]
    for (key, value) in areasFile.fitzpatrickRfScale.values {
      guard let type = Int(key) else {
        throw SpecError(
          file: "treatment-areas.json",
          problems: ["fitzpatrick_rf_scale: key \(key) is not a skin type 1-6"])
      }
      scale[type] = value
    }
    fitzpatrickScale = scale
    guard let hash = UInt32(messages.catalogueHash.dropFirst(2), radix: 16),
      messages.catalogueHash.hasPrefix("0x")
    else {
      throw SpecError(
        file: "messages.json",
        problems: ["catalogue_hash \(messages.catalogueHash) is not 0x followed by 8 hex digits"])
    }
    catalogueHash = hash
    let problems = validate()
    if !problems.isEmpty { throw SpecError(file: directory.path, problems: problems) }
  }

  /// Every rule the machine-readable specs must satisfy beyond their JSON shape.
  func validate() -> [String] {
    var problems: [String] = []
    if catalogueHash != MessageCatalogue.hash {
      problems.append(
        "messages.json: catalogue_hash 0x\(hex(catalogueHash)) differs from this build's 0x\(hex(MessageCatalogue.hash)): rebuild, or run make generate"
      )
    }
    let knownModels: Set<String> = ["mn100", "rf200"]
    let knownAreas: Set<String> = [
      "forehead", "periorbital", "nose", "perioral", "cheekbones", "cheeks", "jawline_chin", "neck",
      "decollete", "hands", "acne_scars", "body",
    ]
    if Set(models.map(\.id)) != knownModels {
      problems.append(
        "pen-models.json: models \(models.map(\.id).sorted()) do not match the catalogue's PenModelID values \(knownModels.sorted())"
      )
    }
    if Set(areas.map(\.id)) != knownAreas || areas.count != knownAreas.count {
      problems.append(
        "treatment-areas.json: areas \(areas.map(\.id).sorted()) do not match the catalogue's TreatmentAreaID values"
      )
    }
    for m in models {
      let at = "pen-models.json \(m.id)"
      if !(0 < m.minDepthMm && m.minDepthMm < m.maxDepthMm && m.maxDepthMm <= 4.0) {
        problems.append(
          "\(at): depth range \(m.minDepthMm)-\(m.maxDepthMm) mm must satisfy 0 < min < max <= 4.0")
      }
      if !(m.depthStepMm > 0 && m.depthStepMm <= m.maxDepthMm - m.minDepthMm) {
        problems.append(
          "\(at): depth step \(m.depthStepMm) mm must be positive and within the range")
      }
      if !(0 < m.minSpeedHz && m.minSpeedHz < m.maxSpeedHz && m.maxSpeedHz <= 200) {
        problems.append(
          "\(at): speed range \(m.minSpeedHz)-\(m.maxSpeedHz) Hz must satisfy 0 < min < max <= 200")
      }
      if !(1...255).contains(m.pinCount) {
        problems.append("\(at): pin count \(m.pinCount) outside 1-255")
      }
      if !(m.maxHandpieceTemperatureC > 30 && m.maxHandpieceTemperatureC <= 43) {
        problems.append(
          "\(at): handpiece cut-off \(m.maxHandpieceTemperatureC) degC outside 30-43 (IEC 60601-1 applied parts)"
        )
      }
      switch (m.kind, m.rf) {
      case ("mechanical", nil): break
      case ("rf", let rf?):
        if !(rf.maxEnergyPerPinMj > 0 && rf.maxEnergyPerPinMj <= 150) {
          problems.append("\(at): RF energy per pin \(rf.maxEnergyPerPinMj) mJ outside (0, 150]")
        }
        if rf.impedanceWindowOhm.count != 2
          || !(rf.impedanceWindowOhm[0] < rf.impedanceWindowOhm[1])
        {
          problems.append(
            "\(at): impedance window \(rf.impedanceWindowOhm) must be [low, high] with low < high")
        }
        if !(rf.tissueTemperatureCutoffC <= rf.maxTissueTemperatureCutoffC
          && rf.maxTissueTemperatureCutoffC <= 43)
        {
          problems.append(
            "\(at): tissue cut-off \(rf.tissueTemperatureCutoffC) degC must not exceed \(rf.maxTissueTemperatureCutoffC) or 43"
          )
        }
      default:
        problems.append(
          "\(at): kind \(m.kind) must be 'mechanical' without an rf block or 'rf' with one")
      }
      if m.source.isEmpty { problems.append("\(at): source is empty") }
    }
    for a in areas {
      let at = "treatment-areas.json \(a.id)"
      if !(a.maxDepthMm > 0 && a.maxDepthMm <= 4.0) {
        problems.append("\(at): max depth \(a.maxDepthMm) mm outside (0, 4.0]")
      }
      if !(a.maxSpeedHz > 0 && a.maxSpeedHz <= 200) {
        problems.append("\(at): max speed \(a.maxSpeedHz) Hz outside (0, 200]")
      }
      if a.rfAllowed {
        if !(a.maxRfEnergyPerPinMj > 0 && a.maxRfEnergyPerPinMj <= 150) {
          problems.append(
            "\(at): RF allowed but energy per pin \(a.maxRfEnergyPerPinMj) mJ outside (0, 150]")
        }
        if !(a.rfDoseCapJ > 0 && a.rfDoseCapJ <= 4000) {
          problems.append("\(at): RF allowed but dose cap \(a.rfDoseCapJ) J outside (0, 4000]")
        }
        if !(a.maxRfDepthMm > 0 && a.maxRfDepthMm <= 4.0) {
          problems.append("\(at): RF allowed but RF depth \(a.maxRfDepthMm) mm outside (0, 4.0]")
        }
      } else if a.maxRfEnergyPerPinMj != 0 || a.rfDoseCapJ != 0 || a.maxRfDepthMm != 0 {
        problems.append("\(at): RF not allowed, so RF depth, energy and dose cap must all be 0")
      }
      if a.source.isEmpty { problems.append("\(at): source is empty") }
    }
    if Set(fitzpatrickScale.keys) != Set(1...6) {
      problems.append(
        "treatment-areas.json: fitzpatrick_rf_scale must give types 1-6, has \(fitzpatrickScale.keys.sorted())"
      )
    }
    let factors = (1...6).compactMap { fitzpatrickScale[$0] }
    if factors.count == 6
      && (factors.contains { !($0 > 0 && $0 <= 1) }
        || zip(factors, factors.dropFirst()).contains { $1 > $0 })
    {
      problems.append(
        "treatment-areas.json: fitzpatrick_rf_scale \(factors) must be in (0, 1] and never rise with the type"
      )
    }
    return problems
  }

  /// Firmware-Specs found from `path`, the environment (PENCONTROL_SPECS) or the working
  /// directory and its parents.
  public static func locate(_ path: String?) -> URL? {
    let fm = FileManager.default
    if let path { return URL(fileURLWithPath: path) }
    if let env = ProcessInfo.processInfo.environment["PENCONTROL_SPECS"] {
      return URL(fileURLWithPath: env)
    }
    var dir = URL(fileURLWithPath: fm.currentDirectoryPath)
    for _ in 0..<6 {
      let candidate = dir.appendingPathComponent("Firmware-Specs")
      if fm.fileExists(atPath: candidate.appendingPathComponent("messages.json").path) {
        return candidate
      }
      dir.deleteLastPathComponent()
    }
    return nil
  }

  private struct ModelsFile: Codable { var models: [PenModelSpec] }
  private struct AreasFile: Codable {
    struct Scale: Codable { var values: [String: Double] }
    var fitzpatrickRfScale: Scale
    var areas: [TreatmentAreaSpec]
  }
  private struct MessagesFile: Codable { var catalogueHash: String }

  private static func decode<T: Decodable>(_: T.Type, _ name: String, in directory: URL)
    throws(SpecError)
    -> T
  {
    let url = directory.appendingPathComponent(name)
    let data: Data
    do {
      data = try Data(contentsOf: url)
    } catch {
      throw SpecError(
        file: url.path, problems: ["cannot read the file: \(error.localizedDescription)"])
    }
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    do {
      return try decoder.decode(T.self, from: data)
    } catch let DecodingError.keyNotFound(key, context) {
      throw SpecError(
        file: url.path, problems: ["missing field \(path(context.codingPath + [key]))"])
    } catch let DecodingError.typeMismatch(type, context) {
      throw SpecError(
        file: url.path, problems: ["field \(path(context.codingPath)) is not a \(type)"])
    } catch let DecodingError.valueNotFound(type, context) {
      throw SpecError(
        file: url.path, problems: ["field \(path(context.codingPath)) is null, expected \(type)"])
    } catch {
      throw SpecError(file: url.path, problems: ["not valid JSON: \(error.localizedDescription)"])
    }
  }

  private static func path(_ keys: [any CodingKey]) -> String {
    keys.map { $0.intValue.map { "[\($0)]" } ?? ".\(snakeCase($0.stringValue))" }.joined()
      .trimmingCharacters(in: CharacterSet(charactersIn: "."))
  }
}

/// Firmware-Specs could not be read or broke one of their rules.
public struct SpecError: Error, Sendable, CustomStringConvertible {
  /// The file or directory concerned.
  public var file: String
  /// Each problem: what was wrong, the value and the limit.
  public var problems: [String]

  public var description: String {
    "Firmware-Specs at \(file) are not valid:\n"
      + problems.map { "  - \($0)" }.joined(separator: "\n")
  }
}

/// The file's own spelling of a key that the decoder converted to camel case.
func snakeCase(_ key: String) -> String {
  var out = ""
  for c in key {
    if c.isUppercase {
      out += "_" + c.lowercased()
    } else {
      out.append(c)
    }
  }
  return out
}

private func hex(_ v: UInt32) -> String {
  let s = String(v, radix: 16, uppercase: true)
  return String(repeating: "0", count: 8 - s.count) + s
}
