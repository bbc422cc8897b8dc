import Crypto
import Foundation
import GRDB
import PenSafety
import PenWire

extension RecordsStore {
  /// ISO-8601 UTC with milliseconds, the form of every timestamp in the store.
  static func timestamp(_ date: Date) -> String {
    date.formatted(
      Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
  }

  static func date(_ text: String, column: String) throws -> Date {
    do {
      return try Date(
        text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    } catch {
      throw RecordsError(
        .corrupt, path: nil, "\(column) \(String(reflecting: text)) is not an ISO-8601 UTC time")
    }
  }

  static func name(_ value: StaticString) -> String { "\(value)" }

  /// The catalogue value whose name is `name`, for the enums stored by name.
  static func named<T>(
    _ name: String, column: String, _ make: (UInt8) -> T?, _ nameOf: (T) -> StaticString
  ) throws -> T {
    for raw in UInt8.min...UInt8.max {
      if let value = make(raw), "\(nameOf(value))" == name { return value }
    }
    throw RecordsError(
      .corrupt, path: nil, "\(column) \(String(reflecting: name)) is not a known value")
  }

  static func area(_ name: String) throws -> TreatmentAreaID {
    try named(name, column: "area", TreatmentAreaID.init(rawValue:), \.catalogueName)
  }

  static func model(_ name: String) throws -> PenModelID {
    try named(name, column: "model", PenModelID.init(rawValue:), \.catalogueName)
  }

  static func state(_ name: String) throws -> PenState {
    try named(name, column: "state", PenState.init(rawValue:), \.catalogueName)
  }

  static func hex(_ bytes: [UInt8]) -> String { AuditChain.hex(bytes) }

  static func bytes(hex: String) throws -> [UInt8] {
    let digits = Array(hex.utf8)
    guard digits.count.isMultiple(of: 2) else {
      throw RecordsError(.corrupt, path: nil, "record_hex has an odd number of digits")
    }
    var out: [UInt8] = []
    var index = 0
    while index < digits.count {
      guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16)
      else {
        throw RecordsError(.corrupt, path: nil, "record_hex is not hexadecimal")
      }
      out.append(byte)
      index += 2
    }
    return out
  }

  /// The canonical line of one sample in the samples digest (records.md section 4.3).
  static func sampleLine(
    time: Int64, state: String, depth: Double, speed: Double, rfPower: Double, delivered: Double,
    contact: Bool
  ) -> String {
    let object: RecordJSON = [
      "t_us": .int(time), "state": .string(state), "depth_mm": .double(depth),
      "speed_hz": .double(speed), "rf_power_w": .double(rfPower),
      "delivered_mj": .double(delivered), "contact": .bool(contact),
    ]
    return object.canonicalText + "\n"
  }

  /// The number of a session's samples and the SHA-256 of their canonical lines in time order.
  static func samplesDigest(_ db: Database, session: Int64) throws -> (count: Int, sha256: String) {
    var hasher = SHA256()
    var count = 0
    let rows = try Row.fetchCursor(
      db,
      sql: """
        SELECT t_us, state, depth_mm, speed_hz, rf_power_w, delivered_mj, contact
        FROM session_samples WHERE session_id = ? ORDER BY t_us, rowid
        """,
      arguments: [session])
    while let row = try rows.next() {
      let line = sampleLine(
        time: row["t_us"], state: row["state"], depth: row["depth_mm"], speed: row["speed_hz"],
        rfPower: row["rf_power_w"], delivered: row["delivered_mj"], contact: row["contact"])
      hasher.update(data: Array(line.utf8))
      count += 1
    }
    return (count, AuditChain.hex(hasher.finalize()))
  }
}
