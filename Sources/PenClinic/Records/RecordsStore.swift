public import Foundation
import GRDB

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The clinic's records: devices, calibrations, patients (pseudonymous), treatment sessions with
/// their telemetry checkpoints, and an append-only, hash-chained audit log, in one SQLite file
/// in WAL mode (Firmware-Specs/records.md).
///
/// Every write runs in one immediate transaction together with its audit entry, so a write and
/// its audit entry are committed together or not at all.
public final class RecordsStore: Sendable {
  /// The schema version this build writes, kept in `PRAGMA user_version`.
  public static let schemaVersion = 1
  /// `PRAGMA application_id` of a records store: "PCRS".
  static let applicationID: Int32 = 0x5043_5253

  /// The database file.
  public let path: URL
  /// Who is recorded as making the changes: the OS user or the `--operator` name.
  public let actor: String
  let pool: DatabasePool
  let now: @Sendable () -> Date
  let ownership: SessionOwnership

  /// Opens (creating if needed) the records store at `path`, migrating it to the current schema.
  ///
  /// Refuses, changing nothing, a file that is not an SQLite database, an SQLite database that
  /// is not a records store, and a records store written by a newer PenControl.
  /// - Parameters:
  ///   - actor: recorded in every audit entry this store writes.
  ///   - now: the clock for record and audit timestamps (injected by tests).
  ///   - busyTimeout: how long to wait for another process's lock before failing with `.busy`.
  public init(
    path: URL, actor: String, now: @escaping @Sendable () -> Date = { Date() },
    busyTimeout: TimeInterval = 5
  ) throws(RecordsError) {
    let file = path.standardizedFileURL
    let actor = try Self.validatedActor(actor)
    let directory = file.deletingLastPathComponent()
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
      throw RecordsError(
        .io, path: file.path,
        "cannot create the folder \(directory.path): \(error.localizedDescription). Create it "
          + "or choose another location (PENCONTROL_DATA).")
    }
    try Self.checkHeader(of: file)
    try Self.probe(file, busyTimeout: busyTimeout)
    try Self.createIfMissing(file, actor: actor, now: now)

    var configuration = Configuration()
    configuration.foreignKeysEnabled = true
    configuration.busyMode = .timeout(busyTimeout)
    configuration.label = "PenControl.records"
    let pool: DatabasePool
    do {
      pool = try DatabasePool(path: file.path, configuration: configuration)
      // A committed record must survive a power cut, not only a crash of the process. GRDB
      // sets NORMAL on the writer after any prepareDatabase hook runs, so set FULL here, on the
      // pool's one writer connection, and check that it holds.
      let synchronous = try pool.writeWithoutTransaction { db in
        try db.execute(sql: "PRAGMA synchronous = FULL")
        return try Int.fetchOne(db, sql: "PRAGMA synchronous")
      }
      guard synchronous == 2 else {
        throw RecordsError(
          .database, path: file.path,
          "SQLite refused synchronous = FULL (it reports \(synchronous.map(String.init) ?? "nothing")); "
            + "records would not be safe against a power cut")
      }
    } catch {
      throw RecordsError.from(error, path: file.path, during: "opening the database")
    }
    self.path = file
    self.actor = actor
    self.pool = pool
    self.now = now
    self.ownership = SessionOwnership(database: file)
    do {
      try Self.migrator(actor: actor, now: now).migrate(pool)
    } catch {
      throw RecordsError.from(error, path: file.path, during: "migrating the schema")
    }
  }

  // MARK: - Locations

  /// The folder for PenControl's data: `$PENCONTROL_DATA` if set, else
  /// `$XDG_DATA_HOME/pencontrol`, else `~/.local/share/pencontrol`.
  public static func dataDirectory(
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) -> URL {
    if let data = environment["PENCONTROL_DATA"], !data.isEmpty {
      return URL(fileURLWithPath: data, isDirectory: true)
    }
    // The XDG specification says an empty or relative value is to be ignored.
    if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") {
      return URL(fileURLWithPath: xdg, isDirectory: true).appendingPathComponent(
        "pencontrol", isDirectory: true)
    }
    let home =
      environment["HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
      ?? FileManager.default.homeDirectoryForCurrentUser
    return home.appendingPathComponent(".local/share/pencontrol", isDirectory: true)
  }

  /// The default records file: `records.sqlite` in `dataDirectory(environment:)`.
  public static func defaultPath(
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) -> URL {
    dataDirectory(environment: environment).appendingPathComponent("records.sqlite")
  }

  // MARK: - Opening checks

  static func validatedActor(_ actor: String) throws(RecordsError) -> String {
    guard !actor.isEmpty, actor.count <= 128,
      !actor.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
    else {
      throw RecordsError(
        .invalidInput, path: nil,
        "actor \(String(reflecting: actor)) must be 1-128 characters without control "
          + "characters; give the operator's name with --operator")
    }
    return actor
  }

  /// Refuses a file that exists and is not SQLite before SQLite touches it, so that the file is
  /// left exactly as it was.
  static func checkHeader(of file: URL) throws(RecordsError) {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory) else {
      return
    }
    guard !isDirectory.boolValue else {
      throw RecordsError(
        .notADatabase, path: file.path,
        "this is a folder, not a records file; give the path of a .sqlite file")
    }
    let header: Data
    do {
      let handle = try FileHandle(forReadingFrom: file)
      defer { try? handle.close() }
      header = try handle.read(upToCount: 16) ?? Data()
    } catch {
      throw RecordsError(
        .io, path: file.path,
        "cannot read the file: \(error.localizedDescription). Check its permissions.")
    }
    // SQLite would take an empty file for a new database and start a fresh store in it. But a
    // records file of 0 bytes is more likely a store lost to a failed copy or a full disk than
    // a new one, and starting over would silently drop the patients' history (and with it the
    // course rules): refuse it (records.md section 1), and let a person decide.
    guard !header.isEmpty else {
      throw RecordsError(
        .notADatabase, path: file.path,
        "the file is empty (0 bytes), so it holds no records store; it was left untouched. If it "
          + "held records, restore them from a backup; to start a new store, delete the file or "
          + "give the path of a file that does not exist.")
    }
    let magic = Array("SQLite format 3\u{0}".utf8)
    guard Array(header) == magic else {
      throw RecordsError(
        .notADatabase, path: file.path,
        "the file is not an SQLite database (it starts with "
          + "\(String(reflecting: String(decoding: header.prefix(12), as: UTF8.self)))); it was "
          + "left untouched. Give the path of a records store, or move the file away.")
    }
  }

  /// Reads an existing database without writing to it, and refuses one this build must not
  /// migrate: another application's database, or a newer records store.
  static func probe(_ file: URL, busyTimeout: TimeInterval) throws(RecordsError) {
    guard let size = try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int,
      size > 0
    else { return }
    var configuration = Configuration()
    configuration.readonly = true
    configuration.busyMode = .timeout(busyTimeout)
    configuration.label = "PenControl.records.probe"
    let found: (version: Int, application: Int32, objects: Int, unknown: [String])
    do {
      let queue = try DatabaseQueue(path: file.path, configuration: configuration)
      found = try queue.read { db in
        let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
        let application = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
        let objects =
          try Int.fetchOne(
            db, sql: "SELECT COUNT(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'") ?? 0
        let known = Set(migrator(actor: "", now: { Date() }).migrations)
        let applied = try migrator(actor: "", now: { Date() }).appliedIdentifiers(db)
        return (version, application, objects, applied.subtracting(known).sorted())
      }
      try queue.close()
    } catch {
      throw RecordsError.from(error, path: file.path, during: "reading the database")
    }
    if found.objects > 0 && found.application != applicationID {
      throw RecordsError(
        .notARecordsStore, path: file.path,
        "this SQLite database is not a PenControl records store (application_id "
          + "\(found.application), expected \(applicationID)); it was left untouched. Give the "
          + "path of a records store or of a new file.")
    }
    if found.version > schemaVersion || !found.unknown.isEmpty {
      let migrations = found.unknown.isEmpty ? "" : ", unknown migrations \(found.unknown)"
      throw RecordsError(
        .newerSchema, path: file.path,
        "the records were written by a newer PenControl (schema version \(found.version)"
          + "\(migrations); this build reads up to version \(schemaVersion)). Nothing was "
          + "changed. Use the newer penctl, or a copy of the records for this one.")
    }
  }

  /// Builds a new store beside `file` and links it into place whole, so that a process killed
  /// while creating the store leaves no file rather than an empty or half-made one (an empty
  /// file is refused as lost records, see `checkHeader`).
  static func createIfMissing(
    _ file: URL, actor: String, now: @escaping @Sendable () -> Date
  ) throws(RecordsError) {
    let manager = FileManager.default
    guard !manager.fileExists(atPath: file.path) else { return }
    let directory = file.deletingLastPathComponent()
    let building = directory.appendingPathComponent(
      ".\(file.lastPathComponent).creating-\(UUID().uuidString.lowercased())")
    defer {
      for suffix in ["", "-wal", "-shm", "-journal"] {
        try? manager.removeItem(atPath: building.path + suffix)
      }
    }
    do {
      var configuration = Configuration()
      configuration.foreignKeysEnabled = true
      configuration.label = "PenControl.records.create"
      let queue = try DatabaseQueue(path: building.path, configuration: configuration)
      try migrator(actor: actor, now: now).migrate(queue)
      try queue.writeWithoutTransaction { db in
        _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
      }
      try queue.close()
    } catch {
      throw RecordsError.from(error, path: file.path, during: "creating the database")
    }
    do {
      // A link, not a rename: if another process put its new store in place first, keep that.
      try manager.linkItem(at: building, to: file)
    } catch CocoaError.fileWriteFileExists {
      return
    } catch {
      if manager.fileExists(atPath: file.path) { return }
      throw RecordsError(
        .io, path: file.path,
        "cannot create the records file: \(error.localizedDescription). Check that the folder "
          + "is writable.")
    }
    // The new name must survive a power cut along with the records written under it.
    let fd = open(directory.path, O_RDONLY | O_CLOEXEC)
    if fd >= 0 {
      _ = fsync(fd)
      _ = close(fd)
    }
  }

  // MARK: - Access

  /// Runs `body` in one immediate write transaction; its audit entries commit with it.
  func write<T>(
    _ operation: String, _ body: (Database) throws -> T
  ) throws(RecordsError) -> T {
    do {
      return try pool.writeWithoutTransaction { db in
        var result: T?
        // IMMEDIATE: take the write lock first, so a busy database fails before any work.
        try db.inTransaction(.immediate) {
          result = try body(db)
          return .commit
        }
        return result!
      }
    } catch {
      throw RecordsError.from(error, path: path.path, during: operation)
    }
  }

  func read<T>(_ operation: String, _ body: (Database) throws -> T) throws(RecordsError) -> T {
    do {
      return try pool.read { db in try body(db) }
    } catch {
      throw RecordsError.from(error, path: path.path, during: operation)
    }
  }

  /// The journal mode in force ("wal").
  public func journalMode() throws(RecordsError) -> String {
    try read("reading the journal mode") { db in
      try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? ""
    }
  }
}
