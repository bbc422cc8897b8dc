import Foundation
import GRDB

/// Why the records store refused an operation: what was wrong, the file, and what to do.
public struct RecordsError: Error, Sendable, Hashable, CustomStringConvertible {
  /// The kind of failure, for callers that react differently to each.
  public enum Kind: String, Sendable, Hashable {
    /// The file exists but is not an SQLite database (for example a text file).
    case notADatabase = "not_a_database"
    /// An SQLite database that is not a PenControl records store.
    case notARecordsStore = "not_a_records_store"
    /// The database was written by a newer PenControl (a higher schema version or migrations
    /// this build does not know).
    case newerSchema = "newer_schema"
    /// Another process holds the database locked for longer than the busy timeout.
    case busy
    /// The file or its folder cannot be created, read or written.
    case io
    /// A write broke a rule of the schema (a missing device, a duplicate, a check).
    case constraint
    /// A value given to the store is not acceptable (a patient id, a non-finite number …).
    case invalidInput = "invalid_input"
    /// The named record does not exist.
    case notFound = "not_found"
    /// The record exists but is not in a state that allows the operation.
    case invalidState = "invalid_state"
    /// Stored data does not decode: the database was changed outside PenControl or is damaged.
    case corrupt
    /// Any other SQLite failure.
    case database
  }

  public var kind: Kind
  /// The database file, when the failure concerns it.
  public var path: String?
  /// What went wrong and what to do, for a person.
  public var message: String

  public init(_ kind: Kind, path: String?, _ message: String) {
    self.kind = kind
    self.path = path
    self.message = message
  }

  public var description: String {
    if let path { return "records store \(path): \(message)" }
    return "records store: \(message)"
  }

  /// Maps an SQLite error met while working on `path` during `operation`.
  static func from(_ error: any Error, path: String, during operation: String) -> RecordsError {
    if let records = error as? RecordsError { return records }
    guard let sqlite = error as? DatabaseError else {
      return RecordsError(.database, path: path, "\(operation) failed: \(error)")
    }
    let detail = sqlite.message ?? "SQLite error \(sqlite.extendedResultCode.rawValue)"
    switch sqlite.resultCode {
    case .SQLITE_NOTADB:
      return RecordsError(
        .notADatabase, path: path,
        "\(operation) failed: the file is not an SQLite database (\(detail)). Give the path of a "
          + "records store, or move the file away so that a new store can be created.")
    case .SQLITE_BUSY, .SQLITE_LOCKED:
      return RecordsError(
        .busy, path: path,
        "\(operation) failed: the database is locked by another process (\(detail)). Wait for "
          + "the other penctl to finish, then retry.")
    case .SQLITE_CONSTRAINT:
      return RecordsError(
        .constraint, path: path,
        "\(operation) broke a rule of the records schema: \(detail). Nothing was written.")
    case .SQLITE_IOERR, .SQLITE_CANTOPEN, .SQLITE_FULL, .SQLITE_READONLY, .SQLITE_PERM:
      return RecordsError(
        .io, path: path,
        "\(operation) failed with an I/O error: \(detail). Check that the folder exists, is "
          + "writable and the disk is not full; nothing was written.")
    case .SQLITE_CORRUPT:
      return RecordsError(
        .corrupt, path: path,
        "\(operation) failed: the database is damaged (\(detail)). Keep the file for "
          + "investigation and restore the records from a backup.")
    default:
      return RecordsError(.database, path: path, "\(operation) failed: \(detail)")
    }
  }
}
