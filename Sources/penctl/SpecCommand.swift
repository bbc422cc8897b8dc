import ArgumentParser
import Foundation
import PenClinic
import PenWire

/// `penctl spec`: validate Firmware-Specs and show pen models and area limits.
struct SpecCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "spec",
    abstract: "Validate Firmware-Specs and print the pen models and the treatment-area limits.")

  @Option(
    help:
      "The Firmware-Specs directory (default: $PENCONTROL_SPECS, or ./Firmware-Specs or a parent's)."
  )
  var specs: String?

  @Flag(help: "Print JSON instead of tables.")
  var json = false

  func run() throws {
    guard let directory = SpecCatalog.locate(specs) else {
      fail(
        "no Firmware-Specs directory found from \(FileManager.default.currentDirectoryPath): pass --specs DIR or set PENCONTROL_SPECS",
        code: ExitStatus.badInput)
    }
    let catalog: SpecCatalog
    do {
      catalog = try SpecCatalog(directory: directory)
    } catch {
      fail(error.description, code: ExitStatus.badInput)
    }
    if json {
      try JSONOutput.print(
        SpecReport(
          valid: true, directory: directory.path,
          catalogueHash: String(format: "0x%08X", catalog.catalogueHash),
          protocolVersion: Int(MessageCatalogue.protocolVersion), models: catalog.models,
          areas: catalog.areas,
          fitzpatrickRfScale: Dictionary(
            uniqueKeysWithValues: catalog.fitzpatrickScale.map { (String($0), $1) })))
      return
    }
    print("Firmware-Specs at \(directory.path): valid")
    print(
      "protocol version \(MessageCatalogue.protocolVersion), catalogue hash \(String(format: "0x%08X", catalog.catalogueHash)) (matches this build)"
    )
    print("\nPen models")
    print(
      Table.render(
        header: [
          "model", "kind", "depth mm", "step mm", "speed Hz", "pins", "RF mJ/pin", "RF W",
          "impedance ohm",
        ],
        rows: catalog.models.map { m in
          [
            m.id, m.kind, "\(fmt(m.minDepthMm))-\(fmt(m.maxDepthMm))", fmt(m.depthStepMm),
            "\(fmt(m.minSpeedHz))-\(fmt(m.maxSpeedHz))", "\(m.pinCount)",
            m.rf.map { fmt($0.maxEnergyPerPinMj) } ?? "-", m.rf.map { fmt($0.maxPowerW) } ?? "-",
            m.rf.map { "\(fmt($0.impedanceWindowOhm[0]))-\(fmt($0.impedanceWindowOhm[1]))" } ?? "-",
          ]
        }))
    print("\nTreatment areas (hard limits)")
    print(
      Table.render(
        header: [
          "area", "depth mm", "RF depth mm", "speed Hz", "RF", "RF mJ/pin", "RF dose cap J",
        ],
        rows: catalog.areas.map { a in
          [
            a.id, fmt(a.maxDepthMm), a.rfAllowed ? fmt(a.maxRfDepthMm) : "-", fmt(a.maxSpeedHz),
            a.rfAllowed ? "yes" : "no", a.rfAllowed ? fmt(a.maxRfEnergyPerPinMj) : "-",
            a.rfAllowed ? fmt(a.rfDoseCapJ) : "-",
          ]
        }))
    let scale = (1...6).map { "\(roman($0)) \(fmt(catalog.fitzpatrickScale[$0] ?? 0))" }
    print("\nFitzpatrick RF energy factor: " + scale.joined(separator: ", "))
  }
}

struct SpecReport: Encodable {
  var valid: Bool
  var directory: String
  var catalogueHash: String
  var protocolVersion: Int
  var models: [PenModelSpec]
  var areas: [TreatmentAreaSpec]
  var fitzpatrickRfScale: [String: Double]
}

/// Plain-text tables with aligned columns.
enum Table {
  static func render(header: [String], rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
        .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }
    let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
    return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
  }
}

func fmt(_ v: Double) -> String {
  v == v.rounded() ? String(Int(v)) : String(format: "%g", v)
}

func roman(_ n: Int) -> String { ["", "I", "II", "III", "IV", "V", "VI"][n] }
