import Foundation
import GRDB
import PenClinic
import Testing

/// One malformed input to one entry point of penctl, and what penctl must say about it.
struct BadInput: Sendable, CustomTestStringConvertible {
  /// How much of the workspace must be left as it was.
  enum Untouched: Sendable {
    /// Every file, byte for byte: the input was refused before anything was opened.
    case everyByte
    /// Every file but the database byte for byte, and the database's records and audit head
    /// unchanged. For inputs that only the records can show to be wrong (a session id that does
    /// not exist): opening an SQLite store in WAL mode writes its journal even to read.
    case records
  }

  var name: String
  /// penctl's arguments; `{db}` is the workspace's database, `{dir}` the workspace.
  var arguments: [String]
  var code: Int32
  /// Each of these must appear in the message: what was wrong, and the offending value.
  var mentions: [String]
  var untouched: Untouched = .everyByte
  /// SQLite's own side files (`-shm`, and an empty `-wal`) may appear beside this database: the
  /// read-only connection that finds a store too new to open creates them, as any reader of a
  /// WAL database does. The database file itself stays byte for byte.
  var sideFilesAllowed = false
  /// Puts a bad file in place before the run (a preset file, a database, a pen's state file).
  var prepare: (@Sendable (URL) throws -> Void)? = nil

  var testDescription: String { name }

  func resolved(in dir: URL) -> [String] {
    arguments.map {
      $0.replacingOccurrences(of: "{db}", with: dir.appendingPathComponent("records.sqlite").path)
        .replacingOccurrences(of: "{dir}", with: dir.path)
    }
  }
}

/// A folder holding what a bad input must not change: a records store with two sessions and
/// the state files of both simulated pens.
struct BadInputWorkspace: Sendable {
  let template: URL
  let sessions: Int
  let head: AuditHead

  static let shared: Result<BadInputWorkspace, any Error> = Result { try make() }

  static func make() throws -> BadInputWorkspace {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "penctl-badinput-template-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let db = dir.appendingPathComponent("records.sqlite").path
    for arguments in [
      ["--patient", "P-TEMPLATE-1", "--sim-model", "mn100"],
      ["--patient", "P-TEMPLATE-2", "--sim-model", "rf200", "--fitzpatrick", "2", "--test-patch"],
    ] {
      let result = try PenCtlProcess.run(
        ["treat", "--area", "forehead", "--sim", "--duration", "1", "--db", db] + arguments)
      guard result.status == 0 else {
        throw CLIFailure(text: "the template session did not run: \(result.stderr)")
      }
    }
    let store = try RecordsStore(path: URL(fileURLWithPath: db), actor: "test")
    let sessions = try store.listSessions(limit: 100).count
    guard let head = try store.auditHead() else {
      throw CLIFailure(text: "the template store has no audit head")
    }
    return BadInputWorkspace(template: dir, sessions: sessions, head: head)
  }

  /// A fresh copy of the template for one case.
  func copy() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "penctl-badinput-\(UUID().uuidString)")
    try FileManager.default.copyItem(at: template, to: dir)
    return dir
  }

  /// Every file and folder under `dir`, by relative path, with its bytes.
  static func snapshot(_ dir: URL) throws -> [String: Data] {
    var files: [String: Data] = [:]
    let manager = FileManager.default
    for case let relative as String in manager.enumerator(atPath: dir.path) ?? .init() {
      let url = dir.appendingPathComponent(relative)
      var isDirectory: ObjCBool = false
      _ = manager.fileExists(atPath: url.path, isDirectory: &isDirectory)
      files[relative] = isDirectory.boolValue ? Data("<folder>".utf8) : try Data(contentsOf: url)
    }
    return files
  }
}

struct CLIFailure: Error, CustomStringConvertible {
  var text: String
  var description: String { text }
}

/// Bad inputs at every entry point of penctl: each gets a clear message (what was wrong, the
/// value) with the right exit code, and changes nothing — no file, no session, no audit entry,
/// no pen state.
@Suite("penctl bad input")
struct BadInputTests {
  static let treat = [
    "treat", "--area", "forehead", "--patient", "P-BAD-1", "--sim", "--sim-model", "mn100",
    "--duration", "1", "--db", "{db}",
  ]
  static let calibrate = ["calibrate", "all", "--sim", "--sim-model", "mn100", "--db", "{db}"]

  /// `treat` with `option` set to `value` (replacing it when the base already has it).
  static func treat(_ option: String, _ value: String) -> [String] {
    var arguments = treat
    if let i = arguments.firstIndex(of: option) {
      arguments[i + 1] = value
    } else {
      arguments += [option, value]
    }
    return arguments
  }

  static let arguments: [BadInput] = [
    BadInput(
      name: "an unknown area", arguments: treat("--area", "scalp"), code: 64,
      mentions: ["unknown treatment area 'scalp'", "forehead, periorbital"]),
    BadInput(
      name: "a patient id with a space (a name)", arguments: treat("--patient", "Jane Doe"),
      code: 64, mentions: ["patient id \"Jane Doe\"", "A-Z a-z 0-9 . _ -", "never a name"]),
    BadInput(
      name: "a patient id with '@' (an e-mail address)",
      arguments: treat("--patient", "jane@example.com"), code: 64,
      mentions: ["patient id \"jane@example.com\"", "e-mail"]),
    BadInput(
      name: "an empty patient id", arguments: treat("--patient", ""), code: 64,
      mentions: ["patient id \"\" is empty"]),
    BadInput(
      name: "a patient id of 200 characters",
      arguments: treat("--patient", String(repeating: "P", count: 200)), code: 64,
      mentions: ["has 200 characters, more than 64"]),
    BadInput(
      name: "Fitzpatrick type 0", arguments: treat("--fitzpatrick", "0"), code: 64,
      mentions: ["--fitzpatrick '0'", "not a skin type", "1 to 6"]),
    BadInput(
      name: "Fitzpatrick type 7", arguments: treat("--fitzpatrick", "7"), code: 64,
      mentions: ["--fitzpatrick '7'", "not a skin type", "1 to 6"]),
    BadInput(
      name: "Fitzpatrick type x", arguments: treat("--fitzpatrick", "x"), code: 64,
      mentions: ["'x'", "--fitzpatrick"]),
    BadInput(
      name: "depth nan", arguments: treat("--depth", "nan"), code: 64,
      mentions: ["--depth 'nan'", "not a finite number", "at most 10"]),
    BadInput(
      name: "depth -1", arguments: treat("--depth", "-1"), code: 64,
      mentions: ["--depth '-1'", "no sign", "at most 10"]),
    BadInput(
      name: "depth abc", arguments: treat("--depth", "abc"), code: 64,
      mentions: ["'abc'", "--depth"]),
    BadInput(
      name: "depth 1e309 (infinite)", arguments: treat("--depth", "1e309"), code: 64,
      mentions: ["--depth '1e309'", "exponents are not accepted"]),
    BadInput(
      name: "speed -100", arguments: treat("--speed", "-100"), code: 64,
      mentions: ["--speed '-100'", "no sign", "at most 1000"]),
    BadInput(
      name: "duration 0", arguments: treat("--duration", "0"), code: 64,
      mentions: ["--duration 0", "0-3600 s"]),
    BadInput(
      name: "duration -5", arguments: treat("--duration", "-5"), code: 64,
      mentions: ["--duration -5", "0-3600 s"]),
    BadInput(
      name: "duration 99999", arguments: treat("--duration", "99999"), code: 64,
      mentions: ["--duration 99999", "0-3600 s"]),
    BadInput(
      name: "an unknown fault", arguments: treat("--fault", "meteor-strike@2s"), code: 64,
      mentions: ["unknown fault 'meteor-strike'", "rf-stuck-on"]),
    BadInput(
      name: "a fault without @time", arguments: treat("--fault", "rf-stuck-on"), code: 64,
      mentions: ["--fault rf-stuck-on", "has no time", "NAME@TIME"]),
    BadInput(
      name: "a fault at a time that is no time", arguments: treat("--fault", "rf-stuck-on@soon"),
      code: 64, mentions: ["bad time 'soon'"]),
    BadInput(
      name: "an unknown contraindication", arguments: treat("--contraindication", "sunburn"),
      code: 64, mentions: ["unknown contraindication 'sunburn'", "active_acne"]),
    BadInput(
      name: "an unknown preset id", arguments: treat("--preset", "forehead-laser"), code: 65,
      mentions: ["no preset 'forehead-laser'", "forehead-mechanical"]),
    BadInput(
      name: "a preset of another area", arguments: treat("--preset", "neck-mechanical"),
      code: 65, mentions: ["preset neck-mechanical is for neck, not forehead"]),
    BadInput(
      name: "an unknown simulated pen model", arguments: treat("--sim-model", "mn300"),
      code: 64, mentions: ["unknown pen model 'mn300'", "mn100 and rf200"]),
    BadInput(
      name: "a JSON error report for a bad skin type",
      arguments: treat("--fitzpatrick", "9") + ["--json"], code: 64,
      mentions: ["--fitzpatrick '9'", "not a skin type"]),
    BadInput(
      name: "calibrate: a service key of the wrong length",
      arguments: calibrate + ["--service-key", "abcd"], code: 64,
      mentions: ["--service-key has 4 characters", "64 hex digits"]),
    BadInput(
      name: "calibrate: a service key that is not hexadecimal",
      arguments: calibrate + [
        "--service-key",
        String(repeating: "0", count: 40) + "xyz" + String(repeating: "0", count: 21),
      ],
      code: 64, mentions: ["--service-key is not hexadecimal at position 41"]),
    BadInput(
      name: "calibrate: an unknown scope",
      arguments: ["calibrate", "needles", "--sim", "--sim-model", "mn100", "--db", "{db}"],
      code: 64, mentions: ["unknown calibration 'needles'", "depth, speed, rf or all"]),
    BadInput(
      name: "calibrate: technician 0", arguments: calibrate + ["--technician", "0"], code: 64,
      mentions: ["--technician 0"]),
    BadInput(
      name: "records list: --area without --patient",
      arguments: ["records", "list", "--area", "forehead", "--db", "{db}"], code: 64,
      mentions: ["--area needs --patient"]),
    BadInput(
      name: "records list: an unknown area",
      arguments: [
        "records", "list", "--patient", "P-TEMPLATE-1", "--area", "scalp", "--db", "{db}",
      ],
      code: 64, mentions: ["unknown treatment area 'scalp'"]),
    BadInput(
      name: "report: a session id that is not a number",
      arguments: ["report", "first", "--db", "{db}"], code: 64, mentions: ["'first'"]),
    BadInput(
      name: "report: a session that does not exist", arguments: ["report", "999", "--db", "{db}"],
      code: 65, mentions: ["no session 999"], untouched: .records),
    BadInput(
      name: "info: neither a serial nor --sim", arguments: ["info"], code: 64,
      mentions: ["give a pen's serial, or --sim"]),
    BadInput(
      name: "spec: a folder without the specs", arguments: ["spec", "--specs", "{dir}/no-specs"],
      code: 65, mentions: ["no-specs/pen-models.json", "cannot read the file"]),
  ]

  @Test("a malformed argument is refused with its value and changes nothing", arguments: arguments)
  func badArgument(_ input: BadInput) throws {
    try Self.check(input)
  }

  // MARK: Preset files

  static func presetFile(_ name: String, _ text: String) -> @Sendable (URL) throws -> Void {
    { dir in try Data(text.utf8).write(to: dir.appendingPathComponent(name)) }
  }

  static let presetHeader = """
    area: forehead
    presets:
      - id: clinic-forehead
        name: Clinic forehead
        kind: mechanical

    """

  static let presetFiles: [BadInput] = [
    BadInput(
      name: "a preset file with a YAML syntax error",
      arguments: treat("--preset", "clinic-forehead") + ["--preset-file", "{dir}/syntax.yaml"],
      code: 65, mentions: ["syntax.yaml:7:", "not valid YAML"],
      prepare: presetFile(
        "syntax.yaml",
        presetHeader + """
              depth_mm: {default: 0.5, min: 0.25, max: 0.75
              speed_hz: {default: 100, min: 80, max: 120}

          """)),
    BadInput(
      name: "a preset file with an unknown field",
      arguments: treat("--preset", "clinic-forehead") + ["--preset-file", "{dir}/unknown.yaml"],
      code: 65, mentions: ["unknown.yaml:8:", "presets[0].needle_colour", "unknown field"],
      prepare: presetFile(
        "unknown.yaml",
        presetHeader + """
              depth_mm: {default: 0.5, min: 0.25, max: 0.75}
              speed_hz: {default: 100, min: 80, max: 120}
              needle_colour: blue

          """)),
    BadInput(
      name: "a preset file with a depth above the area's hard limit",
      arguments: treat("--preset", "clinic-forehead") + ["--preset-file", "{dir}/deep.yaml"],
      code: 65, mentions: ["deep.yaml:6:", "presets[0].depth_mm.max", "2.5 mm", "0.75 mm"],
      prepare: presetFile(
        "deep.yaml",
        presetHeader + """
              depth_mm: {default: 0.5, min: 0.25, max: 2.5}
              speed_hz: {default: 100, min: 80, max: 120}

          """)),
    BadInput(
      name: "a preset file that does not exist",
      arguments: treat("--preset-file", "{dir}/missing.yaml"), code: 65,
      mentions: ["missing.yaml:1:", "cannot read the file"]),
  ]

  @Test(
    "a bad preset file is refused with file:line and the value, and nothing is recorded",
    arguments: presetFiles)
  func badPresetFile(_ input: BadInput) throws {
    try Self.check(input)
  }

  // MARK: Databases

  /// Every command that opens the records, with `{db}` for the database.
  static let storeCommands: [[String]] = [
    ["records", "list", "--json", "--db", "{db}"],
    ["audit", "verify", "--db", "{db}"],
    ["report", "1", "--db", "{db}"],
    treat,
    calibrate,
  ]

  static func databaseCases() -> [BadInput] {
    typealias Kind = (
      name: String, file: String, mentions: [String], prepare: @Sendable (URL) throws -> Void
    )
    let kinds: [Kind] = [
      (
        "a text file", "notes.txt", ["notes.txt", "not an SQLite database", "\"Session note"],
        { dir in
          try Data("Session notes: P-1 did well.\n".utf8).write(
            to: dir.appendingPathComponent("notes.txt"))
        }
      ),
      (
        "a store from a newer schema", "newer.sqlite",
        ["newer.sqlite", "newer PenControl", "schema version 2", "up to version 1"],
        { dir in
          let copy = dir.appendingPathComponent("newer.sqlite")
          try FileManager.default.copyItem(
            at: dir.appendingPathComponent("records.sqlite"), to: copy)
          let queue = try DatabaseQueue(path: copy.path)
          try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA user_version = 2") }
          try queue.close()
        }
      ),
      (
        "an empty 0-byte file", "empty.sqlite", ["empty.sqlite", "empty (0 bytes)"],
        { dir in try Data().write(to: dir.appendingPathComponent("empty.sqlite")) }
      ),
      (
        "a folder", "folder.sqlite", ["folder.sqlite", "folder"],
        { dir in
          try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("folder.sqlite"), withIntermediateDirectories: false)
        }
      ),
    ]
    var cases: [BadInput] = []
    for kind in kinds {
      for command in storeCommands {
        cases.append(
          BadInput(
            name: "\(kind.name) as --db of \(command.prefix(2).joined(separator: " "))",
            arguments: command.map { $0 == "{db}" ? "{dir}/\(kind.file)" : $0 }, code: 65,
            mentions: kind.mentions, sideFilesAllowed: kind.file == "newer.sqlite",
            prepare: kind.prepare))
      }
    }
    return cases
  }

  @Test(
    "a database that is not a records store this build can use is refused and left untouched",
    arguments: databaseCases())
  func badDatabase(_ input: BadInput) throws {
    try Self.check(input)
  }

  // MARK: Simulated pens' state files

  static func stateFileCases() -> [BadInput] {
    let state = "sim/SIM-MN100-000001.json"
    let garbage: @Sendable (URL) throws -> Void = { dir in
      try Data("{\"model\": 1, \"serial\": \"SIM-MN100-0".utf8).write(
        to: dir.appendingPathComponent(state))
    }
    let otherSerial: @Sendable (URL) throws -> Void = { dir in
      let url = dir.appendingPathComponent(state)
      let text = try String(contentsOf: url, encoding: .utf8)
      try Data(text.replacingOccurrences(of: "SIM-MN100-000001", with: "SIM-MN100-000002").utf8)
        .write(to: url)
    }
    var cases: [BadInput] = []
    for (name, command) in [("treat", treat), ("calibrate", calibrate)] {
      cases.append(
        BadInput(
          name: "\(name): a pen state file that is not JSON", arguments: command, code: 65,
          mentions: ["SIM-MN100-000001.json", "cannot be read", "--sim-reset"], prepare: garbage))
      cases.append(
        BadInput(
          name: "\(name): a pen state file of another pen", arguments: command, code: 65,
          mentions: ["belongs to SIM-MN100-000002", "not SIM-MN100-000001", "--sim-reset"],
          prepare: otherSerial))
    }
    return cases
  }

  @Test(
    "a simulated pen's state file that is damaged or another pen's is refused and left as it is",
    arguments: stateFileCases())
  func badStateFile(_ input: BadInput) throws {
    try Self.check(input)
  }

  // MARK: The check

  static func check(_ input: BadInput) throws {
    let workspace = try BadInputWorkspace.shared.get()
    let dir = try workspace.copy()
    defer { try? FileManager.default.removeItem(at: dir) }
    try input.prepare?(dir)
    let before = try BadInputWorkspace.snapshot(dir)

    let result = try PenCtlProcess.run(input.resolved(in: dir))

    #expect(result.status == input.code, "exit code; stderr: \(result.stderr)")
    for mention in input.mentions {
      #expect(result.stderr.contains(mention), "the message names \(mention): \(result.stderr)")
    }
    #expect(!result.stderr.contains("Fatal error"), "\(result.stderr)")
    if input.arguments.contains("--json") && result.stderr.hasPrefix("penctl: ") {
      // penctl's own refusals are also reported as JSON, for scripts.
      let report = try #require(
        try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
      #expect((report["exit_code"] as? Int).map(Int32.init) == input.code)
      #expect(report["kind"] as? String == (input.code == 64 ? "usage" : "bad_input"))
      let error = report["error"] as? String ?? ""
      #expect(input.mentions.allSatisfy(error.contains), "\(error)")
    }

    let after = try BadInputWorkspace.snapshot(dir)
    switch input.untouched {
    case .everyByte:
      var appeared = Set(after.keys).subtracting(before.keys)
      if input.sideFilesAllowed {
        appeared = appeared.filter { path in
          !(path.hasSuffix("-shm") || (path.hasSuffix("-wal") && after[path]?.isEmpty == true))
        }
      }
      #expect(appeared.isEmpty, "files appeared: \(appeared.sorted())")
      #expect(Set(before.keys).subtracting(after.keys).isEmpty, "files went")
      for (path, bytes) in before where after[path] != bytes {
        Issue.record("\(path) changed")
      }
    case .records:
      let database = "records.sqlite"
      #expect(
        Set(after.keys).subtracting([database]) == Set(before.keys).subtracting([database]))
      for (path, bytes) in before where path != database && after[path] != bytes {
        Issue.record("\(path) changed")
      }
    }

    // Nothing was recorded: the same sessions and the same audit head, and the chain verifies.
    let store = try RecordsStore(path: dir.appendingPathComponent("records.sqlite"), actor: "test")
    #expect(try store.listSessions(limit: 100).count == workspace.sessions)
    #expect(try store.auditHead() == workspace.head)
    #expect(try store.verifyAudit().ok)
  }
}
