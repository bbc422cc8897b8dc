import Foundation
import PenClinic
import PenWire
import Testing

@Suite("Firmware-Specs catalog")
struct SpecCatalogTests {
  static let specs = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Firmware-Specs")

  /// A scratch copy of Firmware-Specs with one file rewritten by `edit`.
  static func copy(editing file: String, _ edit: (inout [String: Any]) -> Void) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "specs-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for name in ["messages.json", "pen-models.json", "treatment-areas.json"] {
      try FileManager.default.copyItem(
        at: specs.appendingPathComponent(name), to: dir.appendingPathComponent(name))
    }
    let url = dir.appendingPathComponent(file)
    var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    edit(&object)
    try JSONSerialization.data(withJSONObject: object).write(to: url)
    return dir
  }

  static func editArea(_ id: String, _ edit: @escaping (inout [String: Any]) -> Void) -> (
    inout [String: Any]
  ) -> Void {
    { doc in
      var areas = doc["areas"] as! [[String: Any]]
      let i = areas.firstIndex { $0["id"] as? String == id }!
      edit(&areas[i])
      doc["areas"] = areas
    }
  }

  @Test("the committed Firmware-Specs load, with every area and both pen models")
  func committedSpecsAreValid() throws {
    let catalog = try SpecCatalog(directory: Self.specs)
    #expect(catalog.areas.count == 12)
    #expect(Set(catalog.models.map(\.id)) == ["mn100", "rf200"])
    #expect(catalog.catalogueHash == MessageCatalogue.hash)
    #expect(catalog.fitzpatrickScale[6] == 0.5)
    let periorbital = try #require(catalog.areas.first { $0.id == "periorbital" })
    #expect(!periorbital.rfAllowed)
    #expect(periorbital.maxDepthMm == 0.5)
  }

  @Test("an area that forbids RF but gives an RF energy is refused, naming the area and the rule")
  func rfEnergyWhereRFIsNotAllowed() throws {
    let dir = try Self.copy(
      editing: "treatment-areas.json",
      Self.editArea("periorbital") { $0["max_rf_energy_per_pin_mj"] = 10.0 })
    #expect {
      _ = try SpecCatalog(directory: dir)
    } throws: { error in
      "\(error)".contains("periorbital") && "\(error)".contains("RF not allowed")
    }
  }

  @Test("an area deeper than the wire can express is refused with the value and the limit")
  func depthBeyondWireRange() throws {
    let dir = try Self.copy(
      editing: "treatment-areas.json", Self.editArea("neck") { $0["max_depth_mm"] = 4.5 })
    #expect {
      _ = try SpecCatalog(directory: dir)
    } throws: { error in
      "\(error)".contains("neck") && "\(error)".contains("4.5") && "\(error)".contains("4.0")
    }
  }

  @Test("a missing field is reported with its path")
  func missingField() throws {
    let dir = try Self.copy(
      editing: "treatment-areas.json", Self.editArea("nose") { $0["max_speed_hz"] = nil })
    #expect {
      _ = try SpecCatalog(directory: dir)
    } throws: { error in
      "\(error)".contains("treatment-areas.json") && "\(error)".contains("areas[2]")
        && "\(error)".contains("max_speed_hz")
    }
  }

  @Test("a catalogue hash that differs from this build is refused, naming both")
  func catalogueHashMismatch() throws {
    let dir = try Self.copy(editing: "messages.json") { $0["catalogue_hash"] = "0x12345678" }
    #expect {
      _ = try SpecCatalog(directory: dir)
    } throws: { error in
      "\(error)".contains("0x12345678")
        && "\(error)".contains(String(format: "0x%08X", MessageCatalogue.hash))
    }
  }

  @Test("Fitzpatrick factors that rise with the skin type are refused")
  func fitzpatrickMustNotRise() throws {
    let dir = try Self.copy(editing: "treatment-areas.json") { doc in
      var scale = doc["fitzpatrick_rf_scale"] as! [String: Any]
      var values = scale["values"] as! [String: Any]
      values["6"] = 0.9
      scale["values"] = values
      doc["fitzpatrick_rf_scale"] = scale
    }
    #expect(throws: SpecError.self) { _ = try SpecCatalog(directory: dir) }
  }
}
