import Foundation
import GRDB

/// One entry of the append-only audit log.
public struct AuditEntry: Sendable, Hashable {
  public var id: Int64
  /// ISO-8601 UTC, as stored and hashed.
  public var at: String
  public var actor: String
  /// What was done: `session.begin`, `calibration.add`, …
  public var action: String
  /// What it was done to: `session:12`, `device:PC-RF200-000001`, …
  public var subject: String
  /// Canonical JSON with sorted keys.
  public var detail: String
  public var prevHash: String
  public var hash: String
}

/// The audit log's newest state: how many entries and the hash of the last one. Writing it down
/// outside the database lets a later check detect even a consistently rewritten log.
public struct AuditHead: Sendable, Hashable {
  public var count: Int64
  public var lastHash: String
}

/// One thing `RecordsStore.verifyAudit()` found wrong.
public struct AuditProblem: Sendable, Hashable, CustomStringConvertible {
  /// What kind of tampering or damage the problem shows.
  public enum Kind: String, Sendable, Hashable {
    /// An entry's content no longer matches its hash.
    case edited
    /// Entries are missing from the middle (a gap in the ids).
    case deleted
    /// An entry's `prev_hash` is not the previous entry's hash: the previous entry was replaced
    /// together with its hash, or entries were removed and renumbered.
    case chainBroken = "chain_broken"
    /// The log ends before the head says it does: the newest entries were deleted.
    case truncated
    /// The log goes on past the head, or its last hash is not the head's: entries were added or
    /// replaced without going through the store.
    case headMismatch = "head_mismatch"
    /// A trigger that keeps the log append-only was dropped or replaced.
    case triggersMissing = "triggers_missing"
    /// A closed session's samples no longer match the digest audited when it was closed.
    case samplesChanged = "samples_changed"
    /// A closed session's outcome, reason, energy or passes differ from what was audited.
    case sessionChanged = "session_changed"
  }

  public var kind: Kind
  /// The audit entry concerned (for `deleted` and `truncated`, the first missing id).
  public var entryID: Int64?
  public var message: String

  public var description: String {
    if let entryID { return "audit entry \(entryID): \(kind.rawValue): \(message)" }
    return "audit: \(kind.rawValue): \(message)"
  }
}

/// The result of checking the audit log.
public struct AuditReport: Sendable, Hashable {
  public var entriesChecked: Int
  public var head: AuditHead?
  /// Every problem found, in the order of the log; chain problems before head and trigger ones.
  public var problems: [AuditProblem]

  public var ok: Bool { problems.isEmpty }
  public var firstProblem: AuditProblem? { problems.first }
}

extension RecordsStore {
  /// Appends one audit entry in the caller's transaction and advances the head.
  static func appendAudit(
    _ db: Database, actor: String, at date: Date, action: String, subject: String,
    detail: RecordJSON
  ) throws {
    guard
      let head = try Row.fetchOne(
        db, sql: "SELECT count, last_hash FROM audit_head WHERE singleton = 1")
    else {
      throw RecordsError(
        .corrupt, path: nil,
        "the audit head row is missing, so no write can be audited; run `penctl records verify` "
          + "and restore the records from a backup")
    }
    let id: Int64 = head["count"] + 1
    let prevHash: String = head["last_hash"]
    let at = timestamp(date)
    let text = detail.canonicalText
    let hash = AuditChain.hash(
      id: id, at: at, actor: actor, action: action, subject: subject, detail: text,
      prevHash: prevHash)
    try db.execute(
      sql: """
        INSERT INTO audit_log (id, at, actor, action, subject, detail, prev_hash, hash)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """,
      arguments: [id, at, actor, action, subject, text, prevHash, hash])
    try db.execute(
      sql: "UPDATE audit_head SET count = ?, last_hash = ? WHERE singleton = 1",
      arguments: [id, hash])
  }

  func audit(_ db: Database, _ action: String, _ subject: String, _ detail: RecordJSON) throws {
    try Self.appendAudit(
      db, actor: actor, at: now(), action: action, subject: subject, detail: detail)
  }

  /// The newest audit entries, newest first.
  public func auditEntries(limit: Int = 100) throws(RecordsError) -> [AuditEntry] {
    try read("reading the audit log") { db in
      try Row.fetchAll(
        db, sql: "SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", arguments: [max(0, limit)]
      ).map(Self.auditEntry)
    }
  }

  /// The audit log's head: the number of entries and the last hash.
  public func auditHead() throws(RecordsError) -> AuditHead? {
    try read("reading the audit head") { db in
      try Row.fetchOne(db, sql: "SELECT count, last_hash FROM audit_head").map {
        AuditHead(count: $0["count"], lastHash: $0["last_hash"])
      }
    }
  }

  /// Checks the whole audit log: every entry's hash, the links between entries, the head, the
  /// append-only triggers, and that closed sessions still match what was audited when they
  /// were closed. Reads only; changes nothing.
  public func verifyAudit() throws(RecordsError) -> AuditReport {
    try read("verifying the audit log") { db in
      var problems: [AuditProblem] = []
      var expectedID: Int64 = 1
      var previousHash = AuditChain.genesis
      var checked = 0
      var closings: [AuditEntry] = []
      let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM audit_log ORDER BY id")
      while let row = try cursor.next() {
        let entry = Self.auditEntry(row)
        checked += 1
        if entry.id != expectedID {
          let missing =
            entry.id - expectedID == 1
            ? "entry \(expectedID) is" : "entries \(expectedID)-\(entry.id - 1) are"
          problems.append(
            AuditProblem(
              kind: .deleted, entryID: expectedID,
              message: "\(missing) missing before entry \(entry.id): deleted from the log"))
        } else if entry.prevHash != previousHash {
          problems.append(
            AuditProblem(
              kind: .chainBroken, entryID: entry.id,
              message: "its prev_hash \(entry.prevHash.prefix(12))… is not the hash of entry "
                + "\(entry.id - 1) (\(previousHash.prefix(12))…): entry \(entry.id - 1) was "
                + "replaced, or entries were removed and renumbered"))
        }
        let computed = AuditChain.hash(
          id: entry.id, at: entry.at, actor: entry.actor, action: entry.action,
          subject: entry.subject, detail: entry.detail, prevHash: entry.prevHash)
        if computed != entry.hash {
          problems.append(
            AuditProblem(
              kind: .edited, entryID: entry.id,
              message: "\(entry.action) \(entry.subject) was changed after it was written: its "
                + "content hashes to \(computed.prefix(12))…, the stored hash is "
                + "\(entry.hash.prefix(12))…"))
        }
        if entry.action == "session.finish" || entry.action == "session.recover"
          || entry.action == "session.refuse"
        {
          closings.append(entry)
        }
        previousHash = entry.hash
        expectedID = entry.id + 1
      }
      let lastID = expectedID - 1
      let head = try Row.fetchOne(db, sql: "SELECT count, last_hash FROM audit_head").map {
        AuditHead(count: $0["count"], lastHash: $0["last_hash"])
      }
      if let head {
        if lastID < head.count {
          problems.append(
            AuditProblem(
              kind: .truncated, entryID: lastID + 1,
              message: "the head records \(head.count) entries but the log ends at entry "
                + "\(lastID): the newest entries were deleted"))
        } else if lastID > head.count {
          problems.append(
            AuditProblem(
              kind: .headMismatch, entryID: head.count + 1,
              message: "the log goes on to entry \(lastID) past the head's \(head.count): "
                + "entries were added without going through the store"))
        } else if head.lastHash != previousHash {
          problems.append(
            AuditProblem(
              kind: .headMismatch, entryID: lastID,
              message: "the last entry's hash \(previousHash.prefix(12))… is not the head's "
                + "\(head.lastHash.prefix(12))…: the newest entry was replaced"))
        }
      } else {
        problems.append(
          AuditProblem(
            kind: .truncated, entryID: nil,
            message: "the audit head row is missing, so deleting the newest entries cannot be "
              + "detected"))
      }
      let stored = try Row.fetchAll(
        db, sql: "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
      let triggers = Dictionary(
        stored.map { (row: Row) -> (String, String) in (row["name"], row["sql"] ?? "") },
        uniquingKeysWith: { first, _ in first })
      let missing = Self.auditTriggers.filter { expected in
        triggers[expected.name].map(Self.normalised) != Self.normalised(expected.sql)
      }.map(\.name)
      if !missing.isEmpty {
        problems.append(
          AuditProblem(
            kind: .triggersMissing, entryID: nil,
            message: "the append-only trigger(s) \(missing.joined(separator: ", ")) were dropped "
              + "or replaced, so the log can be changed without an error"))
      }
      for entry in closings {
        problems.append(contentsOf: try Self.checkClosedSession(db, entry))
      }
      return AuditReport(entriesChecked: checked, head: head, problems: problems)
    }
  }

  private static func normalised(_ sql: String) -> String {
    sql.split(whereSeparator: \.isWhitespace).joined(separator: " ")
  }

  /// Compares a closed session with the audit entry that closed it.
  private static func checkClosedSession(
    _ db: Database, _ entry: AuditEntry
  ) throws -> [AuditProblem] {
    guard entry.subject.hasPrefix("session:"), let id = Int64(entry.subject.dropFirst(8)),
      case .object(let detail) = try? RecordJSON(parsing: entry.detail)
    else {
      return [
        AuditProblem(
          kind: .edited, entryID: entry.id,
          message: "\(entry.action) has an unreadable subject or detail")
      ]
    }
    guard
      let row = try Row.fetchOne(
        db, sql: "SELECT status, reason, delivered_rf_mj, passes FROM sessions WHERE id = ?",
        arguments: [id])
    else {
      return [
        AuditProblem(
          kind: .sessionChanged, entryID: entry.id,
          message: "session \(id) was closed here but is no longer in the sessions table")
      ]
    }
    var problems: [AuditProblem] = []
    let current = closingDetail(
      status: row["status"], reason: row["reason"], delivered: row["delivered_rf_mj"],
      passes: row["passes"], samples: try samplesDigest(db, session: id))
    for key in ["status", "reason", "delivered_mj", "passes"]
    where current[key]?.canonicalText != detail[key]?.canonicalText {
      problems.append(
        AuditProblem(
          kind: .sessionChanged, entryID: entry.id,
          message: "session \(id)'s \(key) is \(current[key]?.canonicalText ?? "absent") but "
            + "\(detail[key]?.canonicalText ?? "absent") was audited when it was closed"))
    }
    if current["samples"]?.canonicalText != detail["samples"]?.canonicalText {
      problems.append(
        AuditProblem(
          kind: .samplesChanged, entryID: entry.id,
          message: "session \(id)'s samples are now \(current["samples"]?.canonicalText ?? "")"
            + " but \(detail["samples"]?.canonicalText ?? "absent") was audited when it was "
            + "closed"))
    }
    return problems
  }

  /// The audited facts of a closed session (records.md section 4.3).
  static func closingDetail(
    status: String, reason: String?, delivered: Double, passes: Int?,
    samples: (count: Int, sha256: String)
  ) -> [String: RecordJSON] {
    [
      "status": .string(status),
      "reason": reason.map(RecordJSON.string) ?? .null,
      "delivered_mj": .double(delivered),
      "passes": passes.map { .int(Int64($0)) } ?? .null,
      "samples": ["count": .int(Int64(samples.count)), "sha256": .string(samples.sha256)],
    ]
  }

  static func auditEntry(_ row: Row) -> AuditEntry {
    AuditEntry(
      id: row["id"], at: row["at"], actor: row["actor"], action: row["action"],
      subject: row["subject"], detail: row["detail"], prevHash: row["prev_hash"],
      hash: row["hash"])
  }
}
