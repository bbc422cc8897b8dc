import ArgumentParser
import Foundation
import PenDriver
import PenSimulator
import PenUSB
import PenWire

/// Options that put a simulated pen in place of a real one.
struct SimulatorOptions: ParsableArguments {
  @Flag(help: "Use a simulated pen instead of a real one.")
  var sim = false

  @Option(help: "The simulated pen's model: mn100 or rf200.")
  var simModel: String = "rf200"

  @Option(help: "The seed of the simulated pen's serial and unit imperfections.")
  var simSeed: UInt64 = 1

  @Flag(help: "Start the simulated pen fresh from the factory, forgetting its saved state.")
  var simReset = false

  func model() throws -> PenModelID {
    switch simModel {
    case "mn100": return .mn100
    case "rf200": return .rf200
    default:
      throw ValidationError(
        "unknown pen model '\(simModel)': Firmware-Specs/pen-models.json has mn100 and rf200")
    }
  }

  /// A booted simulated pen on the loopback transport.
  func simulatedPen() throws -> (SimulatedPen, LoopbackTransport) {
    let pen = SimulatedPen(model: try model(), seed: simSeed)
    pen.advance(by: PenFirmware.bootTime)
    return (pen, LoopbackTransport(pen: pen))
  }
}

/// One pen found, for `devices`.
struct FoundPen: Encodable {
  var kind: String
  var serial: String?
  var model: String?
  var vendorId: String
  var productId: String
  var bus: Int?
  var address: Int?
}

/// `penctl devices`: the pens libusb finds, and with --sim a simulated one.
struct DevicesCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "devices",
    abstract: "List the pens on USB (none is a normal answer), and with --sim a simulated one.")

  @OptionGroup var simulator: SimulatorOptions
  @Flag(help: "Print JSON instead of text.") var json = false

  func run() throws {
    var found: [FoundPen] = []
    do {
      let context = try USBContext()
      for device in try context.devices() {
        found.append(
          FoundPen(
            kind: "usb", serial: context.serialNumber(of: device), model: nil,
            vendorId: String(format: "0x%04x", device.id.vendor),
            productId: String(format: "0x%04x", device.id.product),
            bus: Int(device.bus), address: Int(device.address)))
      }
    } catch {
      fail(
        "cannot list USB devices: \(error). Is libusb installed (make deps)?",
        code: ExitStatus.deviceFault)
    }
    if simulator.sim {
      let model = try simulator.model()
      found.append(
        FoundPen(
          kind: "simulated", serial: SimulatedPen.serial(model: model, seed: simulator.simSeed),
          model: "\(model.catalogueName)", vendorId: "0x1209", productId: "0x000a", bus: nil,
          address: nil))
    }
    if json {
      try JSONOutput.print(["pens": found])
      return
    }
    if found.isEmpty {
      print(
        "No pens found on USB (looked for \(USBDeviceID.pens.map(\.description).joined(separator: ", ")))."
      )
      print("Use --sim for a simulated pen.")
      return
    }
    print(
      Table.render(
        header: ["kind", "serial", "model", "id", "bus:address"],
        rows: found.map { p in
          [
            p.kind, p.serial ?? "(unreadable)", p.model ?? "-",
            "\(p.vendorId.dropFirst(2)):\(p.productId.dropFirst(2))",
            p.bus.map { "\($0):\(p.address!)" } ?? "-",
          ]
        }))
  }
}

/// What `info` reports about a pen.
struct PenInfo: Encodable {
  struct Range: Encodable {
    var min: Double
    var max: Double
    var step: Double?
  }
  struct RF: Encodable {
    var frequencyHz: Double
    var maxPowerW: Double
    var maxEnergyPerPinMj: Double
  }
  var serial: String
  var model: String
  var firmwareVersion: String
  var protocolVersion: Int
  var catalogueHash: String
  var capabilities: [String]
  var depthMm: Range
  var speedHz: Range
  var pinCount: Int
  var rf: RF?

  init(_ d: DeviceInfo) {
    serial = d.serial.description
    model = "\(d.model.catalogueName)"
    firmwareVersion = "\(d.firmwareMajor).\(d.firmwareMinor).\(d.firmwarePatch)"
    protocolVersion = Int(d.protocolVersion)
    catalogueHash = String(format: "0x%08X", d.catalogueHash)
    let names: [(Capabilities, String)] = [
      (.needling, "needling"), (.rf, "rf"), (.impedanceSensor, "impedance_sensor"),
      (.tissueTemperatureSensor, "tissue_temperature_sensor"),
      (.handpieceTemperatureSensor, "handpiece_temperature_sensor"),
      (.skinContactSensor, "skin_contact_sensor"),
      (.depthEncoder, "depth_encoder"), (.tachometer, "tachometer"),
      (.cartridgeChip, "cartridge_chip"),
    ]
    capabilities = names.filter { d.capabilities.contains($0.0) }.map(\.1)
    depthMm = Range(min: d.minDepth.value, max: d.maxDepth.value, step: d.depthStep.value)
    speedHz = Range(min: d.minSpeed.value, max: d.maxSpeed.value, step: nil)
    pinCount = Int(d.pinCount)
    rf =
      d.capabilities.contains(.rf)
      ? RF(
        frequencyHz: d.rfFrequency.value, maxPowerW: d.maxRfPower.value,
        maxEnergyPerPinMj: d.maxRfEnergyPerPin.value)
      : nil
  }
}

/// `penctl info`: the identity and capability a pen reports at the handshake.
struct InfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info",
    abstract: "Connect to a pen (by serial, or --sim) and show what it reports.")

  @Argument(help: "The serial of a pen on USB (see penctl devices). Omit with --sim.")
  var serial: String?

  @OptionGroup var simulator: SimulatorOptions
  @Flag(help: "Print JSON instead of text.") var json = false

  func validate() throws {
    if serial == nil && !simulator.sim {
      throw ValidationError("give a pen's serial, or --sim for a simulated pen")
    }
    if serial != nil && simulator.sim { throw ValidationError("give a serial or --sim, not both") }
  }

  func run() throws {
    let transport: any PenTransport
    var context: USBContext?
    if simulator.sim {
      transport = try simulator.simulatedPen().1
    } else {
      do {
        let usb = try USBContext()
        context = usb
        guard let device = try usb.devices().first(where: { usb.serialNumber(of: $0) == serial })
        else {
          fail(
            "no pen with serial \(serial!) on USB: penctl devices lists the pens found",
            code: ExitStatus.deviceFault)
        }
        transport = try USBPenTransport(context: usb, device: device)
      } catch {
        fail("cannot open the pen: \(error)", code: ExitStatus.deviceFault)
      }
    }
    defer {
      transport.close()
      _ = context
    }
    let info: DeviceInfo
    do {
      info = try Handshake.perform(over: transport)
    } catch {
      fail(error.description, code: ExitStatus.deviceFault)
    }
    let report = PenInfo(info)
    if json {
      try JSONOutput.print(report)
      return
    }
    print(
      "\(report.serial): \(report.model), firmware \(report.firmwareVersion), protocol \(report.protocolVersion)"
    )
    print("catalogue hash \(report.catalogueHash) (matches this host)")
    print(
      "depth \(fmt(report.depthMm.min))-\(fmt(report.depthMm.max)) mm in \(fmt(report.depthMm.step ?? 0)) mm steps"
    )
    print(
      "speed \(fmt(report.speedHz.min))-\(fmt(report.speedHz.max)) Hz, \(report.pinCount) needles")
    if let rf = report.rf {
      print(
        "RF \(fmt(rf.frequencyHz / 1_000_000)) MHz, up to \(fmt(rf.maxPowerW)) W and \(fmt(rf.maxEnergyPerPinMj)) mJ per pin"
      )
    }
    print("capabilities: \(report.capabilities.joined(separator: ", "))")
  }
}
