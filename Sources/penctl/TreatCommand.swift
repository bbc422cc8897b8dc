import ArgumentParser
import Foundation
import PenClinic
import PenDriver
import PenSafety
import PenSimulator
import PenWire
import Synchronization

/// `penctl treat`: screen, check the course, build the envelope from the area's preset, arm,
/// treat, and record the session — refused, completed or aborted, always recorded.
struct TreatCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "treat",
    abstract: "Treat one area of one patient with the area's preset, and record the session.",
    discussion: """
      With --sim the simulated pen is treated with a scripted pattern of passes: 4 s on the skin, \
      1 s lifted, for --duration seconds of (virtual) pen time. Exit codes: 0 completed; \
      64 usage; 65 bad input; 66 refused by a safety or clinical rule (the refusal is recorded); \
      67 aborted by a pen fault or a lost pen (the session is recorded with the energy delivered).
      """)

  @Option(help: "The treatment area (forehead, periorbital, nose, perioral, cheekbones, …).")
  var area: String

  @Option(help: "The patient's pseudonymous id (letters, digits, '.', '_', '-'; never a name).")
  var patient: String

  // Numbers parse unconditionally, so that `--depth -1` is refused for its value rather than
  // reported as a missing one.
  @Option(
    parsing: .unconditional,
    help:
      "Fitzpatrick skin type 1-6 or I-VI; adjusts RF energy (default: 6, the most conservative).")
  var fitzpatrick: String?

  @Option(help: "A preset id (default: the area's preset for the pen's kind).")
  var preset: String?

  @Option(help: "A clinic preset file (YAML) to add to the shipped presets; repeatable.")
  var presetFile: [String] = []

  @Option(
    parsing: .unconditional,
    help: "Needle depth in mm (e.g. 0.5 or 0.5mm), instead of the preset's default.")
  var depth: String?
  @Option(parsing: .unconditional, help: "Needle speed in Hz, instead of the preset's default.")
  var speed: String?
  @Option(
    parsing: .unconditional, help: "RF energy per pin in mJ, instead of the preset's default.")
  var rfEnergy: String?

  @Flag(
    help:
      "Confirm override values above the preset's recommended range (never above the hard limits).")
  var confirm = false

  @Flag(help: "A test patch: the preset's conservative settings, a small RF dose cap.")
  var testPatch = false

  @Option(
    help: ArgumentHelp(
      "A contraindication present, as NAME or NAME=REASON (the reason is required for relative ones); repeatable.",
      valueName: "name[=reason]"))
  var contraindication: [String] = []

  @Option(help: "Why this session may go ahead earlier than the course rules allow (recorded).")
  var overrideReason: String?

  @Option(parsing: .unconditional, help: "Seconds of treatment (pen time).")
  var duration: Double = 30

  @Option(
    help: ArgumentHelp(
      "Rehearse a fault on the simulated pen, NAME@SECONDS from the start of treatment (e.g. rf-stuck-on@5s); repeatable.",
      valueName: "name@time"))
  var fault: [String] = []

  @Option(help: "The serial of a pen on USB (see penctl devices). Omit with --sim.")
  var serial: String?

  @OptionGroup var simulator: SimulatorOptions
  @OptionGroup var store: StoreOptions
  @Flag(help: "Print JSON instead of text.") var json = false

  func run() throws {
    do {
      let request = try TreatmentRequest(self)
      let outcome = try request.run()
      if json { try JSONOutput.print(outcome.summary) } else { outcome.printText() }
      if outcome.summary.status != "completed" { throw ExitCode(ExitStatus.deviceFault) }
    } catch let error as CLIError {
      fail(error, json: json)
    } catch let error as RecordsError {
      fail(CLIError(error.description, code: StoreOptions.code(for: error)), json: json)
    }
  }
}

/// What `treat` prints at the end (and with --json, its stable fields).
struct TreatmentSummary: Encodable {
  var sessionId: Int64
  var patient: String
  var area: String
  var preset: String
  var penSerial: String
  var model: String
  var fitzpatrick: Int
  var testPatch: Bool
  var status: String
  var reason: String?
  var durationS: Double
  var passes: Int
  var deliveredRfMj: Double
  var remainingRfMj: Double
  var depthMm: Double
  var speedHz: Double
  var rfEnergyPerPinMj: Double
  var warnings: [String]
  var report: String?
  var database: String
}

/// Everything `treat` checked before touching the pen, and then the run itself.
struct TreatmentRequest {
  var area: TreatmentAreaID
  var patient: String
  var skin: FitzpatrickType
  var skinGiven: Bool
  var overrides: PresetOverrides
  var screening: ScreeningAnswers
  var faults: [ScheduledFault]
  var duration: Microseconds
  var command: TreatCommand

  init(_ c: TreatCommand) throws(CLIError) {
    command = c
    area = try parseArea(c.area)
    do {
      try RecordsStore.validatePatientID(c.patient)
    } catch {
      throw CLIError(error.message, code: ExitStatus.usage)
    }
    patient = c.patient
    // The values a clinician types go through the one fuzzed parser (CommandLineValues): plain
    // decimals with an optional unit, nothing a person could misread (1e1, inf, 0x1p-1, 05).
    do {
      skin = try c.fitzpatrick.map(CommandLineValues.skinType) ?? .typeVI
      overrides = try CommandLineValues.overrides(
        depth: c.depth, speed: c.speed, rfEnergy: c.rfEnergy, confirmed: c.confirm)
    } catch {
      throw CLIError(error.description, code: ExitStatus.usage)
    }
    skinGiven = c.fitzpatrick != nil
    guard c.duration.isFinite, c.duration > 0, c.duration <= 3_600 else {
      throw CLIError(
        "--duration \(c.duration) s is outside 0-3600 s: give the seconds of treatment",
        code: ExitStatus.usage)
    }
    duration = Microseconds(UInt64(c.duration * 1_000_000))
    if !c.fault.isEmpty && !c.simulator.sim {
      throw CLIError("--fault rehearses faults on the simulated pen: add --sim", code: 64)
    }
    faults = []
    for text in c.fault {
      do { faults.append(try ScheduledFault(parsing: text)) } catch {
        throw CLIError("--fault \(text): \(error.description)", code: ExitStatus.usage)
      }
    }
    screening = ScreeningAnswers()
    for entry in c.contraindication {
      let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
      guard let item = Contraindication(rawValue: parts[0]) else {
        throw CLIError(
          "unknown contraindication '\(parts[0])': the checklist has \(Contraindication.allCases.map(\.rawValue).joined(separator: ", "))",
          code: ExitStatus.usage)
      }
      screening.present.insert(item)
      if parts.count == 2 { screening.reasons[item] = parts[1] }
    }
    if c.serial != nil && c.simulator.sim {
      throw CLIError("give --serial or --sim, not both", code: ExitStatus.usage)
    }
  }

  func run() throws(CLIError) -> TreatmentOutcome {
    var library: PresetLibrary
    do {
      library = try PresetLibrary.shipped()
      for file in command.presetFile {
        library = try library.adding(contentsOf: URL(fileURLWithPath: file))
      }
    } catch {
      throw CLIError(error.description, code: ExitStatus.badInput)
    }
    // Everything the command line alone can show to be wrong is refused before the records or
    // the pen are opened, so that a bad input changes nothing.
    var requested: Preset? = nil
    if let id = command.preset {
      guard let p = library.preset(id: id) else {
        throw CLIError(
          "no preset '\(id)': the presets for \(area.catalogueName) are \(library.presets(for: area).map(\.id).joined(separator: ", "))",
          code: ExitStatus.badInput)
      }
      guard p.area == area else {
        throw CLIError(
          "preset \(id) is for \(p.area.catalogueName), not \(area.catalogueName)", code: 65)
      }
      requested = p
    }
    try PenSession.preflight(
      simulator: command.simulator, dataDirectory: command.store.dataDirectory)
    let store = try command.store.open()
    let session = try PenSession.open(
      simulator: command.simulator, serial: command.serial,
      dataDirectory: command.store.dataDirectory)
    defer { try? session.close() }
    let pen = session.pen
    let model = pen.info.model
    do {
      _ = try store.upsertDevice(
        DeviceIdentity(
          serial: pen.info.serial.description, model: model,
          firmware: "\(pen.info.firmwareMajor).\(pen.info.firmwareMinor).\(pen.info.firmwarePatch)"
        ))
    } catch {
      throw CLIError(error.description, code: StoreOptions.code(for: error))
    }
    var warnings: [String] = []
    if !skinGiven && model == .rf200 {
      warnings.append(
        "no --fitzpatrick given: RF energy set for type VI, the most conservative; give the patient's skin type"
      )
    }

    // The preset.
    var chosen: Preset
    if let requested {
      chosen = requested
    } else {
      guard let p = library.defaultPreset(area: area, model: model) else {
        let kinds = library.presets(for: area).map(\.id).joined(separator: ", ")
        throw refuse(
          store, session, presetID: "-", envelope: nil,
          reason:
            "no preset for \(area.catalogueName) on pen model \(model.catalogueName) (this area has \(kinds)): \(model == .rf200 ? "RF is not allowed here; use a mechanical pen" : "use another pen")"
        )
      }
      chosen = p
    }
    if command.testPatch { chosen = chosen.testPatch(model: model, skin: skin) }
    let usesRF = chosen.kind == .rf

    // The envelope: the preset on this pen for this skin, with the overrides.
    let envelope: SessionEnvelope
    do {
      envelope = try chosen.envelope(model: model, skin: skin, overrides: overrides)
    } catch {
      throw refuse(
        store, session, presetID: chosen.id, envelope: nil, reason: error.description)
    }

    // Screening (the answers are recorded with the session, whatever the verdict).
    let verdict = screen(screening, usesRF: usesRF)
    guard verdict.isCleared else {
      throw refuse(
        store, session, presetID: chosen.id, envelope: nil, reason: verdict.description)
    }

    // The course.
    let history: [PriorSession]
    do {
      history = try store.sessions(patient: patient, area: nil).map(Self.prior)
    } catch {
      throw CLIError(error.description, code: StoreOptions.code(for: error))
    }
    let course = CourseRules.check(
      history: history, area: area, at: Date(), usesRF: usesRF, isTestPatch: chosen.isTestPatch,
      skin: skin, override: command.overrideReason.map(CourseOverride.init))
    warnings += course.warnings
    guard course.isAllowed else {
      throw refuse(
        store, session, presetID: chosen.id, envelope: nil,
        reason: course.reason ?? course.description)
    }

    // The pen.
    let status: Status
    do { status = try pen.status() } catch {
      throw CLIError("the pen does not answer: \(error)", code: ExitStatus.deviceFault)
    }
    if status.flags.contains(.serviceMode) {
      throw refuse(
        store, session, presetID: chosen.id, envelope: envelope,
        reason:
          "the pen is in service mode: a technician's session is open on it; end it (power-cycle the pen) before treating a patient"
      )
    }
    if let sim = session.simulated {
      // A new single-use cartridge for every session, as in the clinic.
      sim.with { fw in
        let next = UInt64(fw.nvm.cartridgeUses.count + 1)
        fw.cartridge = SimulatedCartridge(
          id: 0xCA27_0000_0000 | next, needleCount: UInt8(clamping: envelope.pinCount))
        fw.physics.skinContact = false
      }
    }
    let sessionNumber = UInt32(
      truncatingIfNeeded: (try? store.listSessions(limit: 1).first?.id) ?? 0)
    do {
      try pen.load(envelope, sessionID: sessionNumber &+ 1)
      try pen.arm()
    } catch {
      let reason =
        switch error {
        case .refused(_, .calibrationInvalid, _):
          "the pen refused arming: its calibration is missing, out of tolerance or marked bad (calibration_invalid); calibrate it (penctl calibrate) or take it out of service"
        case .refused(let message, let code, let detail):
          "the pen refused message \(message): \(code.catalogueName) (detail \(detail))"
        default: "the pen did not arm: \(error)"
        }
      throw refuse(store, session, presetID: chosen.id, envelope: envelope, reason: reason)
    }

    let start = SessionStart(
      patient: patient, area: area, presetID: chosen.id, penSerial: pen.info.serial.description,
      model: model, fitzpatrick: skin, isTestPatch: chosen.isTestPatch,
      envelope: RecordJSON(envelope: envelope), overrideReason: command.overrideReason,
      screening: Self.screeningJSON(screening, verdict: verdict))
    let id: Int64
    do { id = try store.beginSession(start) } catch {
      try? pen.disarm()
      throw CLIError(error.description, code: StoreOptions.code(for: error))
    }
    if !command.json {
      warn(
        "session \(id) started: \(chosen.id) on \(pen.info.serial) for patient \(patient), \(fmt(Double(duration.rawValue) / 1e6)) s"
      )
    }
    if let sim = session.simulated {
      // Faults are timed from the start of treatment; the scripted passes lift the tip off the
      // skin between passes.
      let t0 = pen.now
      sim.with { fw in
        for f in faults {
          fw.inject(
            ScheduledFault(
              f.kind, at: Microseconds(t0.rawValue + f.at.rawValue), duration: f.duration))
        }
      }
    }
    var contact: (@Sendable (Bool) -> Void)? = nil
    if let sim = session.simulated {
      contact = { (on: Bool) -> Void in sim.with { $0.physics.skinContact = on } }
    }
    let statusLine: ((String) -> Void)? = command.json ? nil : { (line: String) in warn(line) }
    let run = TreatmentRun(
      pen: pen, store: store, sessionID: id, envelope: envelope, duration: duration,
      contact: contact, status: statusLine)
    let result = run.execute()
    do {
      try store.finishSession(
        id: id, outcome: result.aborted == nil ? .completed : .aborted, reason: result.aborted,
        delivered: result.delivered, passes: result.passes)
    } catch {
      throw CLIError(
        "the session ran but could not be closed in the records: \(error.description)",
        code: ExitStatus.internalError)
    }
    let report = try? ReportWriter.write(sessionID: id, store: store, to: nil, in: command.store)
    return TreatmentOutcome(
      summary: TreatmentSummary(
        sessionId: id, patient: patient, area: "\(area.catalogueName)", preset: chosen.id,
        penSerial: pen.info.serial.description, model: "\(model.catalogueName)",
        fitzpatrick: Int(skin.rawValue), testPatch: chosen.isTestPatch,
        status: result.aborted == nil ? "completed" : "aborted", reason: result.aborted,
        durationS: Double(result.elapsed.rawValue) / 1_000_000, passes: result.passes,
        deliveredRfMj: result.delivered.value, remainingRfMj: result.remaining.value,
        depthMm: envelope.recommendedDepth.value.value,
        speedHz: envelope.recommendedSpeed.value.value,
        rfEnergyPerPinMj: envelope.recommendedRFEnergyPerPin.value.value, warnings: warnings,
        report: report?.path, database: command.store.path.path))
  }

  /// Records a refused session; the error to report it with (exit 66).
  func refuse(
    _ store: RecordsStore, _ session: PenSession, presetID: String, envelope: SessionEnvelope?,
    reason: String
  ) -> CLIError {
    let start = SessionStart(
      patient: patient, area: area, presetID: presetID,
      penSerial: session.pen.info.serial.description, model: session.pen.info.model,
      fitzpatrick: skin, isTestPatch: command.testPatch,
      envelope: envelope.map(RecordJSON.init(envelope:)), overrideReason: command.overrideReason,
      screening: Self.screeningJSON(screening, verdict: nil))
    var id: Int64? = nil
    do { id = try store.recordRefusedSession(start, reason: reason) } catch {
      warn("penctl: the refusal could not be recorded: \(error.description)")
    }
    try? session.close()
    let recorded = id.map { " (recorded as session \($0))" } ?? ""
    return CLIError("treatment refused\(recorded): \(reason)", code: ExitStatus.refused)
  }

  static func screeningJSON(_ answers: ScreeningAnswers, verdict: ScreeningOutcome?) -> RecordJSON {
    var present: [RecordJSON] = []
    for c in Contraindication.allCases where answers.present.contains(c) {
      present.append(
        ["name": .string(c.rawValue), "reason": answers.reasons[c].map(RecordJSON.string) ?? .null])
    }
    var object: [String: RecordJSON] = ["present": .array(present)]
    if let verdict { object["verdict"] = .string(verdict.description) }
    return .object(object)
  }

  /// A stored session as the course rules see it.
  static func prior(_ r: SessionRecord) -> PriorSession {
    var usesRF = false
    if case .object(let e)? = r.start.envelope,
      case .object(let rf)? = e["recommended_rf_energy_per_pin_mj"],
      case .double(let v)? = rf["value"]
    {
      usesRF = v > 0
    }
    let outcome: PriorOutcome =
      switch r.status {
      case .completed: .completed
      case .refused: .refused
      case .aborted, .inProgress: .aborted
      }
    return PriorSession(
      date: r.startedAt, area: r.start.area, usesRF: usesRF, isTestPatch: r.start.isTestPatch,
      outcome: outcome)
  }
}

/// How `treat` ended, for printing.
struct TreatmentOutcome {
  var summary: TreatmentSummary

  func printText() {
    let s = summary
    for w in s.warnings { warn("warning: \(w)") }
    print(
      "session \(s.sessionId): \(s.status)\(s.reason.map { " — \($0)" } ?? "")")
    print(
      "  patient \(s.patient), \(s.area), preset \(s.preset)\(s.testPatch ? " (test patch)" : ""), skin type \(s.fitzpatrick)"
    )
    print("  pen \(s.penSerial) (\(s.model))")
    print(
      "  \(String(format: "%.1f", s.durationS)) s of pen time, \(s.passes) \(s.passes == 1 ? "pass" : "passes") at \(fmt(s.depthMm)) mm, \(fmt(s.speedHz)) Hz"
        + (s.rfEnergyPerPinMj > 0 ? ", \(fmt(s.rfEnergyPerPinMj)) mJ/pin" : ""))
    if s.rfEnergyPerPinMj > 0 {
      print(
        "  RF delivered \(fmt(s.deliveredRfMj / 1000)) J; \(fmt(s.remainingRfMj / 1000)) J left of the area's cap"
      )
    }
    if let report = s.report { print("  report: \(report)") }
    print("  records: \(s.database)")
  }
}
