import ArgumentParser
import Foundation
import PenClinic
import PenDriver
import PenSimulator
import PenWire

/// The simulator's reference fixtures as the calibration procedure sees them (PenClinic does not
/// depend on the simulator, so the adapter lives here and in the tests).
struct SimulatorFixtures: CalibrationFixtures {
  let pen: SimulatedPen
  func measureDepth() -> Millimetres { pen.with { $0.measureDepthWithGauge() } }
  func measureSpeed() -> Hertz { pen.with { $0.measureSpeedWithTachometer() } }
  func attachRFLoad(_ attached: Bool) { pen.with { $0.attachRFLoad(attached) } }
  func readPowerMeter() -> Millijoules { pen.with { $0.readPowerMeter() } }
}

/// `penctl calibrate`: the technician's procedure (Firmware-Specs/calibration.md section 6).
struct CalibrateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "calibrate",
    abstract: "Sweep a pen against the reference fixtures, fit, write and verify its calibration.",
    discussion: """
      Sweeps each quantity across the pen model's range, fits a correction (least squares), \
      writes it to the pen in service mode, sweeps again to verify, and writes the final record \
      — verified, or marked bad when out of tolerance (the pen then cannot be armed). The result \
      is stored in the records and an HTML report with the fitted curves is written. With --sim \
      the simulated pen's own fixtures are used. Exit codes: 0 passed; 65 bad input; \
      66 failed verification (pen marked bad) or the service key was refused; 67 pen fault.
      """)

  @Argument(help: "What to calibrate: depth, speed, rf or all.")
  var scope: String = "all"

  @Option(help: "The technician's id (a number, not zero), stored in the record.")
  var technician: UInt32 = 1

  @Option(
    help: ArgumentHelp(
      "The pen's service key as 64 hex digits (with --sim: the simulated pen's key by default).",
      valueName: "hex"))
  var serviceKey: String?

  @Option(help: "Where to write the HTML report (default: reports/ in the data directory).")
  var report: String?

  @Option(help: "The serial of a pen on USB (needs fixtures: not yet supported; use --sim).")
  var serial: String?

  @OptionGroup var simulator: SimulatorOptions
  @OptionGroup var store: StoreOptions
  @Flag(help: "Print JSON instead of text.") var json = false

  struct Summary: Encodable {
    struct Quantity: Encodable {
      var quantity: String
      var unit: String
      var maxErrorBefore: Double
      var maxErrorAfter: Double?
      var tolerance: Double
      var errorIsRelative: Bool
      var withinTolerance: Bool
    }
    var calibrationId: Int64
    var serial: String
    var model: String
    var technician: UInt32
    var passed: Bool
    var markedBad: Bool
    var depthGain: Double
    var depthOffsetMm: Double
    var speedGain: Double
    var rfGain: Double
    var quantities: [Quantity]
    var findings: [String]
    var report: String
    var database: String
  }

  func run() throws {
    do {
      guard let scope = CalibrationScope(rawValue: scope) else {
        throw CLIError(
          "unknown calibration '\(scope)': give depth, speed, rf or all", code: ExitStatus.usage)
      }
      guard technician != 0 else {
        throw CLIError(
          "--technician 0 is reserved for factory records: give your operator number",
          code: ExitStatus.usage)
      }
      guard simulator.sim else {
        throw CLIError(
          "calibrating a pen on USB needs drivers for the bench's fixtures, which this version does not have: use --sim",
          code: ExitStatus.usage)
      }
      // A malformed key or pen state is refused before the records or the pen are opened.
      let givenKey = try serviceKey.map { (k) throws(CLIError) in try Self.parseKey(k) }
      try PenSession.preflight(simulator: simulator, dataDirectory: store.dataDirectory)
      let records = try store.open()
      let session = try PenSession.open(
        simulator: simulator, serial: serial, dataDirectory: store.dataDirectory)
      defer { try? session.close() }
      let pen = session.pen
      guard let sim = session.simulated else { throw CLIError("no fixtures", code: 70) }
      let key = givenKey ?? simulatedServiceKey(serial: pen.info.serial.description)
      do {
        _ = try records.upsertDevice(
          DeviceIdentity(
            serial: pen.info.serial.description, model: pen.info.model,
            firmware:
              "\(pen.info.firmwareMajor).\(pen.info.firmwareMinor).\(pen.info.firmwarePatch)"))
      } catch {
        throw CLIError(error.description, code: StoreOptions.code(for: error))
      }
      // The sweeps arm the pen: fit a new cartridge, as a technician would.
      sim.with { fw in
        fw.cartridge = SimulatedCartridge(
          id: 0xCA1B_0000_0000 | UInt64(fw.nvm.cartridgeUses.count + 1),
          needleCount: UInt8(clamping: fw.capability.pinCount))
      }
      let calibrator = Calibrator(
        pen: pen, fixtures: SimulatorFixtures(pen: sim), serviceKey: key,
        technician: technician, scope: scope)
      let live = !json
      let outcome: CalibrationOutcome
      do {
        outcome = try calibrator.run { progress in
          if live { warn("  \(progress.line)") }
        }
      } catch {
        let code: Int32 =
          switch error {
          case .serviceKeyRefused, .serviceLocked: ExitStatus.refused
          case .fixtureNotApplicable: ExitStatus.usage
          default: ExitStatus.deviceFault
          }
        throw CLIError("calibration of \(pen.info.serial) stopped: \(error)", code: code)
      }
      let entry = Self.entry(outcome)
      let id: Int64
      do { id = try records.addCalibration(entry) } catch {
        throw CLIError(
          "the pen holds its new record, but the records store refused it: \(error.description)",
          code: ExitStatus.internalError)
      }
      let url =
        report.map { URL(fileURLWithPath: $0) }
        ?? store.dataDirectory.appendingPathComponent("reports").appendingPathComponent(
          "calibration-\(outcome.serial)-\(id).html")
      do {
        try FileManager.default.createDirectory(
          at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(CalibrationReport.html(outcome).utf8).write(to: url, options: .atomic)
      } catch {
        throw CLIError("cannot write the report to \(url.path): \(error)", code: 65)
      }
      let summary = Summary(
        calibrationId: id, serial: outcome.serial, model: "\(outcome.model.catalogueName)",
        technician: technician, passed: outcome.passed, markedBad: outcome.markedBad,
        depthGain: outcome.coefficients.depthGain,
        depthOffsetMm: outcome.coefficients.depthOffset.value,
        speedGain: outcome.coefficients.speedGain, rfGain: outcome.coefficients.rfGain,
        quantities: outcome.quantities.map { q in
          .init(
            quantity: q.quantity.rawValue, unit: q.quantity.unit, maxErrorBefore: q.maxErrorBefore,
            maxErrorAfter: q.maxErrorAfter, tolerance: q.tolerance,
            errorIsRelative: q.quantity.errorIsRelative, withinTolerance: q.withinTolerance)
        }, findings: outcome.findings, report: url.path, database: store.path.path)
      if json {
        try JSONOutput.print(summary)
      } else {
        print(
          "calibration \(id) of \(outcome.serial) (\(outcome.model.catalogueName)): \(outcome.passed ? "PASSED — record verified" : "FAILED — record marked bad, the pen cannot be armed")"
        )
        print(
          Table.render(
            header: ["quantity", "max error before", "max error after", "tolerance", "result"],
            rows: outcome.quantities.map { q in
              [
                q.quantity.title, q.quantity.format(error: q.maxErrorBefore),
                q.maxErrorAfter.map { q.quantity.format(error: $0) } ?? "-",
                q.quantity.format(error: q.tolerance), q.withinTolerance ? "within" : "OUT",
              ]
            }))
        print(
          String(
            format: "correction: depth gain %.4f, offset %+.3f mm; speed gain %.4f; RF gain %.4f",
            outcome.coefficients.depthGain, outcome.coefficients.depthOffset.value,
            outcome.coefficients.speedGain, outcome.coefficients.rfGain))
        for f in outcome.findings { print("note: \(f)") }
        print("report: \(url.path)")
      }
      if !outcome.passed { throw ExitCode(ExitStatus.refused) }
    } catch let error as CLIError {
      fail(error, json: json)
    }
  }

  /// 32 bytes from 64 hex digits.
  static func parseKey(_ text: String) throws(CLIError) -> [UInt8] {
    let hex = Array(text.utf8)
    guard hex.count == 64 else {
      throw CLIError(
        "--service-key has \(hex.count) characters: give the 64 hex digits of the pen's 32-byte key",
        code: ExitStatus.usage)
    }
    var bytes: [UInt8] = []
    for i in stride(from: 0, to: 64, by: 2) {
      guard let b = UInt8(String(decoding: hex[i..<i + 2], as: UTF8.self), radix: 16) else {
        throw CLIError(
          "--service-key is not hexadecimal at position \(i + 1): give 64 digits 0-9, a-f",
          code: ExitStatus.usage)
      }
      bytes.append(b)
    }
    return bytes
  }

  /// The outcome as the records store keeps it.
  static func entry(_ o: CalibrationOutcome) -> CalibrationEntry {
    func errors(_ pick: (QuantityCalibration) -> Double?) -> CalibrationErrors {
      CalibrationErrors(
        depthMicrometres: (o[.depth].flatMap(pick) ?? 0) * 1000,
        speedPercent: (o[.speed].flatMap(pick) ?? 0) * 100,
        rfPercent: o[.rf].flatMap(pick).map { $0 * 100 })
    }
    var sweep: [CalibrationSweepPoint] = []
    for q in o.quantities {
      let quantity: CalibrationSweepPoint.Quantity =
        switch q.quantity {
        case .depth: .depth
        case .speed: .speed
        case .rf: .rfEnergy
        }
      sweep += q.before.map {
        CalibrationSweepPoint(
          quantity: quantity, setpoint: $0.setpoint, before: $0.measured, after: nil)
      }
      sweep += q.after.map {
        CalibrationSweepPoint(
          quantity: quantity, setpoint: $0.setpoint, before: nil, after: $0.measured)
      }
    }
    return CalibrationEntry(
      serial: o.serial, source: o.source, at: o.time, technicianID: o.technician,
      depthGain: o.coefficients.depthGain, depthOffset: o.coefficients.depthOffset,
      speedGain: o.coefficients.speedGain, rfGain: o.coefficients.rfGain,
      before: errors { $0.maxErrorBefore }, after: errors { $0.maxErrorAfter },
      sweep: sweep, passed: o.passed, markedBad: o.markedBad, record: o.recordBytes)
  }
}
