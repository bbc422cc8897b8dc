import Foundation
import GRDB
import PenWire

extension RecordsStore {
  /// Stores a calibration of a recorded pen and returns its id.
  ///
  /// Refuses numbers that are not finite, a technician id that breaks calibration.md's writer
  /// rule (0 for factory, non-zero for technician), and a record that does not decode or names
  /// another pen.
  @discardableResult
  public func addCalibration(_ entry: CalibrationEntry) throws(RecordsError) -> Int64 {
    try Self.validateSerial(entry.serial)
    try validate(entry)
    let sweep: String
    do {
      sweep = try RecordJSON(encoding: entry.sweep).canonicalText
    } catch {
      throw RecordsError(.invalidInput, path: path.path, "the calibration sweep: \(error.message)")
    }
    return try write("storing a calibration of pen \(entry.serial)") { db in
      let device = try Self.requireDevice(db, entry.serial)
      if let record = entry.record {
        let model: String = device["model"]
        let recordModel = PenModelID(rawValue: record[CalibrationField.model.offset])
          .map { Self.name($0.catalogueName) }
        guard recordModel == model else {
          throw RecordsError(
            .invalidInput, path: path.path,
            "the calibration record is for model \(recordModel ?? "unknown") but pen "
              + "\(entry.serial) is a \(model)")
        }
      }
      let source = Self.name(entry.source.specName)
      let at = Self.timestamp(entry.at)
      try db.execute(
        sql: """
          INSERT INTO calibrations (
            serial, source, at, technician_id, depth_gain, depth_offset_mm, speed_gain, rf_gain,
            before_depth_error_um, before_speed_error_pct, before_rf_error_pct,
            after_depth_error_um, after_speed_error_pct, after_rf_error_pct,
            sweep_json, passed, marked_bad, record_hex)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          """,
        arguments: [
          entry.serial, source, at, Int64(entry.technicianID), entry.depthGain,
          entry.depthOffset.value, entry.speedGain, entry.rfGain,
          entry.before?.depthMicrometres, entry.before?.speedPercent, entry.before?.rfPercent,
          entry.after.depthMicrometres, entry.after.speedPercent, entry.after.rfPercent,
          sweep, entry.passed, entry.markedBad, entry.record.map(Self.hex),
        ])
      let id = db.lastInsertedRowID
      try audit(
        db, "calibration.add", "calibration:\(id)",
        [
          "serial": .string(entry.serial), "source": .string(source), "at": .string(at),
          "technician_id": .int(Int64(entry.technicianID)),
          "depth_gain": .double(entry.depthGain),
          "depth_offset_mm": .double(entry.depthOffset.value),
          "speed_gain": .double(entry.speedGain), "rf_gain": .double(entry.rfGain),
          "passed": .bool(entry.passed), "marked_bad": .bool(entry.markedBad),
          "record_hex": entry.record.map { .string(Self.hex($0)) } ?? .null,
        ])
      return id
    }
  }

  /// A pen's calibrations, oldest first.
  public func calibrations(serial: String) throws(RecordsError) -> [CalibrationEntry] {
    try read("reading the calibrations of pen \(serial)") { db in
      try Row.fetchAll(
        db, sql: "SELECT * FROM calibrations WHERE serial = ? ORDER BY at, id",
        arguments: [serial]
      ).map { try Self.calibration($0) }
    }
  }

  /// A pen's newest calibration (by its time, then by the order stored), if any.
  public func latestCalibration(serial: String) throws(RecordsError) -> CalibrationEntry? {
    try read("reading the latest calibration of pen \(serial)") { db in
      try Row.fetchOne(
        db, sql: "SELECT * FROM calibrations WHERE serial = ? ORDER BY at DESC, id DESC LIMIT 1",
        arguments: [serial]
      ).map { try Self.calibration($0) }
    }
  }

  private func validate(_ entry: CalibrationEntry) throws(RecordsError) {
    var numbers: [(String, Double?)] = [
      ("depth_gain", entry.depthGain), ("depth_offset_mm", entry.depthOffset.value),
      ("speed_gain", entry.speedGain), ("rf_gain", entry.rfGain),
      ("after depth error", entry.after.depthMicrometres),
      ("after speed error", entry.after.speedPercent), ("after RF error", entry.after.rfPercent),
      ("before depth error", entry.before?.depthMicrometres),
      ("before speed error", entry.before?.speedPercent),
      ("before RF error", entry.before?.rfPercent),
    ]
    for point in entry.sweep {
      numbers.append(("sweep \(point.quantity.rawValue) setpoint", point.setpoint))
      numbers.append(("sweep \(point.quantity.rawValue) before", point.before))
      numbers.append(("sweep \(point.quantity.rawValue) after", point.after))
    }
    for (name, value) in numbers {
      if let value, !value.isFinite {
        throw RecordsError(
          .invalidInput, path: path.path,
          "calibration of pen \(entry.serial): \(name) is \(value); only finite numbers can be "
            + "recorded. Repeat the sweep.")
      }
    }
    switch (entry.source, entry.technicianID) {
    case (.factory, 0), (.technician, 1...): break
    case (.factory, let id):
      throw RecordsError(
        .invalidInput, path: path.path,
        "a factory calibration carries technician id 0, not \(id) (calibration.md section 1)")
    case (.technician, _):
      throw RecordsError(
        .invalidInput, path: path.path,
        "a technician calibration needs the technician's non-zero id (calibration.md section 1)")
    }
    guard let record = entry.record else { return }
    do {
      _ = try CalibrationRecord.decode(record)
    } catch {
      throw RecordsError(
        .invalidInput, path: path.path, "the record of pen \(entry.serial) is not valid: \(error)")
    }
    let serialBytes = record[CalibrationField.serial.offset..<CalibrationField.serial.offset + 16]
    let serial = String(decoding: serialBytes.prefix { $0 != 0 }, as: UTF8.self)
    guard serial == entry.serial else {
      throw RecordsError(
        .invalidInput, path: path.path,
        "the calibration record names pen \(String(reflecting: serial)), not \(entry.serial)")
    }
  }

  static func calibration(_ row: Row) throws -> CalibrationEntry {
    let sourceName: String = row["source"]
    guard
      let source = sourceName == "factory"
        ? CalibrationSource.factory
        : sourceName == "technician" ? .technician : nil
    else {
      throw RecordsError(.corrupt, path: nil, "calibration source \(sourceName) is unknown")
    }
    var before: CalibrationErrors?
    if let depth: Double = row["before_depth_error_um"],
      let speed: Double = row["before_speed_error_pct"]
    {
      before = CalibrationErrors(
        depthMicrometres: depth, speedPercent: speed, rfPercent: row["before_rf_error_pct"])
    }
    let sweepText: String = row["sweep_json"]
    let sweep: [CalibrationSweepPoint]
    do {
      sweep = try JSONDecoder().decode([CalibrationSweepPoint].self, from: Data(sweepText.utf8))
    } catch {
      throw RecordsError(.corrupt, path: nil, "calibration sweep_json does not decode: \(error)")
    }
    let technician: Int64 = row["technician_id"]
    return CalibrationEntry(
      id: row["id"], serial: row["serial"], source: source,
      at: try date(row["at"], column: "calibrations.at"),
      technicianID: UInt32(clamping: technician), depthGain: row["depth_gain"],
      depthOffset: Millimetres(row["depth_offset_mm"]), speedGain: row["speed_gain"],
      rfGain: row["rf_gain"], before: before,
      after: CalibrationErrors(
        depthMicrometres: row["after_depth_error_um"], speedPercent: row["after_speed_error_pct"],
        rfPercent: row["after_rf_error_pct"]),
      sweep: sweep, passed: row["passed"], markedBad: row["marked_bad"],
      record: try (row["record_hex"] as String?).map { try bytes(hex: $0) })
  }
}
