import Foundation
import GRDB
import PenClinic
import PenWire
import Testing

/// The clinic's whole job through the real penctl binary on simulated pens: calibrate, screen,
/// treat, record, report — and the refusals and failures a clinic must be able to rely on.
@Suite("penctl clinic flow")
struct ClinicFlowTests {
  /// A fresh folder for one test's database, simulated pens and reports.
  static func workspace() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "penctl-e2e-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
  }

  static func json(_ text: String) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
  }

  @Test(
    "the demo flow: calibrate, test patch, treat with the forehead preset, records, report, audit")
  func demoFlow() throws {
    let dir = try Self.workspace()
    let db = dir.appendingPathComponent("records.sqlite").path
    let calibrate = try PenCtlProcess.run(["calibrate", "all", "--sim", "--db", db, "--json"])
    #expect(calibrate.status == 0, "\(calibrate.stderr)")
    let cal = try Self.json(calibrate.stdout)
    #expect(cal["passed"] as? Bool == true)
    #expect(FileManager.default.fileExists(atPath: try #require(cal["report"] as? String)))

    let patch = try PenCtlProcess.run([
      "treat", "--area", "forehead", "--patient", "DEMO-0001", "--fitzpatrick", "2",
      "--test-patch", "--sim", "--duration", "8", "--db", db, "--json",
    ])
    #expect(patch.status == 0, "\(patch.stdout) \(patch.stderr)")
    let p = try Self.json(patch.stdout)
    #expect(p["status"] as? String == "completed")
    #expect(p["test_patch"] as? Bool == true)
    #expect((p["delivered_rf_mj"] as? Double ?? 0) > 0, "the RF test patch delivered energy")

    let treat = try PenCtlProcess.run([
      "treat", "--area", "forehead", "--patient", "DEMO-0001", "--sim", "--sim-model", "mn100",
      "--duration", "8", "--db", db, "--json",
    ])
    #expect(treat.status == 0, "\(treat.stdout) \(treat.stderr)")
    let t = try Self.json(treat.stdout)
    #expect(t["status"] as? String == "completed")
    #expect(t["preset"] as? String == "forehead-mechanical")
    #expect((t["passes"] as? Int ?? 0) >= 1)
    let report = try #require(t["report"] as? String)
    let html = try String(contentsOfFile: report, encoding: .utf8)
    #expect(html.contains("<svg") && html.contains("DEMO-0001"))

    let list = try PenCtlProcess.run(["records", "list", "--db", db, "--json"])
    let sessions = try #require(try Self.json(list.stdout)["sessions"] as? [[String: Any]])
    #expect(sessions.count == 2)
    #expect(sessions.allSatisfy { $0["status"] as? String == "completed" })

    let audit = try PenCtlProcess.run(["audit", "verify", "--db", db, "--json"])
    #expect(audit.status == 0, "\(audit.stdout)")
    #expect(try Self.json(audit.stdout)["ok"] as? Bool == true)
  }

  @Test(
    "a periorbital treatment asking for more depth than the area allows is refused, with the limit")
  func periorbitalTooDeep() throws {
    let db = try Self.workspace().appendingPathComponent("r.sqlite").path
    let result = try PenCtlProcess.run([
      "treat", "--area", "periorbital", "--patient", "P-1", "--sim", "--sim-model", "mn100",
      "--depth", "0.8", "--confirm", "--db", db, "--json",
    ])
    #expect(result.status == 66)
    let error = try #require(try Self.json(result.stdout)["error"] as? String)
    #expect(error.contains("0.8 mm") && error.contains("0.5 mm") && error.contains("periorbital"))
    let list = try Self.json(
      try PenCtlProcess.run(["records", "list", "--db", db, "--json"]).stdout)
    let sessions = try #require(list["sessions"] as? [[String: Any]])
    #expect(sessions.first?["status"] as? String == "refused", "the refusal is recorded")
  }

  @Test("an RF preset on a mechanical pen is refused, naming both")
  func rfPresetOnMechanicalPen() throws {
    let db = try Self.workspace().appendingPathComponent("r.sqlite").path
    let result = try PenCtlProcess.run([
      "treat", "--area", "forehead", "--preset", "forehead-rf", "--patient", "P-2", "--sim",
      "--sim-model", "mn100", "--db", db,
    ])
    #expect(result.status == 66)
    #expect(result.stderr.contains("forehead-rf") && result.stderr.contains("mn100"))
  }

  @Test("a session two weeks after the last on the same area is refused without an override")
  func tooSoon() throws {
    let dir = try Self.workspace()
    let path = dir.appendingPathComponent("r.sqlite")
    // The previous forehead session, fourteen days ago.
    do {
      let fourteenDaysAgo = Date().addingTimeInterval(-14 * 86_400)
      let store = try RecordsStore(path: path, actor: "test", now: { fourteenDaysAgo })
      _ = try store.upsertDevice(
        DeviceIdentity(serial: "SIM-MN100-000001", model: .mn100, firmware: "1.0.0"))
      let id = try store.beginSession(
        SessionStart(
          patient: "P-3", area: .forehead, presetID: "forehead-mechanical",
          penSerial: "SIM-MN100-000001", model: .mn100, fitzpatrick: .typeII))
      try store.finishSession(
        id: id, outcome: .completed, reason: nil, delivered: .zero, passes: 4)
    }
    let base = [
      "treat", "--area", "forehead", "--patient", "P-3", "--fitzpatrick", "2", "--sim",
      "--sim-model", "mn100", "--duration", "3", "--db", path.path,
    ]
    let refused = try PenCtlProcess.run(base)
    #expect(refused.status == 66)
    #expect(refused.stderr.contains("14 days ago") && refused.stderr.contains("28 days"))
    let elsewhere = try PenCtlProcess.run(
      base.map { $0 == "forehead" ? "cheeks" : $0 } + ["--json"])
    #expect(elsewhere.status == 0, "another area is not affected: \(elsewhere.stdout)")
    let overridden = try PenCtlProcess.run(
      base + ["--override-reason", "scar revision agreed with the patient", "--json"])
    #expect(overridden.status == 0, "\(overridden.stdout)")
  }

  @Test("SR-019: a pen whose memory holds no calibration record cannot be armed")
  func uncalibratedPenCannotArm() throws {
    let dir = try Self.workspace()
    let db = dir.appendingPathComponent("r.sqlite").path
    let args = [
      "treat", "--area", "forehead", "--patient", "P-4", "--sim", "--sim-model", "mn100",
      "--duration", "2", "--db", db,
    ]
    #expect(try PenCtlProcess.run(args).status == 0, "calibrated from the factory, it treats")
    // The pen's non-volatile memory loses its record.
    let state = dir.appendingPathComponent("sim/SIM-MN100-000001.json")
    var nvm = try Self.json(String(contentsOf: state, encoding: .utf8))
    nvm["calibrationRecord"] = NSNull()
    try JSONSerialization.data(withJSONObject: nvm).write(to: state)
    let refused = try PenCtlProcess.run(
      args.map { $0 == "P-4" ? "P-5" : $0 })
    #expect(refused.status == 66)
    #expect(refused.stderr.contains("calibration_invalid"), "\(refused.stderr)")
  }

  @Test("the audit chain finds an edited row, naming the entry")
  func auditFindsEditedRow() throws {
    let db = try Self.workspace().appendingPathComponent("r.sqlite").path
    let treat = try PenCtlProcess.run([
      "treat", "--area", "neck", "--patient", "P-6", "--sim", "--sim-model", "mn100",
      "--duration", "2", "--db", db,
    ])
    #expect(treat.status == 0, "\(treat.stderr)")
    #expect(try PenCtlProcess.run(["audit", "verify", "--db", db]).status == 0)
    // Someone with the file edits an entry behind the store's back.
    let queue = try DatabaseQueue(path: db)
    let edited = try queue.write { db -> Int64 in
      let triggers = try String.fetchAll(
        db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'")
      for t in triggers { try db.execute(sql: "DROP TRIGGER \(t)") }
      let id = try #require(
        try Int64.fetchOne(
          db, sql: "SELECT id FROM audit_log WHERE action = 'session.begin' ORDER BY id LIMIT 1"))
      try db.execute(
        sql: "UPDATE audit_log SET detail = replace(detail, 'neck', 'forehead') WHERE id = ?",
        arguments: [id])
      return id
    }
    let verify = try PenCtlProcess.run(["audit", "verify", "--db", db, "--json"])
    #expect(verify.status == 65)
    let report = try Self.json(verify.stdout)
    #expect(report["ok"] as? Bool == false)
    let problems = try #require(report["problems"] as? [[String: Any]])
    #expect(problems.contains { ($0["entry_id"] as? Int).map(Int64.init) == edited })
  }

  @Test(
    "a treatment killed mid-session leaves a database that opens, verifies and closes it as aborted"
  )
  func killedMidSession() throws {
    let dir = try Self.workspace()
    let db = dir.appendingPathComponent("r.sqlite").path
    let process = Process()
    process.executableURL = PenCtlProcess.binary
    process.arguments = [
      "treat", "--area", "forehead", "--patient", "P-7", "--fitzpatrick", "2", "--test-patch",
      "--sim", "--duration", "3600", "--db", db,
    ]
    let err = Pipe()
    process.standardError = err
    process.standardOutput = Pipe()
    try process.run()
    // Wait, by reading its output (no clock), until it has saved samples and printed status.
    var seen = ""
    while seen.components(separatedBy: "/3600 s").count <= 3 {
      let chunk = err.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      seen += String(decoding: chunk, as: UTF8.self)
    }
    #expect(seen.contains("session 1 started"), "\(seen)")
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    #expect(process.terminationReason == .uncaughtSignal)

    // The next command recovers the session.
    let list = try PenCtlProcess.run(["records", "list", "--db", db, "--json"])
    #expect(list.status == 0, "\(list.stderr)")
    #expect(list.stderr.contains("recovered session 1"))
    let sessions = try #require(try Self.json(list.stdout)["sessions"] as? [[String: Any]])
    let session = try #require(sessions.first)
    #expect(session["status"] as? String == "aborted")
    #expect((session["reason"] as? String ?? "").contains("interrupted"))
    let store = try RecordsStore(path: URL(fileURLWithPath: db), actor: "test")
    let samples = try store.samples(session: 1)
    #expect(samples.count >= 10, "samples were saved before the kill")
    #expect(session["delivered_rf_mj"] as? Double == samples.last?.delivered.value)
    #expect(try PenCtlProcess.run(["audit", "verify", "--db", db]).status == 0)
  }
}
