import ArgumentParser
import Foundation
import PenClinic
import PenWire

/// Where the records live, and who is writing them.
struct StoreOptions: ParsableArguments {
  @Option(
    help: ArgumentHelp(
      "The records database (default: records.sqlite in $PENCONTROL_DATA, or $XDG_DATA_HOME/pencontrol, or ~/.local/share/pencontrol).",
      valueName: "path"))
  var db: String?

  @Option(help: "Who is operating, for the audit log (default: the system user).")
  var `operator`: String?

  var path: URL {
    db.map { URL(fileURLWithPath: $0) } ?? RecordsStore.defaultPath()
  }

  /// The data directory: the database's folder when --db is given (so a test or demo that
  /// names a temporary database keeps its simulated pens beside it), else the default.
  var dataDirectory: URL {
    db == nil ? RecordsStore.dataDirectory() : path.deletingLastPathComponent()
  }

  var actor: String {
    `operator` ?? ProcessInfo.processInfo.environment["USER"] ?? NSUserName()
  }

  /// Opens the store, closing as aborted any session a process left in progress when it ended.
  func open(reportRecoveryTo output: (String) -> Void = { warn($0) }) throws(CLIError)
    -> RecordsStore
  {
    do {
      let store = try RecordsStore(path: path, actor: actor)
      for r in try store.recoverInterrupted() {
        output(
          "recovered session \(r.id) (patient \(r.patient), \(r.area.catalogueName)): the process ended before it was closed; closed as aborted with \(fmt(r.delivered.value)) mJ delivered (last of \(r.samples) saved samples)"
        )
      }
      return store
    } catch {
      throw CLIError(error.description, code: Self.code(for: error))
    }
  }

  static func code(for error: RecordsError) -> Int32 {
    switch error.kind {
    case .invalidInput, .notADatabase, .notARecordsStore, .newerSchema, .notFound:
      ExitStatus.badInput
    default: ExitStatus.internalError
    }
  }
}

/// Prints a note on standard error (progress and warnings never mix with --json output).
func warn(_ message: String) {
  FileHandle.standardError.write(Data("\(message)\n".utf8))
}

/// A session as `records list` and `report` print it.
struct SessionSummary: Encodable {
  var id: Int64
  var patient: String
  var area: String
  var preset: String
  var penSerial: String?
  var model: String?
  var fitzpatrick: Int
  var testPatch: Bool
  var status: String
  var reason: String?
  var startedAt: String
  var endedAt: String?
  var deliveredRfMj: Double
  var passes: Int?
  var overrideReason: String?

  init(_ r: SessionRecord) {
    id = r.id
    patient = r.start.patient
    area = "\(r.start.area.catalogueName)"
    preset = r.start.presetID
    penSerial = r.start.penSerial
    model = r.start.model.map { "\($0.catalogueName)" }
    fitzpatrick = Int(r.start.fitzpatrick.rawValue)
    testPatch = r.start.isTestPatch
    status = r.status.rawValue
    reason = r.reason
    startedAt = ISO8601DateFormatter().string(from: r.startedAt)
    endedAt = r.endedAt.map { ISO8601DateFormatter().string(from: $0) }
    deliveredRfMj = r.delivered.value
    passes = r.passes
    overrideReason = r.start.overrideReason
  }
}

/// `penctl records`: what the records store holds.
struct RecordsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "records", abstract: "List treatment sessions and calibrations.",
    subcommands: [RecordsList.self, RecordsCalibrations.self], defaultSubcommand: RecordsList.self)
}

struct RecordsList: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "list", abstract: "List treatment sessions, newest first.")

  @OptionGroup var store: StoreOptions
  @Option(help: "Only this patient's sessions.") var patient: String?
  @Option(help: "Only sessions on this area (with --patient).") var area: String?
  @Option(help: "At most this many sessions.") var limit: Int = 50
  @Flag(help: "Print JSON instead of text.") var json = false

  func run() throws {
    do {
      // The options are checked before the records are opened: a bad one changes nothing.
      if area != nil && patient == nil {
        throw CLIError("--area needs --patient", code: ExitStatus.usage)
      }
      let areaID = try area.map { (a) throws(CLIError) in try parseArea(a) }
      let records = try store.open()
      var sessions: [SessionRecord]
      if let patient {
        sessions = try records.sessions(patient: patient, area: areaID).reversed()
      } else {
        sessions = try records.listSessions(limit: limit)
      }
      sessions = Array(sessions.prefix(limit))
      let rows = sessions.map(SessionSummary.init)
      if json {
        try JSONOutput.print(["sessions": rows])
        return
      }
      if rows.isEmpty {
        print("No sessions recorded in \(store.path.path).")
        return
      }
      print(
        Table.render(
          header: ["id", "started", "patient", "area", "preset", "status", "RF mJ", "passes"],
          rows: rows.map { r in
            [
              "\(r.id)", String(r.startedAt.prefix(16)), r.patient, r.area, r.preset, r.status,
              fmt(r.deliveredRfMj), r.passes.map(String.init) ?? "-",
            ]
          }))
    } catch let error as CLIError {
      fail(error, json: json)
    } catch let error as RecordsError {
      fail(CLIError(error.description, code: StoreOptions.code(for: error)), json: json)
    }
  }
}

struct RecordsCalibrations: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "calibrations", abstract: "List a pen's calibrations, newest first.")

  @OptionGroup var store: StoreOptions
  @Argument(help: "The pen's serial.") var serial: String
  @Flag(help: "Print JSON instead of text.") var json = false

  struct Row: Encodable {
    var id: Int64?
    var serial: String
    var source: String
    var at: String
    var technician: UInt32
    var depthGain: Double
    var depthOffsetMm: Double
    var speedGain: Double
    var rfGain: Double
    var depthErrorUm: Double
    var speedErrorPercent: Double
    var rfErrorPercent: Double?
    var passed: Bool
    var markedBad: Bool
  }

  func run() throws {
    do {
      let records = try store.open()
      let rows = try records.calibrations(serial: serial).reversed().map { c in
        Row(
          id: c.id, serial: c.serial, source: "\(c.source)",
          at: ISO8601DateFormatter().string(from: c.at), technician: c.technicianID,
          depthGain: c.depthGain, depthOffsetMm: c.depthOffset.value, speedGain: c.speedGain,
          rfGain: c.rfGain, depthErrorUm: c.after.depthMicrometres,
          speedErrorPercent: c.after.speedPercent, rfErrorPercent: c.after.rfPercent,
          passed: c.passed, markedBad: c.markedBad)
      }
      if json {
        try JSONOutput.print(["calibrations": rows])
        return
      }
      if rows.isEmpty {
        print("No calibrations recorded for \(serial).")
        return
      }
      print(
        Table.render(
          header: [
            "id", "at", "source", "depth gain", "offset mm", "speed gain", "rf gain", "result",
          ],
          rows: rows.map { r in
            [
              r.id.map(String.init) ?? "-", String(r.at.prefix(16)), r.source,
              String(format: "%.4f", r.depthGain), String(format: "%+.3f", r.depthOffsetMm),
              String(format: "%.4f", r.speedGain), String(format: "%.4f", r.rfGain),
              r.markedBad ? "marked bad" : (r.passed ? "passed" : "failed"),
            ]
          }))
    } catch let error as CLIError {
      fail(error, json: json)
    } catch let error as RecordsError {
      fail(CLIError(error.description, code: StoreOptions.code(for: error)), json: json)
    }
  }
}

/// `penctl audit verify`: walk the hash chain.
struct AuditCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "audit", abstract: "Check the records' append-only audit log.",
    subcommands: [AuditVerify.self], defaultSubcommand: AuditVerify.self)
}

struct AuditVerify: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "verify",
    abstract: "Recompute the audit log's hash chain; report any edited or deleted entry.",
    discussion: "Exit code 0 when the chain verifies, 65 when it does not.")

  @OptionGroup var store: StoreOptions
  @Flag(help: "Print JSON instead of text.") var json = false

  struct Report: Encodable {
    struct Problem: Encodable {
      var kind: String
      var entryId: Int64?
      var message: String
    }
    var ok: Bool
    var entriesChecked: Int
    var headCount: Int64?
    var headHash: String?
    var problems: [Problem]
  }

  func run() throws {
    do {
      let records = try store.open()
      let audit = try records.verifyAudit()
      let report = Report(
        ok: audit.ok, entriesChecked: audit.entriesChecked, headCount: audit.head?.count,
        headHash: audit.head?.lastHash,
        problems: audit.problems.map {
          .init(kind: $0.kind.rawValue, entryId: $0.entryID, message: $0.message)
        })
      if json {
        try JSONOutput.print(report)
      } else if audit.ok {
        print(
          "audit log verified: \(audit.entriesChecked) entries, head \(audit.head?.lastHash.prefix(16) ?? "-")…"
        )
      } else {
        for p in audit.problems { print(p.description) }
        print("audit log does NOT verify: \(audit.problems.count) problem(s)")
      }
      if !audit.ok { throw ExitCode(ExitStatus.badInput) }
    } catch let error as CLIError {
      fail(error, json: json)
    } catch let error as RecordsError {
      fail(CLIError(error.description, code: StoreOptions.code(for: error)), json: json)
    }
  }
}

/// Every treatment area (not `none`), in catalogue order.
let treatmentAreas: [TreatmentAreaID] = (1...UInt8.max).lazy.map(TreatmentAreaID.init(rawValue:))
  .prefix { $0 != nil }.compactMap { $0 }

/// A treatment area by its Firmware-Specs id (`forehead`, `jawline_chin`, …).
func parseArea(_ text: String) throws(CLIError) -> TreatmentAreaID {
  if let area = treatmentAreas.first(where: { "\($0.catalogueName)" == text }) { return area }
  throw CLIError(
    "unknown treatment area '\(text)': the areas are \(treatmentAreas.map { "\($0.catalogueName)" }.joined(separator: ", "))",
    code: ExitStatus.usage)
}
