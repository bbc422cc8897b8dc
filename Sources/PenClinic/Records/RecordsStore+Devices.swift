import Foundation
import GRDB
import PenWire

extension RecordsStore {
  /// Records a connected pen, or its new firmware and last-seen time if it is known.
  ///
  /// Refuses a serial already recorded for another model: one serial naming two models means a
  /// mis-programmed or counterfeit pen.
  @discardableResult
  public func upsertDevice(_ device: DeviceIdentity) throws(RecordsError) -> DeviceRecord {
    try Self.validateSerial(device.serial)
    guard !device.firmware.isEmpty, device.firmware.count <= 64,
      device.firmware.unicodeScalars.allSatisfy({ (0x20...0x7E).contains($0.value) })
    else {
      throw RecordsError(
        .invalidInput, path: path.path,
        "firmware version \(String(reflecting: device.firmware)) must be 1-64 printable ASCII "
          + "characters, as the pen reports it")
    }
    let model = Self.name(device.model.catalogueName)
    return try write("recording pen \(device.serial)") { db in
      let at = now()
      let stamp = Self.timestamp(at)
      if let existing = try Row.fetchOne(
        db, sql: "SELECT * FROM devices WHERE serial = ?", arguments: [device.serial])
      {
        let knownModel: String = existing["model"]
        guard knownModel == model else {
          throw RecordsError(
            .invalidInput, path: path.path,
            "pen \(device.serial) is recorded as model \(knownModel) but now reports \(model); "
              + "one serial cannot name two models. Take the pen out of service and check it.")
        }
        let oldFirmware: String = existing["firmware"]
        try db.execute(
          sql: "UPDATE devices SET firmware = ?, last_seen = ? WHERE serial = ?",
          arguments: [device.firmware, stamp, device.serial])
        var detail: [String: RecordJSON] = ["model": .string(model)]
        detail["firmware"] = .string(device.firmware)
        if oldFirmware != device.firmware { detail["previous_firmware"] = .string(oldFirmware) }
        try audit(db, "device.upsert", "device:\(device.serial)", .object(detail))
        return try Self.device(existing, firmware: device.firmware, lastSeen: stamp)
      }
      try db.execute(
        sql: """
          INSERT INTO devices (serial, model, firmware, first_seen, last_seen)
          VALUES (?, ?, ?, ?, ?)
          """,
        arguments: [device.serial, model, device.firmware, stamp, stamp])
      try audit(
        db, "device.upsert", "device:\(device.serial)",
        ["model": .string(model), "firmware": .string(device.firmware), "new": true])
      return DeviceRecord(
        serial: device.serial, model: device.model, firmware: device.firmware,
        firstSeen: try Self.date(stamp, column: "first_seen"),
        lastSeen: try Self.date(stamp, column: "last_seen"))
    }
  }

  /// The recorded pen with this serial, if any.
  public func device(serial: String) throws(RecordsError) -> DeviceRecord? {
    try read("reading pen \(serial)") { db in
      try Row.fetchOne(db, sql: "SELECT * FROM devices WHERE serial = ?", arguments: [serial])
        .map { try Self.device($0) }
    }
  }

  /// Every recorded pen, by serial.
  public func devices() throws(RecordsError) -> [DeviceRecord] {
    try read("reading pens") { db in
      try Row.fetchAll(db, sql: "SELECT * FROM devices ORDER BY serial").map { try Self.device($0) }
    }
  }

  static func device(
    _ row: Row, firmware: String? = nil, lastSeen: String? = nil
  ) throws -> DeviceRecord {
    DeviceRecord(
      serial: row["serial"], model: try model(row["model"]), firmware: firmware ?? row["firmware"],
      firstSeen: try date(row["first_seen"], column: "first_seen"),
      lastSeen: try date(lastSeen ?? row["last_seen"], column: "last_seen"))
  }

  /// A pen serial as the calibration record carries it: 1-16 printable ASCII characters
  /// (calibration.md section 1).
  static func validateSerial(_ serial: String) throws(RecordsError) {
    guard (1...16).contains(serial.utf8.count),
      serial.unicodeScalars.allSatisfy({ (0x20...0x7E).contains($0.value) })
    else {
      throw RecordsError(
        .invalidInput, path: nil,
        "pen serial \(String(reflecting: serial)) must be 1-16 printable ASCII characters "
          + "(0x20-0x7E), as the pen reports it")
    }
  }

  /// The device row for `serial`, or a not-found error that says what to do.
  static func requireDevice(_ db: Database, _ serial: String) throws -> Row {
    guard
      let row = try Row.fetchOne(
        db, sql: "SELECT * FROM devices WHERE serial = ?", arguments: [serial])
    else {
      throw RecordsError(
        .notFound, path: nil,
        "pen \(serial) is not in the records; record it with upsertDevice when it connects, "
          + "before its calibrations and sessions")
    }
    return row
  }
}
