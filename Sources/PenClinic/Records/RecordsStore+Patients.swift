import Foundation
import GRDB

extension RecordsStore {
  /// The longest patient id.
  public static let maxPatientIDLength = 64

  /// Refuses a patient id that is not 1-64 characters of `A-Z a-z 0-9 . _ -`.
  ///
  /// The store keeps pseudonymous ids only: no names, no e-mail addresses. The rule cannot tell
  /// `janedoe` from a pseudonym, but it refuses the usual shapes of personal data (spaces, `@`,
  /// accents) so that they are not stored by accident.
  public static func validatePatientID(_ id: String) throws(RecordsError) {
    let allowed = id.unicodeScalars.allSatisfy { scalar in
      switch scalar {
      case "A"..."Z", "a"..."z", "0"..."9", ".", "_", "-": true
      default: false
      }
    }
    guard !id.isEmpty, id.unicodeScalars.count <= maxPatientIDLength, allowed else {
      let shown = String(reflecting: String(id.prefix(80)))
      let why =
        id.isEmpty
        ? "is empty"
        : id.unicodeScalars.count > maxPatientIDLength
          ? "has \(id.unicodeScalars.count) characters, more than \(maxPatientIDLength)"
          : "contains characters other than A-Z a-z 0-9 . _ -"
      throw RecordsError(
        .invalidInput, path: nil,
        "patient id \(shown) \(why). Use the clinic's pseudonymous patient id (for example "
          + "P-000123), never a name or an e-mail address.")
    }
  }

  /// Records a patient id if it is new; returns whether it was new.
  @discardableResult
  public func ensurePatient(_ id: String) throws(RecordsError) -> Bool {
    try Self.validatePatientID(id)
    return try write("recording patient \(id)") { db in try ensurePatient(db, id) }
  }

  /// Whether the patient id is recorded.
  public func patientExists(_ id: String) throws(RecordsError) -> Bool {
    try read("reading patient \(id)") { db in
      try Bool.fetchOne(
        db, sql: "SELECT EXISTS (SELECT 1 FROM patients WHERE id = ?)", arguments: [id]) ?? false
    }
  }

  func ensurePatient(_ db: Database, _ id: String) throws -> Bool {
    let known =
      try Bool.fetchOne(
        db, sql: "SELECT EXISTS (SELECT 1 FROM patients WHERE id = ?)", arguments: [id]) ?? false
    if known { return false }
    try db.execute(
      sql: "INSERT INTO patients (id, created) VALUES (?, ?)",
      arguments: [id, Self.timestamp(now())])
    try audit(db, "patient.create", "patient:\(id)", [:])
    return true
  }
}
