import Foundation
import GRDB
import PenSafety
import PenWire
import Synchronization
import Testing

@testable import PenClinic

/// A clock the test moves by hand.
final class ManualClock: Sendable {
  private let current: Mutex<Date>

  init(_ start: Date = Date(timeIntervalSince1970: 1_767_225_600)) {  // 2026-01-01T00:00:00Z
    current = Mutex(start)
  }

  var now: @Sendable () -> Date { { self.current.withLock { $0 } } }

  func advance(seconds: Double) { current.withLock { $0 += seconds } }
}

/// Scratch folders, pens and sessions shared by the records suites.
enum RecordsFixtures {
  static func folder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
      "records-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  static func storeFile() throws -> URL { try folder().appendingPathComponent("records.sqlite") }

  /// A raw connection to the file, beside the store, as someone editing the database would use.
  static func raw(_ file: URL) throws -> DatabaseQueue { try DatabaseQueue(path: file.path) }

  static let rfPen = DeviceIdentity(serial: "PC-RF200-000007", model: .rf200, firmware: "1.4.2")
  static let mnPen = DeviceIdentity(serial: "PC-MN100-000123", model: .mn100, firmware: "1.0.0")

  /// calibration.md section 1's example: a verified factory record for PC-MN100-000123.
  static let exampleRecord: [UInt8] = """
    43 52 01 01 02 00 01 00 50 43 2d 4d 4e 31 30 30
    2d 30 30 30 31 32 33 00 00 b9 55 69 00 00 00 00
    79 72 0f 00 d6 ff ff ff 78 0f 0f 00 40 42 0f 00
    12 00 0c 00 00 00 00 00 00 00 00 00 69 b5 02 ed
    """.split(whereSeparator: \.isWhitespace).map { UInt8($0, radix: 16)! }

  static func calibration(
    serial: String = mnPen.serial, at: Date, depthGain: Double = 1.012345,
    record: [UInt8]? = exampleRecord
  ) -> CalibrationEntry {
    CalibrationEntry(
      serial: serial, source: .factory, at: at, technicianID: 0, depthGain: depthGain,
      depthOffset: Millimetres(-0.042), speedGain: 0.987, rfGain: 1.0,
      before: CalibrationErrors(depthMicrometres: 61, speedPercent: 3.4, rfPercent: nil),
      after: CalibrationErrors(depthMicrometres: 18, speedPercent: 1.2, rfPercent: nil),
      sweep: [
        CalibrationSweepPoint(quantity: .depth, setpoint: 0.5, before: 0.46, after: 0.502),
        CalibrationSweepPoint(quantity: .speed, setpoint: 100, before: 98.7, after: nil),
      ],
      passed: true, markedBad: false, record: record)
  }

  static func start(
    patient: String = "P-000123", area: TreatmentAreaID = .cheeks, pen: DeviceIdentity = rfPen
  ) -> SessionStart {
    SessionStart(
      patient: patient, area: area, presetID: "cheeks-standard", penSerial: pen.serial,
      model: pen.model, fitzpatrick: .typeIII, isTestPatch: false,
      envelope: ["max_depth_mm": 1.5, "rf_allowed": true], overrideReason: nil,
      screening: ["verdict": "clear", "answers": ["pregnancy": false]])
  }

  static func sample(_ ms: UInt64, delivered: Double, state: PenState = .treating) -> SessionSample
  {
    SessionSample(
      time: .milliseconds(ms), state: state, depth: Millimetres(1.0), speed: Hertz(100),
      rfPower: Watts(4.5), delivered: Millijoules(delivered), contact: true)
  }

  /// The error a throwing call threw, as a `RecordsError`.
  static func error(_ body: () throws -> Void) -> RecordsError? {
    do {
      try body()
      return nil
    } catch let error as RecordsError {
      return error
    } catch {
      Issue.record("expected a RecordsError, got \(error)")
      return nil
    }
  }
}

@Suite("Records store")
struct RecordsStoreTests {
  typealias F = RecordsFixtures

  // MARK: - Locations

  @Test("the data folder is PENCONTROL_DATA, else XDG_DATA_HOME/pencontrol, else ~/.local/share")
  func dataDirectoryFollowsTheEnvironment() {
    #expect(
      RecordsStore.defaultPath(environment: ["PENCONTROL_DATA": "/srv/pc", "HOME": "/home/a"]).path
        == "/srv/pc/records.sqlite")
    #expect(
      RecordsStore.dataDirectory(environment: ["XDG_DATA_HOME": "/x/data", "HOME": "/home/a"]).path
        == "/x/data/pencontrol")
    #expect(
      RecordsStore.defaultPath(environment: ["HOME": "/home/a"]).path
        == "/home/a/.local/share/pencontrol/records.sqlite")
    // Empty values count as unset; a relative XDG_DATA_HOME is ignored, as XDG says.
    #expect(
      RecordsStore.dataDirectory(
        environment: ["PENCONTROL_DATA": "", "XDG_DATA_HOME": "rel", "HOME": "/home/a"]
      ).path == "/home/a/.local/share/pencontrol")
  }

  // MARK: - Schema

  @Test("opening creates the schema in WAL mode with synchronous FULL; reopening migrates nothing")
  func migrationsCreateTheSchemaOnce() throws {
    let file = try F.storeFile()
    let clock = ManualClock()
    do {
      let store = try RecordsStore(path: file, actor: "alice", now: clock.now)
      #expect(try store.journalMode() == "wal")
      let synchronous = try store.pool.write { db in
        try Int.fetchOne(db, sql: "PRAGMA synchronous")
      }
      #expect(synchronous == 2)  // FULL
      let foreignKeys = try store.pool.read { db in
        try Bool.fetchOne(db, sql: "PRAGMA foreign_keys")
      }
      #expect(foreignKeys == true)
      let tables = try store.pool.read { db in
        try String.fetchSet(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
      }
      for table in [
        "devices", "calibrations", "patients", "sessions", "session_samples", "audit_log",
        "audit_head",
      ] {
        #expect(tables.contains(table), "missing table \(table)")
      }
      #expect(try store.auditEntries().map(\.action) == ["schema.migrate"])
    }
    clock.advance(seconds: 60)
    let reopened = try RecordsStore(path: file, actor: "bob", now: clock.now)
    let (version, migrations) = try reopened.pool.read { db in
      (
        try Int.fetchOne(db, sql: "PRAGMA user_version"),
        try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
      )
    }
    #expect(version == RecordsStore.schemaVersion)
    #expect(migrations == ["v1"])
    // A second run of v1 would have failed on CREATE TABLE, or audited a second migration.
    #expect(try reopened.auditEntries().map(\.action) == ["schema.migrate"])
    #expect(try reopened.auditHead()?.count == 1)
  }

  // MARK: - Refusing files

  @Test("a text file given as the database is refused with a typed error and left byte-identical")
  func textFileIsRefusedUntouched() throws {
    let folder = try F.folder()
    let file = folder.appendingPathComponent("notes.txt")
    let text = Data("Patient notes — not a database.\nline 2\n".utf8)
    try text.write(to: file)
    let error = F.error { _ = try RecordsStore(path: file, actor: "alice") }
    #expect(error?.kind == .notADatabase)
    #expect(error?.path == file.path)
    #expect(error?.description.contains("not an SQLite database") == true)
    #expect(try Data(contentsOf: file) == text)
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["notes.txt"])
  }

  @Test("a short file that is not SQLite is refused too, and a folder is refused")
  func shortFileAndFolderAreRefused() throws {
    let folder = try F.folder()
    let file = folder.appendingPathComponent("x.sqlite")
    try Data("SQLite".utf8).write(to: file)
    #expect(F.error { _ = try RecordsStore(path: file, actor: "a") }?.kind == .notADatabase)
    #expect(try Data(contentsOf: file) == Data("SQLite".utf8))
    #expect(F.error { _ = try RecordsStore(path: folder, actor: "a") }?.kind == .notADatabase)
  }

  @Test("another application's SQLite database is refused and left unchanged")
  func foreignDatabaseIsRefused() throws {
    let file = try F.storeFile()
    do {
      let other = try F.raw(file)
      try other.write { db in
        try db.execute(sql: "CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('x')")
      }
      try other.close()
    }
    let before = try Data(contentsOf: file)
    let error = F.error { _ = try RecordsStore(path: file, actor: "alice") }
    #expect(error?.kind == .notARecordsStore)
    #expect(try Data(contentsOf: file) == before)
  }

  @Test("a store from a newer schema version is refused and nothing is changed")
  func newerUserVersionIsRefused() throws {
    let file = try F.storeFile()
    do {
      let store = try RecordsStore(path: file, actor: "alice")
      try store.upsertDevice(F.rfPen)
    }
    do {
      let raw = try F.raw(file)
      try raw.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA user_version = 2") }
      try raw.close()
    }
    let before = try Data(contentsOf: file)
    let error = F.error { _ = try RecordsStore(path: file, actor: "alice") }
    #expect(error?.kind == .newerSchema)
    #expect(error?.message.contains("schema version 2") == true)
    #expect(try Data(contentsOf: file) == before)
    let version = try F.raw(file).read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") }
    #expect(version == 2)
  }

  @Test("a store with a migration this build does not know is refused and nothing is changed")
  func unknownMigrationIsRefused() throws {
    let file = try F.storeFile()
    do { _ = try RecordsStore(path: file, actor: "alice") }
    do {
      let raw = try F.raw(file)
      try raw.write { db in
        try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v2-consents')")
      }
      try raw.close()
    }
    let before = try Data(contentsOf: file)
    let error = F.error { _ = try RecordsStore(path: file, actor: "alice") }
    #expect(error?.kind == .newerSchema)
    #expect(error?.message.contains("v2-consents") == true)
    #expect(try Data(contentsOf: file) == before)
  }

  @Test("a folder that cannot be created is an I/O error naming the path")
  func unwritableFolderIsAnIOError() throws {
    let folder = try F.folder()
    let blocker = folder.appendingPathComponent("file")
    try Data("x".utf8).write(to: blocker)
    let error = F.error {
      _ = try RecordsStore(path: blocker.appendingPathComponent("sub/records.sqlite"), actor: "a")
    }
    #expect(error?.kind == .io)
    #expect(error?.message.contains(blocker.path) == true)
  }

  @Test("a database locked by another process fails with busy, and works once released")
  func lockedDatabaseIsBusy() throws {
    let file = try F.storeFile()
    let store = try RecordsStore(path: file, actor: "alice", busyTimeout: 0)
    let other = try F.raw(file)
    try other.inDatabase { db in
      try db.inTransaction(.immediate) {
        let error = F.error { try store.upsertDevice(F.rfPen) }
        #expect(error?.kind == .busy)
        #expect(error?.message.contains("locked by another process") == true)
        return .rollback
      }
    }
    try store.upsertDevice(F.rfPen)
    #expect(try store.device(serial: F.rfPen.serial) != nil)
  }

  @Test("SQLite constraint and I/O failures map to typed errors that say what to do")
  func sqliteErrorsMapToKinds() {
    let constraint = RecordsError.from(
      DatabaseError(resultCode: .SQLITE_CONSTRAINT, message: "CHECK constraint failed: passes"),
      path: "/r.sqlite", during: "closing session 3")
    #expect(constraint.kind == .constraint)
    #expect(constraint.description.contains("/r.sqlite"))
    #expect(constraint.description.contains("CHECK constraint failed: passes"))
    let io = RecordsError.from(
      DatabaseError(resultCode: .SQLITE_FULL, message: "database or disk is full"),
      path: "/r.sqlite", during: "saving samples")
    #expect(io.kind == .io)
    #expect(io.message.contains("disk is not full"))
  }

  @Test("the actor recorded in audit entries must be a printable name")
  func actorIsValidated() throws {
    let file = try F.storeFile()
    #expect(F.error { _ = try RecordsStore(path: file, actor: "") }?.kind == .invalidInput)
    #expect(F.error { _ = try RecordsStore(path: file, actor: "a\nb") }?.kind == .invalidInput)
    #expect(!FileManager.default.fileExists(atPath: file.path))
  }

  // MARK: - Devices and calibrations

  @Test("a pen is recorded once; reconnecting updates firmware and last seen, audited")
  func devicesAreUpserted() throws {
    let clock = ManualClock()
    let store = try RecordsStore(path: try F.storeFile(), actor: "alice", now: clock.now)
    let first = try store.upsertDevice(F.rfPen)
    clock.advance(seconds: 3600)
    var upgraded = F.rfPen
    upgraded.firmware = "1.5.0"
    let second = try store.upsertDevice(upgraded)
    #expect(second.firstSeen == first.firstSeen)
    #expect(second.lastSeen == first.lastSeen.addingTimeInterval(3600))
    #expect(try store.device(serial: F.rfPen.serial) == second)
    #expect(second.firmware == "1.5.0")
    let last = try #require(try store.auditEntries(limit: 1).first)
    #expect(last.action == "device.upsert")
    #expect(last.detail.contains(#""previous_firmware":"1.4.2""#))
    var other = F.rfPen
    other.model = .mn100
    let error = F.error { try store.upsertDevice(other) }
    #expect(error?.kind == .invalidInput)
    #expect(error?.message.contains("one serial cannot name two models") == true)
    #expect(
      F.error { try store.upsertDevice(DeviceIdentity(serial: "", model: .mn100, firmware: "1")) }?
        .kind == .invalidInput)
  }

  @Test("calibrations round-trip with sweep and record, and the latest is the newest")
  func calibrationsRoundTrip() throws {
    let clock = ManualClock()
    let store = try RecordsStore(path: try F.storeFile(), actor: "tech-7", now: clock.now)
    try store.upsertDevice(F.mnPen)
    let older = F.calibration(at: clock.now())
    let newer = F.calibration(
      at: clock.now().addingTimeInterval(86_400), depthGain: 1.02, record: nil)
    let olderID = try store.addCalibration(older)
    let newerID = try store.addCalibration(newer)
    #expect(newerID > olderID)
    let stored = try store.calibrations(serial: F.mnPen.serial)
    #expect(stored.count == 2)
    var expected = older
    expected.id = olderID
    #expect(stored[0] == expected)
    #expect(stored[0].record == F.exampleRecord)
    #expect(try store.latestCalibration(serial: F.mnPen.serial)?.id == newerID)
    #expect(try store.latestCalibration(serial: F.mnPen.serial)?.depthGain == 1.02)
    #expect(try store.latestCalibration(serial: F.rfPen.serial) == nil)
  }

  @Test("a calibration of an unknown pen, for another pen's record, or with bad numbers is refused")
  func badCalibrationsAreRefused() throws {
    let clock = ManualClock()
    let store = try RecordsStore(path: try F.storeFile(), actor: "tech-7", now: clock.now)
    let unknown = F.error { try store.addCalibration(F.calibration(at: clock.now())) }
    #expect(unknown?.kind == .notFound)
    #expect(unknown?.message.contains("upsertDevice") == true)
    try store.upsertDevice(F.mnPen)
    try store.upsertDevice(F.rfPen)
    // The example record names PC-MN100-000123, not the RF pen.
    let wrongPen = F.error {
      try store.addCalibration(F.calibration(serial: F.rfPen.serial, at: clock.now()))
    }
    #expect(wrongPen?.kind == .invalidInput)
    var corrupted = F.exampleRecord
    corrupted[33] ^= 0x01
    let badCRC = F.error {
      try store.addCalibration(F.calibration(at: clock.now(), record: corrupted))
    }
    #expect(badCRC?.message.contains("CRC-32C") == true)
    let nan = F.error {
      try store.addCalibration(F.calibration(at: clock.now(), depthGain: .nan))
    }
    #expect(nan?.kind == .invalidInput)
    var factoryWithTechnician = F.calibration(at: clock.now())
    factoryWithTechnician.technicianID = 42
    #expect(F.error { try store.addCalibration(factoryWithTechnician) }?.kind == .invalidInput)
    #expect(try store.calibrations(serial: F.mnPen.serial).isEmpty)
    #expect(try store.auditEntries().allSatisfy { $0.action != "calibration.add" })
  }

  // MARK: - Patients

  @Test(
    "patient ids that look like names or e-mail addresses are refused",
    arguments: [
      "Jane Doe", "jane@example.com", "", String(repeating: "a", count: 65), "José", "P-1\n",
      "O'Brien", "P/001",
    ])
  func nameLikePatientIDsAreRefused(_ id: String) throws {
    let store = try RecordsStore(path: try F.storeFile(), actor: "alice")
    let error = F.error { try store.ensurePatient(id) }
    #expect(error?.kind == .invalidInput)
    #expect(error?.message.contains("pseudonymous") == true)
    #expect(F.error { _ = try store.beginSession(F.start(patient: id)) }?.kind == .invalidInput)
    #expect(try store.auditEntries().count == 1)
  }

  @Test("pseudonymous ids of 1-64 characters of A-Z a-z 0-9 . _ - are accepted once")
  func pseudonymousIDsAreAccepted() throws {
    let store = try RecordsStore(path: try F.storeFile(), actor: "alice")
    for id in ["P-000123", "x", "a.b_c-9", String(repeating: "Z", count: 64)] {
      #expect(try store.ensurePatient(id))
      #expect(try !store.ensurePatient(id))
      #expect(try store.patientExists(id))
    }
    #expect(try store.auditEntries().filter { $0.action == "patient.create" }.count == 4)
  }

  @Test("the schema itself refuses a name as a patient id, even written around the store")
  func schemaChecksPatientIDs() throws {
    let file = try F.storeFile()
    _ = try RecordsStore(path: file, actor: "alice")
    #expect(throws: DatabaseError.self) {
      try F.raw(file).write { db in
        try db.execute(
          sql: "INSERT INTO patients (id, created) VALUES ('Jane Doe', '2026-01-01T00:00:00Z')")
      }
    }
  }

  // MARK: - Sessions

  @Test("a session runs: begun in progress, samples saved in order, finished with its energy")
  func sessionLifecycle() throws {
    let clock = ManualClock()
    let store = try RecordsStore(path: try F.storeFile(), actor: "dr-lee", now: clock.now)
    try store.upsertDevice(F.rfPen)
    let id = try store.beginSession(F.start())
    #expect(try store.session(id: id)?.status == .inProgress)
    #expect(try store.session(id: id)?.passes == nil)
    try store.appendSamples(session: id, [F.sample(0, delivered: 0), F.sample(100, delivered: 12)])
    try store.appendSamples(session: id, [F.sample(200, delivered: 30.5)])
    try store.appendSamples(session: id, [])
    clock.advance(seconds: 600)
    try store.finishSession(
      id: id, outcome: .completed, reason: nil, delivered: Millijoules(31), passes: 3)
    let record = try #require(try store.session(id: id))
    #expect(record.status == .completed)
    #expect(record.delivered == Millijoules(31))
    #expect(record.passes == 3)
    #expect(record.endedAt == record.startedAt.addingTimeInterval(600))
    #expect(record.start == F.start())
    #expect(
      try store.samples(session: id).map(\.delivered.value) == [0, 12, 30.5])
    #expect(
      try store.auditEntries().map(\.action).prefix(3) == [
        "session.finish", "session.begin", "patient.create",
      ])
  }

  @Test("samples that go back in time, or arrive after the session closed, are refused")
  func samplesAreGuarded() throws {
    let store = try RecordsStore(path: try F.storeFile(), actor: "dr-lee")
    try store.upsertDevice(F.rfPen)
    let id = try store.beginSession(F.start())
    try store.appendSamples(session: id, [F.sample(500, delivered: 5)])
    #expect(
      F.error { try store.appendSamples(session: id, [F.sample(400, delivered: 6)]) }?.kind
        == .invalidInput)
    #expect(
      F.error {
        try store.appendSamples(
          session: id, [F.sample(600, delivered: 6), F.sample(550, delivered: 7)])
      }?.kind == .invalidInput)
    var nan = F.sample(700, delivered: 8)
    nan.depth = Millimetres(.nan)
    #expect(F.error { try store.appendSamples(session: id, [nan]) }?.kind == .invalidInput)
    #expect(try store.samples(session: id).count == 1)
    try store.finishSession(
      id: id, outcome: .aborted, reason: "patient asked to stop", delivered: Millijoules(5),
      passes: 1)
    let late = F.error { try store.appendSamples(session: id, [F.sample(900, delivered: 9)]) }
    #expect(late?.kind == .invalidState)
    #expect(
      F.error { try store.appendSamples(session: 999, [F.sample(1, delivered: 0)]) }?.kind
        == .notFound)
  }

  @Test("finishing twice, aborting without a reason, or understating the dose is refused")
  func finishIsGuarded() throws {
    let store = try RecordsStore(path: try F.storeFile(), actor: "dr-lee")
    try store.upsertDevice(F.rfPen)
    let id = try store.beginSession(F.start())
    try store.appendSamples(session: id, [F.sample(100, delivered: 40)])
    #expect(
      F.error {
        try store.finishSession(
          id: id, outcome: .aborted, reason: "  ", delivered: Millijoules(40), passes: 1)
      }?.kind == .invalidInput)
    let under = F.error {
      try store.finishSession(
        id: id, outcome: .completed, reason: nil, delivered: Millijoules(39.9), passes: 1)
    }
    #expect(under?.kind == .invalidInput)
    #expect(under?.message.contains("understate the dose") == true)
    #expect(try store.session(id: id)?.status == .inProgress)
    try store.finishSession(
      id: id, outcome: .completed, reason: nil, delivered: Millijoules(40), passes: 2)
    #expect(
      F.error {
        try store.finishSession(
          id: id, outcome: .completed, reason: nil, delivered: Millijoules(40), passes: 2)
      }?.kind == .invalidState)
  }

  @Test("a session needs a recorded pen of the same model")
  func sessionNeedsItsPen() throws {
    let store = try RecordsStore(path: try F.storeFile(), actor: "dr-lee")
    #expect(F.error { _ = try store.beginSession(F.start()) }?.kind == .notFound)
    try store.upsertDevice(F.rfPen)
    var start = F.start()
    start.model = .mn100
    #expect(F.error { _ = try store.beginSession(start) }?.kind == .invalidInput)
    start.model = nil
    #expect(F.error { _ = try store.beginSession(start) }?.kind == .invalidInput)
    #expect(try store.listSessions().isEmpty)
  }

  @Test("a refused session is stored closed with its reason and no energy")
  func refusedSessionIsRecorded() throws {
    let store = try RecordsStore(path: try F.storeFile(), actor: "dr-lee")
    var start = F.start()
    start.penSerial = nil
    start.model = nil
    start.envelope = nil
    let id = try store.recordRefusedSession(start, reason: "isotretinoin within 6 months")
    let record = try #require(try store.session(id: id))
    #expect(record.status == .refused)
    #expect(record.reason == "isotretinoin within 6 months")
    #expect(record.delivered == .zero)
    #expect(record.endedAt == record.startedAt)
    #expect(F.error { try store.recordRefusedSession(start, reason: "") }?.kind == .invalidInput)
    #expect(try store.verifyAudit().ok)
  }

  @Test("sessions are listed by patient and area for course tracking, and newest first overall")
  func sessionQueries() throws {
    let clock = ManualClock()
    let store = try RecordsStore(path: try F.storeFile(), actor: "dr-lee", now: clock.now)
    try store.upsertDevice(F.rfPen)
    var ids: [Int64] = []
    for (patient, area) in [
      ("P-1", TreatmentAreaID.cheeks), ("P-1", .forehead), ("P-2", .cheeks), ("P-1", .cheeks),
    ] {
      clock.advance(seconds: 86_400 * 35)
      let id = try store.beginSession(F.start(patient: patient, area: area))
      try store.finishSession(
        id: id, outcome: .completed, reason: nil, delivered: Millijoules(10), passes: 2)
      ids.append(id)
    }
    #expect(try store.sessions(patient: "P-1", area: .cheeks).map(\.id) == [ids[0], ids[3]])
    #expect(try store.sessions(patient: "P-1").map(\.id) == [ids[0], ids[1], ids[3]])
    #expect(try store.listSessions(limit: 2).map(\.id) == [ids[3], ids[2]])
    #expect(try store.session(id: 12_345) == nil)
  }

  // MARK: - Recovery

  @Test("a session never finished (the process ended) is recovered as aborted with its last energy")
  func interruptedSessionIsRecovered() throws {
    let file = try F.storeFile()
    let clock = ManualClock()
    let id: Int64
    do {
      let store = try RecordsStore(path: file, actor: "dr-lee", now: clock.now)
      try store.upsertDevice(F.rfPen)
      id = try store.beginSession(F.start())
      try store.appendSamples(
        session: id, [F.sample(0, delivered: 0), F.sample(100, delivered: 9)])
      try store.appendSamples(session: id, [F.sample(200, delivered: 21.25)])
      // The store is dropped here without finishing: the process "ends".
    }
    clock.advance(seconds: 120)
    let store = try RecordsStore(path: file, actor: "penctl", now: clock.now)
    #expect(try store.session(id: id)?.status == .inProgress)
    let recovered = try store.recoverInterrupted()
    #expect(
      recovered == [
        RecoveredSession(
          id: id, patient: "P-000123", area: .cheeks, delivered: Millijoules(21.25), samples: 3,
          lastSampleTime: .milliseconds(200))
      ])
    let record = try #require(try store.session(id: id))
    #expect(record.status == .aborted)
    #expect(record.reason == RecordsStore.interruptedReason)
    #expect(record.delivered == Millijoules(21.25))
    let entry = try #require(try store.auditEntries(limit: 1).first)
    #expect(entry.action == "session.recover")
    #expect(entry.subject == "session:\(id)")
    #expect(entry.actor == "penctl")
    #expect(entry.detail.contains(#""delivered_mj":21.25"#))
    #expect(entry.detail.contains(#""last_sample_t_us":200000"#))
    #expect(try store.verifyAudit().ok)
    #expect(try store.recoverInterrupted().isEmpty)
  }

  @Test("an interrupted session with no samples is recovered with zero energy")
  func interruptedSessionWithoutSamples() throws {
    let file = try F.storeFile()
    do {
      let store = try RecordsStore(path: file, actor: "dr-lee")
      try store.upsertDevice(F.rfPen)
      _ = try store.beginSession(F.start())
    }
    let recovered = try RecordsStore(path: file, actor: "penctl").recoverInterrupted()
    #expect(recovered.count == 1)
    #expect(recovered.first?.delivered == .zero)
    #expect(recovered.first?.lastSampleTime == nil)
  }

  @Test("recovery leaves alone a session that a live store is still running")
  func liveSessionIsNotRecovered() throws {
    let file = try F.storeFile()
    let folder = file.deletingLastPathComponent()
    func lockFiles() throws -> [String] {
      try FileManager.default.contentsOfDirectory(atPath: folder.path).filter {
        $0.hasSuffix(".lock")
      }
    }
    var running: RecordsStore? = try RecordsStore(path: file, actor: "dr-lee")
    try running!.upsertDevice(F.rfPen)
    let live = try running!.beginSession(F.start())
    try running!.appendSamples(session: live, [F.sample(100, delivered: 3)])
    #expect(try lockFiles().count == 1)
    let other = try RecordsStore(path: file, actor: "penctl")
    #expect(try other.recoverInterrupted().isEmpty)
    #expect(try running!.recoverInterrupted().isEmpty)
    try running!.appendSamples(session: live, [F.sample(200, delivered: 4)])
    try running!.finishSession(
      id: live, outcome: .completed, reason: nil, delivered: Millijoules(4), passes: 1)
    #expect(try other.session(id: live)?.status == .completed)
    // A second session of the same store, left open when the store goes: recoverable then.
    let open = try running!.beginSession(F.start())
    #expect(try other.recoverInterrupted().isEmpty)
    running = nil
    #expect(try lockFiles().isEmpty)
    #expect(try other.recoverInterrupted().map(\.id) == [open])
  }
}
