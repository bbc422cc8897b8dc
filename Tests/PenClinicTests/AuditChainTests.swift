import Foundation
import GRDB
import PenWire
import Testing

@testable import PenClinic

@Suite("Audit chain")
struct AuditChainTests {
  typealias F = RecordsFixtures

  /// A store with a mix of every kind of write: migration, pens, calibration, patients, a
  /// finished, a refused and a recovered session. Returns the file and the store.
  static func populated() throws -> (URL, RecordsStore) {
    let file = try F.storeFile()
    let clock = ManualClock()
    do {
      let crashed = try RecordsStore(path: file, actor: "dr-lee", now: clock.now)
      try crashed.upsertDevice(F.rfPen)
      let id = try crashed.beginSession(F.start(patient: "P-9"))
      try crashed.appendSamples(session: id, [F.sample(100, delivered: 2)])
    }
    let store = try RecordsStore(path: file, actor: "alice", now: clock.now)
    try store.upsertDevice(F.mnPen)
    clock.advance(seconds: 1)
    try store.addCalibration(F.calibration(at: clock.now()))
    try store.ensurePatient("P-1")
    let id = try store.beginSession(F.start(patient: "P-1"))
    try store.appendSamples(
      session: id, (0..<20).map { F.sample(UInt64($0) * 100, delivered: Double($0)) })
    clock.advance(seconds: 300)
    try store.finishSession(
      id: id, outcome: .completed, reason: nil, delivered: Millijoules(19.5), passes: 3)
    try store.recordRefusedSession(F.start(patient: "P-2"), reason: "active acne in the area")
    try store.recoverInterrupted()
    return (file, store)
  }

  static func tamper(_ file: URL, _ sql: String) throws {
    let raw = try F.raw(file)
    try raw.writeWithoutTransaction { db in try db.execute(sql: sql) }
    try raw.close()
  }

  static let dropTriggers = """
    DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;
    DROP TRIGGER audit_head_no_delete; DROP TRIGGER audit_head_advance_only;
    """

  @Test("records.md's worked example: the first two entries hash to the documented values")
  func documentedVector() throws {
    let clock = ManualClock()
    let store = try RecordsStore(path: try F.storeFile(), actor: "alice", now: clock.now)
    clock.advance(seconds: 1)
    try store.ensurePatient("P-000123")
    let entries = try store.auditEntries().reversed().map { $0 }
    #expect(entries.count == 2)
    #expect(entries[0].at == "2026-01-01T00:00:00.000Z")
    #expect(entries[0].detail == #"{"migration":"v1","user_version":1}"#)
    #expect(entries[0].prevHash == String(repeating: "0", count: 64))
    #expect(entries[0].hash == "3259443dd7d7a69fdf9982f6fa1bbffe82f4d5555ae16e54bdb6972000ad1ecb")
    #expect(entries[1].at == "2026-01-01T00:00:01.000Z")
    #expect(entries[1].detail == "{}")
    #expect(entries[1].prevHash == entries[0].hash)
    #expect(entries[1].hash == "13cde764db38665a3adb3bc36c86444782b7a5de626e32b9d31bf12c10110eea")
    #expect(
      try store.auditHead()
        == AuditHead(
          count: 2, lastHash: "13cde764db38665a3adb3bc36c86444782b7a5de626e32b9d31bf12c10110eea"))
  }

  @Test("the encoding is length-prefixed, so moving bytes between fields changes the hash")
  func encodingIsUnambiguous() {
    let a = AuditChain.hash(
      id: 1, at: "t", actor: "ab", action: "c", subject: "s", detail: "{}", prevHash: "0")
    let b = AuditChain.hash(
      id: 1, at: "t", actor: "a", action: "bc", subject: "s", detail: "{}", prevHash: "0")
    #expect(a != b)
    let empty = AuditChain.encoding(
      id: 258, at: "", actor: "", action: "", subject: "", detail: "", prevHash: "")
    let header: [UInt8] = Array("PCAUDIT1".utf8) + [0, 0, 0, 0, 0, 0, 1, 2]
    #expect(Array(empty.prefix(16)) == header)
    // Six empty fields: six four-byte zero lengths.
    #expect(empty.count == 16 + 6 * 4)
  }

  @Test("details are canonical JSON: sorted keys, no spaces, minimal escapes")
  func canonicalDetail() throws {
    let value: RecordJSON = [
      "z": 1, "a": ["b": true, "a": .null], "m": "line\n\"q\"\u{01}é", "d": 0.1, "e": 2.0,
    ]
    #expect(
      value.canonicalText
        == #"{"a":{"a":null,"b":true},"d":0.1,"e":2,"m":"line\n\"q\"\u0001é","z":1}"#)
    #expect(try RecordJSON(parsing: value.canonicalText).canonicalText == value.canonicalText)
  }

  @Test("the chain verifies after a mix of writes, covering every entry")
  func chainVerifies() throws {
    let (_, store) = try Self.populated()
    let report = try store.verifyAudit()
    #expect(report.ok, "\(report.problems)")
    let actions = Set(try store.auditEntries(limit: 1000).map(\.action))
    #expect(
      actions == [
        "schema.migrate", "device.upsert", "patient.create", "session.begin", "calibration.add",
        "session.finish", "session.refuse", "session.recover",
      ])
    #expect(report.entriesChecked == Int(try #require(report.head).count))
    #expect(report.entriesChecked == 12)
  }

  @Test("the triggers make a plain UPDATE or DELETE of the audit log fail")
  func triggersBlockChanges() throws {
    let (file, store) = try Self.populated()
    let raw = try F.raw(file)
    for sql in [
      "UPDATE audit_log SET detail = '{}' WHERE id = 3",
      "DELETE FROM audit_log WHERE id = 3",
      "DELETE FROM audit_log",
      "DELETE FROM audit_head",
      "UPDATE audit_head SET count = count - 1",
    ] {
      do {
        try raw.write { db in try db.execute(sql: sql) }
        Issue.record("\(sql) succeeded")
      } catch let error as DatabaseError {
        #expect(error.resultCode == .SQLITE_CONSTRAINT, "\(sql)")
        #expect(error.message?.contains("audit_") == true, "\(sql): \(error)")
      }
    }
    #expect(try store.verifyAudit().ok)
  }

  @Test("an edited entry is detected and named")
  func editIsDetected() throws {
    let (file, store) = try Self.populated()
    try Self.tamper(
      file,
      "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET detail = '{\"x\":1}' WHERE id = 5")
    let report = try store.verifyAudit()
    #expect(!report.ok)
    #expect(report.firstProblem?.kind == .edited)
    #expect(report.firstProblem?.entryID == 5)
    #expect(report.firstProblem?.description.contains("audit entry 5") == true)
    #expect(report.problems.contains { $0.kind == .triggersMissing })
  }

  @Test("an edited entry whose hash was recomputed breaks the link to the next entry")
  func rehashedEditIsDetected() throws {
    let (file, store) = try Self.populated()
    let entry = try #require(try store.auditEntries(limit: 100).first { $0.id == 4 })
    let forged = AuditChain.hash(
      id: 4, at: entry.at, actor: "mallory", action: entry.action, subject: entry.subject,
      detail: entry.detail, prevHash: entry.prevHash)
    try Self.tamper(
      file,
      """
      DROP TRIGGER audit_log_no_update;
      UPDATE audit_log SET actor = 'mallory', hash = '\(forged)' WHERE id = 4
      """)
    let report = try store.verifyAudit()
    #expect(report.firstProblem?.kind == .chainBroken)
    #expect(report.firstProblem?.entryID == 5)
  }

  @Test("a deleted middle entry is detected as a gap")
  func middleDeletionIsDetected() throws {
    let (file, store) = try Self.populated()
    try Self.tamper(file, "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE id = 6")
    let report = try store.verifyAudit()
    #expect(report.firstProblem?.kind == .deleted)
    #expect(report.firstProblem?.entryID == 6)
    #expect(report.entriesChecked == 11)
  }

  @Test("deleting the first entry is detected")
  func firstDeletionIsDetected() throws {
    let (file, store) = try Self.populated()
    try Self.tamper(file, "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE id = 1")
    #expect(try store.verifyAudit().firstProblem?.kind == .deleted)
    #expect(try store.verifyAudit().firstProblem?.entryID == 1)
  }

  @Test("deleting the newest entries is detected by the head")
  func truncationIsDetected() throws {
    let (file, store) = try Self.populated()
    try Self.tamper(
      file, "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE id >= 10")
    let report = try store.verifyAudit()
    let truncated = try #require(report.problems.first { $0.kind == .truncated })
    #expect(truncated.entryID == 10)
    #expect(report.problems.contains { $0.kind == .triggersMissing })
  }

  @Test("rewinding the head to hide a truncation needs the triggers gone, which is reported")
  func consistentTruncationShowsMissingTriggers() throws {
    let (file, store) = try Self.populated()
    let anchor = try #require(try store.auditHead())
    let ninth = try #require(try store.auditEntries(limit: 100).first { $0.id == 9 })
    try Self.tamper(
      file,
      Self.dropTriggers + """
        DELETE FROM audit_log WHERE id >= 10;
        UPDATE audit_head SET count = 9, last_hash = '\(ninth.hash)';
        """)
    let report = try store.verifyAudit()
    #expect(report.problems.map(\.kind) == [.triggersMissing])
    // The head written down before (records.md section 5) shows the rewrite.
    #expect(try store.auditHead() != anchor)
  }

  @Test("entries appended around the store are detected by the head")
  func appendedEntryIsDetected() throws {
    let (file, store) = try Self.populated()
    let head = try #require(try store.auditHead())
    let forged = AuditChain.hash(
      id: head.count + 1, at: "2026-01-02T00:00:00.000Z", actor: "mallory", action: "note",
      subject: "x", detail: "{}", prevHash: head.lastHash)
    try Self.tamper(
      file,
      """
      INSERT INTO audit_log (id, at, actor, action, subject, detail, prev_hash, hash)
      VALUES (\(head.count + 1), '2026-01-02T00:00:00.000Z', 'mallory', 'note', 'x', '{}',
        '\(head.lastHash)', '\(forged)')
      """)
    let report = try store.verifyAudit()
    #expect(report.problems.map(\.kind) == [.headMismatch])
    #expect(report.firstProblem?.entryID == head.count + 1)
  }

  @Test("removed or replaced triggers are reported by name")
  func missingTriggersAreReported() throws {
    let (file, store) = try Self.populated()
    try Self.tamper(
      file,
      """
      DROP TRIGGER audit_log_no_delete;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT 1; END
      """)
    let report = try store.verifyAudit()
    #expect(report.problems.map(\.kind) == [.triggersMissing])
    #expect(report.firstProblem?.message.contains("audit_log_no_delete") == true)
    #expect(report.firstProblem?.message.contains("audit_log_no_update") == false)
  }

  @Test("changing a closed session's energy or samples is detected at the entry that closed it")
  func sessionTamperingIsDetected() throws {
    let (file, store) = try Self.populated()
    let finish = try #require(
      try store.auditEntries(limit: 100).first { $0.action == "session.finish" })
    let session = finish.subject.dropFirst("session:".count)
    try Self.tamper(
      file, "UPDATE session_samples SET delivered_mj = 1 WHERE session_id = \(session) AND t_us = 0"
    )
    var report = try store.verifyAudit()
    #expect(report.problems.map(\.kind) == [.samplesChanged])
    #expect(report.firstProblem?.entryID == finish.id)
    try Self.tamper(
      file,
      """
      UPDATE session_samples SET delivered_mj = 0 WHERE session_id = \(session) AND t_us = 0;
      UPDATE sessions SET delivered_rf_mj = 5 WHERE id = \(session)
      """)
    report = try store.verifyAudit()
    #expect(report.problems.map(\.kind) == [.sessionChanged])
    #expect(report.firstProblem?.message.contains("delivered_mj is 5") == true)
  }

  @Test("a write that fails leaves no audit entry, and the chain still verifies")
  func failedWriteLeavesNoEntry() throws {
    let (_, store) = try Self.populated()
    let head = try store.auditHead()
    _ = F.error {
      try store.finishSession(
        id: 999, outcome: .completed, reason: nil, delivered: Millijoules(1), passes: 1)
    }
    _ = F.error { try store.addCalibration(F.calibration(serial: "PC-NONE", at: Date())) }
    #expect(try store.auditHead() == head)
    #expect(try store.verifyAudit().ok)
  }
}
