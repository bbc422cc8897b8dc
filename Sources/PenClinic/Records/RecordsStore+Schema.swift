import Foundation
import GRDB

extension RecordsStore {
  /// The append-only guards of the audit log (records.md section 4). `verifyAudit()` compares the
  /// stored trigger text with this text, so a trigger that was dropped or replaced is reported.
  static let auditTriggers: [(name: String, sql: String)] = [
    (
      "audit_log_no_update",
      """
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be changed'); END
      """
    ),
    (
      "audit_log_no_delete",
      """
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be deleted'); END
      """
    ),
    (
      "audit_head_no_delete",
      """
      CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
      BEGIN SELECT RAISE(ABORT, 'audit_head cannot be deleted'); END
      """
    ),
    (
      "audit_head_advance_only",
      """
      CREATE TRIGGER audit_head_advance_only BEFORE UPDATE ON audit_head
      WHEN NEW.count <> OLD.count + 1
        OR NEW.last_hash IS NOT (SELECT hash FROM audit_log WHERE id = NEW.count)
      BEGIN SELECT RAISE(ABORT, 'audit_head only advances to the entry just appended'); END
      """
    ),
  ]

  /// The schema's migrations, in order. A migration is never edited once released: a change
  /// is a new migration ("v2" …) that also raises `schemaVersion`.
  static func migrator(actor: String, now: @escaping @Sendable () -> Date) -> DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1") { db in
      try db.execute(sql: v1)
      for trigger in auditTriggers { try db.execute(sql: trigger.sql) }
      try db.execute(sql: "PRAGMA application_id = \(applicationID)")
      try db.execute(sql: "PRAGMA user_version = 1")
      try appendAudit(
        db, actor: actor, at: now(), action: "schema.migrate", subject: "schema",
        detail: ["migration": "v1", "user_version": 1])
    }
    return migrator
  }

  private static let v1 = """
    CREATE TABLE devices (
      serial TEXT PRIMARY KEY NOT NULL,
      model TEXT NOT NULL,
      firmware TEXT NOT NULL,
      first_seen TEXT NOT NULL,
      last_seen TEXT NOT NULL
    );
    CREATE TABLE calibrations (
      id INTEGER PRIMARY KEY,
      serial TEXT NOT NULL REFERENCES devices(serial),
      source TEXT NOT NULL CHECK (source IN ('factory', 'technician')),
      at TEXT NOT NULL,
      technician_id INTEGER NOT NULL CHECK (technician_id >= 0),
      depth_gain REAL NOT NULL,
      depth_offset_mm REAL NOT NULL,
      speed_gain REAL NOT NULL,
      rf_gain REAL NOT NULL,
      before_depth_error_um REAL,
      before_speed_error_pct REAL,
      before_rf_error_pct REAL,
      after_depth_error_um REAL NOT NULL,
      after_speed_error_pct REAL NOT NULL,
      after_rf_error_pct REAL,
      sweep_json TEXT NOT NULL,
      passed INTEGER NOT NULL CHECK (passed IN (0, 1)),
      marked_bad INTEGER NOT NULL CHECK (marked_bad IN (0, 1)),
      record_hex TEXT CHECK (record_hex IS NULL OR length(record_hex) = 128)
    );
    CREATE INDEX calibrations_by_serial ON calibrations(serial, at);
    CREATE TABLE patients (
      id TEXT PRIMARY KEY NOT NULL
        CHECK (length(id) BETWEEN 1 AND 64 AND id NOT GLOB '*[^A-Za-z0-9._-]*'),
      created TEXT NOT NULL
    );
    CREATE TABLE sessions (
      id INTEGER PRIMARY KEY,
      patient TEXT NOT NULL REFERENCES patients(id),
      area TEXT NOT NULL,
      preset_id TEXT NOT NULL,
      pen_serial TEXT REFERENCES devices(serial),
      model TEXT,
      fitzpatrick INTEGER NOT NULL CHECK (fitzpatrick BETWEEN 1 AND 6),
      is_test_patch INTEGER NOT NULL CHECK (is_test_patch IN (0, 1)),
      envelope_json TEXT,
      started_at TEXT NOT NULL,
      ended_at TEXT,
      status TEXT NOT NULL
        CHECK (status IN ('in_progress', 'completed', 'aborted', 'refused')),
      reason TEXT,
      delivered_rf_mj REAL NOT NULL DEFAULT 0 CHECK (delivered_rf_mj >= 0),
      passes INTEGER CHECK (passes IS NULL OR passes >= 0),
      override_reason TEXT,
      screening_json TEXT,
      owner TEXT,
      CHECK (status = 'in_progress' OR ended_at IS NOT NULL),
      CHECK (status NOT IN ('aborted', 'refused') OR length(reason) > 0),
      CHECK (status = 'refused' OR pen_serial IS NOT NULL)
    );
    CREATE INDEX sessions_by_patient ON sessions(patient, area, started_at);
    CREATE INDEX sessions_in_progress ON sessions(status) WHERE status = 'in_progress';
    CREATE TABLE session_samples (
      session_id INTEGER NOT NULL REFERENCES sessions(id),
      t_us INTEGER NOT NULL CHECK (t_us >= 0),
      state TEXT NOT NULL,
      depth_mm REAL NOT NULL,
      speed_hz REAL NOT NULL,
      rf_power_w REAL NOT NULL,
      delivered_mj REAL NOT NULL,
      contact INTEGER NOT NULL CHECK (contact IN (0, 1))
    );
    CREATE INDEX session_samples_by_time ON session_samples(session_id, t_us);
    CREATE TABLE audit_log (
      id INTEGER PRIMARY KEY,
      at TEXT NOT NULL,
      actor TEXT NOT NULL,
      action TEXT NOT NULL,
      subject TEXT NOT NULL,
      detail TEXT NOT NULL,
      prev_hash TEXT NOT NULL,
      hash TEXT NOT NULL
    );
    CREATE TABLE audit_head (
      singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
      count INTEGER NOT NULL,
      last_hash TEXT NOT NULL
    );
    INSERT INTO audit_head (singleton, count, last_hash)
      VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
    """
}
