import Foundation
import GRDB
import PenSafety
public import PenWire

extension RecordsStore {
  /// The reason recorded for a session closed by `recoverInterrupted()`.
  public static let interruptedReason =
    "interrupted: the process ended before the session was closed (recovered at start-up)"

  /// Starts a session (status `in_progress`) and returns its id. Records the patient id if it
  /// is new. The pen must be recorded (`upsertDevice(_:)`) and match the session's model.
  public func beginSession(_ start: SessionStart) throws(RecordsError) -> Int64 {
    try validate(start)
    guard let serial = start.penSerial, let model = start.model else {
      throw RecordsError(
        .invalidInput, path: path.path,
        "a session that runs needs the pen's serial and model; record a session refused before "
          + "a pen was connected with recordRefusedSession")
    }
    try ownership.hold()
    return try write("starting a session for patient \(start.patient)") { db in
      let device = try Self.requireDevice(db, serial)
      let recorded: String = device["model"]
      guard recorded == Self.name(model.catalogueName) else {
        throw RecordsError(
          .invalidInput, path: path.path,
          "pen \(serial) is recorded as model \(recorded), not \(model.catalogueName)")
      }
      return try insertSession(db, start, status: .inProgress, reason: nil)
    }
  }

  /// Records a session that was refused before it started (screening, envelope, calibration),
  /// with the reason, and returns its id.
  @discardableResult
  public func recordRefusedSession(
    _ start: SessionStart, reason: String
  ) throws(RecordsError) -> Int64 {
    try validate(start)
    try Self.validateReason(reason, for: "a refused session")
    return try write("recording a refused session for patient \(start.patient)") { db in
      if let serial = start.penSerial { _ = try Self.requireDevice(db, serial) }
      return try insertSession(db, start, status: .refused, reason: reason)
    }
  }

  /// Persists a batch of telemetry checkpoints of a running session in one transaction.
  ///
  /// Samples are not audited one by one: the session's closing audit entry carries their count
  /// and digest (records.md section 4.3). Refuses a batch that goes back in pen time, that
  /// holds numbers that are not finite, or for a session that is not in progress.
  public func appendSamples(session: Int64, _ samples: [SessionSample]) throws(RecordsError) {
    guard !samples.isEmpty else { return }
    var previous: UInt64?
    for sample in samples {
      for (name, value) in [
        ("depth", sample.depth.value), ("speed", sample.speed.value),
        ("RF power", sample.rfPower.value), ("delivered energy", sample.delivered.value),
      ] where !value.isFinite {
        throw RecordsError(
          .invalidInput, path: path.path,
          "session \(session): sample at \(sample.time.rawValue) µs has \(name) \(value); only "
            + "finite values can be recorded")
      }
      guard sample.time.rawValue <= UInt64(Int64.max) else {
        throw RecordsError(
          .invalidInput, path: path.path,
          "session \(session): sample time \(sample.time.rawValue) µs is out of range")
      }
      if let previous, sample.time.rawValue < previous {
        throw RecordsError(
          .invalidInput, path: path.path,
          "session \(session): samples go back in pen time (\(sample.time.rawValue) µs after "
            + "\(previous) µs); pass them in the order the pen sent them")
      }
      previous = sample.time.rawValue
    }
    try write("saving \(samples.count) samples of session \(session)") { db in
      try Self.requireStatus(db, session, .inProgress, to: "add samples")
      if let last = try Int64.fetchOne(
        db, sql: "SELECT MAX(t_us) FROM session_samples WHERE session_id = ?",
        arguments: [session]), UInt64(last) > samples[0].time.rawValue
      {
        throw RecordsError(
          .invalidInput, path: path.path,
          "session \(session): the batch starts at \(samples[0].time.rawValue) µs, before the "
            + "last saved sample at \(last) µs")
      }
      let statement = try db.cachedStatement(
        sql: """
          INSERT INTO session_samples (
            session_id, t_us, state, depth_mm, speed_hz, rf_power_w, delivered_mj, contact)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?)
          """)
      for sample in samples {
        try statement.execute(arguments: [
          session, Int64(sample.time.rawValue), Self.name(sample.state.catalogueName),
          sample.depth.value, sample.speed.value, sample.rfPower.value, sample.delivered.value,
          sample.contact,
        ])
      }
    }
  }

  /// Closes a running session with its outcome, the RF energy delivered and the passes made.
  ///
  /// An aborted session needs a reason. Refuses an energy below the last saved sample's: that
  /// record would understate the dose (left open, the session is recovered with the sample's).
  public func finishSession(
    id: Int64, outcome: SessionOutcome, reason: String?, delivered: Millijoules, passes: Int
  ) throws(RecordsError) {
    if outcome == .aborted || reason != nil {
      try Self.validateReason(reason ?? "", for: "an aborted session")
    }
    guard delivered.value.isFinite, delivered.value >= 0 else {
      throw RecordsError(
        .invalidInput, path: path.path,
        "session \(id): delivered energy \(delivered.value) mJ must be a finite number ≥ 0")
    }
    guard passes >= 0 else {
      throw RecordsError(
        .invalidInput, path: path.path, "session \(id): passes \(passes) must be ≥ 0")
    }
    try write("closing session \(id)") { db in
      try Self.requireStatus(db, id, .inProgress, to: "close it")
      if let last = try Row.fetchOne(
        db,
        sql: """
          SELECT t_us, delivered_mj FROM session_samples WHERE session_id = ?
          ORDER BY t_us DESC, rowid DESC LIMIT 1
          """, arguments: [id])
      {
        let saved: Double = last["delivered_mj"]
        if delivered.value < saved {
          throw RecordsError(
            .invalidInput, path: path.path,
            "session \(id): delivered energy \(delivered.value) mJ is less than the \(saved) mJ "
              + "already saved at \(last["t_us"] as Int64) µs; the record would understate the "
              + "dose. Close it with the pen's final delivered energy.")
        }
      }
      try close(
        db, id, status: outcome.status, reason: reason, delivered: delivered.value,
        passes: passes, action: "session.finish", extra: [:])
    }
  }

  /// Closes every session left in progress by a process that ended (however it ended) as
  /// aborted, with `interruptedReason` and the energy of its last saved sample. Sessions still
  /// run by a live store, in this process or another, are left alone.
  @discardableResult
  public func recoverInterrupted() throws(RecordsError) -> [RecoveredSession] {
    let open = try read("finding interrupted sessions") { db in
      try Row.fetchAll(
        db, sql: "SELECT id, owner FROM sessions WHERE status = 'in_progress' ORDER BY id"
      ).map { (id: $0["id"] as Int64, owner: $0["owner"] as String?) }
    }
    var recovered: [RecoveredSession] = []
    for session in open {
      if let owner = session.owner {
        if owner == ownership.token { continue }
        if SessionOwnership.isLive(database: path, token: owner) { continue }
      }
      let result: RecoveredSession? = try write("recovering session \(session.id)") { db in
        // Re-read inside the write lock: the session may have closed meanwhile.
        guard
          let row = try Row.fetchOne(
            db, sql: "SELECT * FROM sessions WHERE id = ? AND status = 'in_progress'",
            arguments: [session.id])
        else { return nil }
        let last = try Row.fetchOne(
          db,
          sql: """
            SELECT t_us, delivered_mj FROM session_samples WHERE session_id = ?
            ORDER BY t_us DESC, rowid DESC LIMIT 1
            """, arguments: [session.id])
        let delivered: Double = last?["delivered_mj"] ?? 0
        let lastTime: Int64? = last?["t_us"]
        let count = try close(
          db, session.id, status: .aborted, reason: Self.interruptedReason, delivered: delivered,
          passes: nil, action: "session.recover",
          extra: ["last_sample_t_us": lastTime.map(RecordJSON.int) ?? .null])
        return RecoveredSession(
          id: session.id, patient: row["patient"], area: try Self.area(row["area"]),
          delivered: Millijoules(delivered), samples: count,
          lastSampleTime: lastTime.map { Microseconds(UInt64($0)) })
      }
      if let result { recovered.append(result) }
    }
    return recovered
  }

  /// One session, if it exists.
  public func session(id: Int64) throws(RecordsError) -> SessionRecord? {
    try read("reading session \(id)") { db in
      try Row.fetchOne(db, sql: "SELECT * FROM sessions WHERE id = ?", arguments: [id])
        .map { try Self.session($0) }
    }
  }

  /// A patient's sessions, in one area or all, oldest first: the course of treatment.
  public func sessions(
    patient: String, area: TreatmentAreaID? = nil
  ) throws(RecordsError) -> [SessionRecord] {
    try read("reading the sessions of patient \(patient)") { db in
      if let area {
        return try Row.fetchAll(
          db, sql: "SELECT * FROM sessions WHERE patient = ? AND area = ? ORDER BY started_at, id",
          arguments: [patient, Self.name(area.catalogueName)]
        ).map { try Self.session($0) }
      }
      return try Row.fetchAll(
        db, sql: "SELECT * FROM sessions WHERE patient = ? ORDER BY started_at, id",
        arguments: [patient]
      ).map { try Self.session($0) }
    }
  }

  /// The newest sessions, newest first.
  public func listSessions(limit: Int = 50) throws(RecordsError) -> [SessionRecord] {
    try read("listing sessions") { db in
      try Row.fetchAll(
        db, sql: "SELECT * FROM sessions ORDER BY id DESC LIMIT ?", arguments: [max(0, limit)]
      ).map { try Self.session($0) }
    }
  }

  /// A session's saved samples, in pen-time order.
  public func samples(session: Int64) throws(RecordsError) -> [SessionSample] {
    try read("reading the samples of session \(session)") { db in
      try Row.fetchAll(
        db, sql: "SELECT * FROM session_samples WHERE session_id = ? ORDER BY t_us, rowid",
        arguments: [session]
      ).map { row in
        SessionSample(
          time: Microseconds(UInt64(row["t_us"] as Int64)), state: try Self.state(row["state"]),
          depth: Millimetres(row["depth_mm"]), speed: Hertz(row["speed_hz"]),
          rfPower: Watts(row["rf_power_w"]), delivered: Millijoules(row["delivered_mj"]),
          contact: row["contact"])
      }
    }
  }

  // MARK: - Internals

  private func validate(_ start: SessionStart) throws(RecordsError) {
    try Self.validatePatientID(start.patient)
    guard start.area != .none else {
      throw RecordsError(
        .invalidInput, path: path.path, "a session needs a treatment area, not \"none\"")
    }
    guard !start.presetID.isEmpty, start.presetID.count <= 128 else {
      throw RecordsError(
        .invalidInput, path: path.path,
        "preset id \(String(reflecting: start.presetID)) must be 1-128 characters")
    }
    if let serial = start.penSerial { try Self.validateSerial(serial) }
    if let reason = start.overrideReason {
      try Self.validateReason(reason, for: "a soft-limit override")
    }
    for (name, json) in [("envelope", start.envelope), ("screening", start.screening)] {
      if let json, !json.isFinite {
        throw RecordsError(
          .invalidInput, path: path.path, "the session's \(name) holds a number that is not finite")
      }
    }
  }

  private static func validateReason(_ reason: String, for what: String) throws(RecordsError) {
    guard !reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, reason.count <= 2000
    else {
      throw RecordsError(
        .invalidInput, path: nil,
        "\(what) needs a reason of 1-2000 characters; say why, in words a reviewer will follow")
    }
  }

  private static func requireStatus(
    _ db: Database, _ id: Int64, _ status: SessionStatus, to action: String
  ) throws {
    guard
      let current = try String.fetchOne(
        db, sql: "SELECT status FROM sessions WHERE id = ?", arguments: [id])
    else {
      throw RecordsError(.notFound, path: nil, "there is no session \(id)")
    }
    guard current == status.rawValue else {
      throw RecordsError(
        .invalidState, path: nil,
        "session \(id) is \(current), not \(status.rawValue), so it is not possible to \(action)")
    }
  }

  private func insertSession(
    _ db: Database, _ start: SessionStart, status: SessionStatus, reason: String?
  ) throws -> Int64 {
    _ = try ensurePatient(db, start.patient)
    let stamp = Self.timestamp(now())
    let area = Self.name(start.area.catalogueName)
    let model = start.model.map { Self.name($0.catalogueName) }
    let closed = status != .inProgress
    try db.execute(
      sql: """
        INSERT INTO sessions (
          patient, area, preset_id, pen_serial, model, fitzpatrick, is_test_patch, envelope_json,
          started_at, ended_at, status, reason, delivered_rf_mj, passes, override_reason,
          screening_json, owner)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)
        """,
      arguments: [
        start.patient, area, start.presetID, start.penSerial, model,
        Int(start.fitzpatrick.rawValue), start.isTestPatch, start.envelope?.canonicalText, stamp,
        closed ? stamp : nil, status.rawValue, reason, closed ? 0 : nil, start.overrideReason,
        start.screening?.canonicalText, closed ? nil : ownership.token,
      ])
    let id = db.lastInsertedRowID
    var detail: [String: RecordJSON] = [
      "patient": .string(start.patient), "area": .string(area),
      "preset_id": .string(start.presetID),
      "pen_serial": start.penSerial.map(RecordJSON.string) ?? .null,
      "model": model.map(RecordJSON.string) ?? .null,
      "fitzpatrick": .int(Int64(start.fitzpatrick.rawValue)),
      "is_test_patch": .bool(start.isTestPatch),
      "override_reason": start.overrideReason.map(RecordJSON.string) ?? .null,
    ]
    if closed {
      detail.merge(
        Self.closingDetail(
          status: status.rawValue, reason: reason, delivered: 0, passes: 0,
          samples: (0, try Self.samplesDigest(db, session: id).sha256)),
        uniquingKeysWith: { _, closing in closing })
      try audit(db, "session.refuse", "session:\(id)", .object(detail))
    } else {
      try audit(db, "session.begin", "session:\(id)", .object(detail))
    }
    return id
  }

  @discardableResult
  private func close(
    _ db: Database, _ id: Int64, status: SessionStatus, reason: String?, delivered: Double,
    passes: Int?, action: String, extra: [String: RecordJSON]
  ) throws -> Int {
    try db.execute(
      sql: """
        UPDATE sessions SET status = ?, reason = ?, delivered_rf_mj = ?, passes = ?,
          ended_at = ?, owner = NULL
        WHERE id = ?
        """,
      arguments: [status.rawValue, reason, delivered, passes, Self.timestamp(now()), id])
    let samples = try Self.samplesDigest(db, session: id)
    var detail = Self.closingDetail(
      status: status.rawValue, reason: reason, delivered: delivered, passes: passes,
      samples: samples)
    detail.merge(extra, uniquingKeysWith: { audited, _ in audited })
    try audit(db, action, "session:\(id)", .object(detail))
    return samples.count
  }

  static func session(_ row: Row) throws -> SessionRecord {
    let fitzpatrickRaw: Int = row["fitzpatrick"]
    guard let fitzpatrick = FitzpatrickType(rawValue: UInt8(clamping: fitzpatrickRaw)) else {
      throw RecordsError(.corrupt, path: nil, "fitzpatrick \(fitzpatrickRaw) is not 1-6")
    }
    let statusName: String = row["status"]
    guard let status = SessionStatus(rawValue: statusName) else {
      throw RecordsError(.corrupt, path: nil, "session status \(statusName) is unknown")
    }
    let start = SessionStart(
      patient: row["patient"], area: try area(row["area"]), presetID: row["preset_id"],
      penSerial: row["pen_serial"], model: try (row["model"] as String?).map(model),
      fitzpatrick: fitzpatrick, isTestPatch: row["is_test_patch"],
      envelope: try (row["envelope_json"] as String?).map { try RecordJSON(parsing: $0) },
      overrideReason: row["override_reason"],
      screening: try (row["screening_json"] as String?).map { try RecordJSON(parsing: $0) })
    return SessionRecord(
      id: row["id"], start: start, startedAt: try date(row["started_at"], column: "started_at"),
      endedAt: try (row["ended_at"] as String?).map { try date($0, column: "ended_at") },
      status: status, reason: row["reason"], delivered: Millijoules(row["delivered_rf_mj"]),
      passes: row["passes"])
  }
}
