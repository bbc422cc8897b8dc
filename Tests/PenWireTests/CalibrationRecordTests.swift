import Foundation
import PenWire
import Testing

/// Reads calibration.md and calibration.json, the normative description these tests pin.
private enum CalibrationSpec {
  static func json() throws -> [String: Any] {
    try SpecFiles.json("Firmware-Specs/calibration.json")
  }

  /// The example record's bytes, from calibration.json.
  static func exampleFromJSON() throws -> [UInt8] {
    let example = try #require(try json()["example"] as? [String: Any])
    return [UInt8](hex: try #require(example["hex"] as? String))
  }

  /// The example record's bytes, from the hex block that follows "Example" in calibration.md.
  static func exampleFromMarkdown() throws -> [UInt8] {
    let text = try String(
      contentsOf: SpecFiles.root.appendingPathComponent("Firmware-Specs/calibration.md"),
      encoding: .utf8)
    let afterExample = try #require(text.range(of: "Example (informative)"))
    let open = try #require(text.range(of: "```\n", range: afterExample.upperBound..<text.endIndex))
    let close = try #require(text.range(of: "```", range: open.upperBound..<text.endIndex))
    let hex = text[open.upperBound..<close.lowerBound].filter { !$0.isWhitespace }
    return [UInt8](hex: String(hex))
  }

  /// Every entry of calibration.json's field table.
  static func fields() throws -> [[String: Any]] {
    try #require(try json()["fields"] as? [[String: Any]])
  }

  /// A number written either as a JSON number or as a "0x…" string.
  static func integer(_ value: Any?) -> Int? {
    if let n = value as? Int { return n }
    if let s = value as? String, s.hasPrefix("0x") { return Int(s.dropFirst(2), radix: 16) }
    return nil
  }
}

/// Every field name, for tests that must cover them all (the core type is not CaseIterable).
private let allFields: [CalibrationField] = [
  .source, .flags, .model, .serial, .timestamp, .depthGain, .depthOffset, .speedGain, .rfGain,
  .depthError, .speedError, .rfError, .technician,
]

/// Little-endian raw integer helpers for building and reading records in tests.
private func le(_ value: UInt64, _ size: Int) -> [UInt8] {
  (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}

private func readLE(_ bytes: [UInt8], _ offset: Int, _ size: Int) -> UInt64 {
  (0..<size).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
}

private func crc(_ bytes: ArraySlice<UInt8>) -> UInt32 {
  bytes.withUnsafeBytes { CRC32C.checksum($0) }
}

/// `bytes` with some bytes replaced and, unless told otherwise, the CRC recomputed.
private func patched(
  _ bytes: [UInt8], _ changes: [(offset: Int, bytes: [UInt8])], fixCRC: Bool = true
) -> [UInt8] {
  var out = bytes
  for change in changes {
    out.replaceSubrange(change.offset..<change.offset + change.bytes.count, with: change.bytes)
  }
  if fixCRC { out.replaceSubrange(60..<64, with: le(UInt64(crc(out[0..<60])), 4)) }
  return out
}

private func gain(_ raw: Int) -> Double { Double(raw) / 1_000_000 }
private func milli(_ raw: Int) -> Double { Double(raw) / 1000 }

@Suite("Calibration record")
struct CalibrationRecordTests {
  static let serial = FixedASCII<16>("PC-MN100-000123")!
  static let rfSerial = FixedASCII<16>("PC-RF200-000007")!

  /// calibration.md's example, as typed values.
  static let example = CalibrationRecord(
    source: .factory, markedBad: false, verified: true, model: .mn100, serial: serial,
    timestamp: 1_767_225_600, depthGain: 1.012345, depthOffset: Millimetres(-0.042),
    speedGain: 0.987, rfGain: 1.0, depthError: Millimetres(0.018), speedError: 0.012, rfError: 0,
    technician: 0)

  /// A verified technician record for an RF pen, every field distinct.
  static let rfRecord = CalibrationRecord(
    source: .technician, markedBad: false, verified: true, model: .rf200, serial: rfSerial,
    timestamp: 0x0102_0304_0506_0708, depthGain: gain(1_100_001), depthOffset: Millimetres(0.123),
    speedGain: gain(954_321), rfGain: gain(1_023_456), depthError: Millimetres(0.031),
    speedError: 0.044, rfError: 0.087, technician: 0xA1B2_C3D4)

  // MARK: Specification agreement

  @Test("the example record in calibration.md and calibration.json is the same 64 bytes")
  func specExamplesAgree() throws {
    let fromJSON = try CalibrationSpec.exampleFromJSON()
    #expect(fromJSON.count == 64)
    #expect(try CalibrationSpec.exampleFromMarkdown() == fromJSON)
  }

  @Test("the example record decodes to the values calibration.md states, and encodes to its bytes")
  func exampleRecord() throws {
    let bytes = try CalibrationSpec.exampleFromJSON()
    let decoded = try CalibrationRecord.decode(bytes)
    #expect(decoded == Self.example)
    #expect(decoded.serial.description == "PC-MN100-000123")
    #expect(try Self.example.encodedBytes() == bytes)
    #expect(Self.example.validity(forModel: .mn100, serial: Self.serial) == .valid)
  }

  @Test("record size, magic, version, flag bits and CRC parameters match calibration.json")
  func layoutConstants() throws {
    let json = try CalibrationSpec.json()
    #expect(json["record_size"] as? Int == CalibrationRecord.size)
    #expect(json["byte_order"] as? String == "little-endian")
    #expect(json["format_version"] as? Int == Int(CalibrationRecord.formatVersion))
    let magic = try #require(json["magic"] as? String).split(separator: " ").map {
      UInt8($0.dropFirst(2), radix: 16)!
    }
    #expect(magic == [UInt8(CalibrationRecord.magic >> 8), UInt8(CalibrationRecord.magic & 0xFF)])
    let crcSpec = try #require(json["crc"] as? [String: Any])
    #expect(crcSpec["algorithm"] as? String == "CRC-32C")
    #expect(crcSpec["offset"] as? Int == CalibrationRecord.crcOffset)
    #expect(crcSpec["covers"] as? [Int] == [0, CalibrationRecord.crcOffset - 1])
    let check = Array("123456789".utf8).withUnsafeBytes { CRC32C.checksum($0) }
    #expect(CalibrationSpec.integer(crcSpec["check"]) == Int(check))
    let flags = try #require(
      try CalibrationSpec.fields().first { $0["name"] as? String == "flags" })
    let bits = try #require(flags["bits"] as? [String: Int])
    #expect(bits["marked_bad"].map { UInt8(1) << $0 } == CalibrationRecord.markedBadBit)
    #expect(bits["verified"].map { UInt8(1) << $0 } == CalibrationRecord.verifiedBit)
    #expect(
      CalibrationSpec.integer(flags["reserved_mask"]) == Int(CalibrationRecord.reservedFlagsMask))
  }

  @Test("every field's name, offset, size and type match calibration.json's field table")
  func fieldTable() throws {
    let table = try CalibrationSpec.fields()
    var covered = [Bool](repeating: false, count: 64)
    var named: Set<String> = []
    for entry in table {
      let name = try #require(entry["name"] as? String)
      let offset = try #require(entry["offset"] as? Int)
      let size = try #require(entry["size"] as? Int)
      let type = try #require(entry["type"] as? String)
      for i in offset..<offset + size {
        #expect(!covered[i], "byte \(i) is in two fields")
        covered[i] = true
      }
      switch name {
      case "magic": #expect(offset == 0 && size == 2 && type == "bytes")
      case "format_version": #expect(offset == 2 && size == 1 && type == "u8")
      case "reserved": #expect([5, 7, 58].contains(offset), "reserved at \(offset)")
      case "crc": #expect(offset == CalibrationRecord.crcOffset && size == 4 && type == "u32")
      default:
        let field = try #require(allFields.first { "\($0.specName)" == name }, "\(name)")
        #expect(field.offset == offset, "\(name) offset")
        #expect(field.size == size, "\(name) size")
        #expect("\(field.wireType)" == type, "\(name) type")
        named.insert(name)
      }
    }
    #expect(covered.allSatisfy { $0 }, "the table covers all 64 bytes")
    #expect(named == Set(allFields.map { "\($0.specName)" }), "every field is in the table")
  }

  @Test("each field lands at calibration.json's offset with its type and scale")
  func encodedFieldPositions() throws {
    let bytes = try Self.rfRecord.encodedBytes()
    let expected: [String: UInt64] = [
      "magic": 0x5243, "format_version": 1, "source": 2, "flags": 0b10, "model": 2,
      "timestamp": 0x0102_0304_0506_0708, "depth_gain": 1_100_001, "depth_offset": 123,
      "speed_gain": 954_321, "rf_gain": 1_023_456, "depth_error": 31, "speed_error": 44,
      "rf_error": 87, "technician": 0xA1B2_C3D4, "reserved": 0,
      "crc": UInt64(crc(bytes[0..<60])),
    ]
    for entry in try CalibrationSpec.fields() {
      let name = entry["name"] as! String
      let offset = entry["offset"] as! Int
      let size = entry["size"] as! Int
      switch entry["type"] as! String {
      case "ascii":
        #expect(Array(bytes[offset..<offset + size]) == Self.rfSerial.bytes)
      case "i32":
        let raw = Int32(bitPattern: UInt32(readLE(bytes, offset, size)))
        #expect(UInt64(raw) == expected[name], "\(name)")
        #expect(Millimetres(Double(raw) / 1000) == Self.rfRecord.depthOffset)
      default:
        #expect(readLE(bytes, offset, size) == expected[name], "\(name)")
      }
      if let scale = entry["scale"] as? Double, name.hasSuffix("_gain") {
        let raw = Double(readLE(bytes, offset, size))
        let value =
          name == "depth_gain"
          ? Self.rfRecord.depthGain
          : name == "speed_gain"
            ? Self.rfRecord.speedGain
            : Self.rfRecord.rfGain
        #expect(abs(raw * scale - value) < 1e-12, "\(name)")
      }
    }
  }

  @Test("plausible ranges and tolerances match calibration.json")
  func rangesAndTolerances() throws {
    let json = try CalibrationSpec.json()
    let ranges = try #require(json["plausible_ranges"] as? [String: [String: Any]])
    for field in allFields {
      guard let range = ranges["\(field.specName)"], let min = range["min_raw"] as? Int else {
        continue
      }
      #expect(field.rawRange?.min == Int64(min), "\(field.specName)")
      #expect(field.rawRange?.max == Int64(range["max_raw"] as! Int), "\(field.specName)")
    }
    for name in ["depth_gain", "speed_gain", "rf_gain", "depth_offset", "source"] {
      #expect(ranges[name]?["min_raw"] != nil, "\(name) has a raw range")
    }
    // The model's range is PenModelID's values in messages.json.
    #expect(ranges["model"]?["enum"] as? String == "PenModelID")
    let messages = try SpecFiles.json("Firmware-Specs/messages.json")
    let enums = try #require(messages["enums"] as? [[String: Any]])
    let modelEnum = try #require(enums.first { $0["name"] as? String == "PenModelID" })
    let values = (modelEnum["values"] as! [[String: Any]]).map { $0["value"] as! Int }
    #expect(CalibrationField.model.rawRange?.min == Int64(values.min()!))
    #expect(CalibrationField.model.rawRange?.max == Int64(values.max()!))
    #expect(values.count == Int(values.max()! - values.min()! + 1), "PenModelID is contiguous")

    let tolerances = try #require(json["tolerances"] as? [String: [String: Any]])
    let standard = CalibrationTolerances.standard
    #expect(
      tolerances["depth_error"]?["max_raw"] as? Int == Int((standard.depth.value * 1000).rounded()))
    #expect(tolerances["speed_error"]?["max_raw"] as? Int == Int((standard.speed * 1000).rounded()))
    #expect(tolerances["rf_error"]?["max_raw"] as? Int == Int((standard.rfEnergy * 1000).rounded()))
  }

  @Test("the error names and nack details match calibration.json's decoding order")
  func decodingOrderNames() throws {
    let steps = try #require(try CalibrationSpec.json()["decoding_order"] as? [[String: Any]])
    let errors: [CalibrationRecordError] = [
      .badLength(63), .badMagic(0), .unsupportedVersion(2), .crcMismatch(received: 0, computed: 1),
      .reservedNotZero(offset: 4), .fieldOutOfRange(.source, raw: 0),
    ]
    #expect(steps.count == errors.count)
    for (step, error) in zip(steps, errors) {
      #expect(step["error"] as? String == "\(error.kind)")
      if let detail = step["nack_detail"] as? Int {
        #expect(error.nackDetail == Int32(detail), "\(error.kind)")
      }
    }
    #expect(CalibrationRecordError.badLength(3).nackDetail == nil)
    for offset in [4, 5, 7, 58] {
      #expect(CalibrationRecordError.reservedNotZero(offset: offset).nackDetail == Int32(offset))
    }
    for field in allFields {
      #expect(
        CalibrationRecordError.fieldOutOfRange(field, raw: 0).nackDetail == Int32(field.offset))
    }
  }

  // MARK: Round trips

  static var roundTripRecords: [CalibrationRecord] {
    var records = [example, rfRecord]
    let rfMin = CalibrationRecord(
      source: .technician, markedBad: true, verified: false, model: .rf200,
      serial: FixedASCII<16>("ABCDEFGHIJKLMNOP")!, timestamp: 0, depthGain: 0.8,
      depthOffset: Millimetres(-0.3), speedGain: 0.8, rfGain: 0.8, depthError: .zero,
      speedError: 0, rfError: 0, technician: 1)
    let rfMax = CalibrationRecord(
      source: .technician, markedBad: true, verified: true, model: .rf200,
      serial: FixedASCII<16>(" ")!, timestamp: UInt64.max, depthGain: 1.25,
      depthOffset: Millimetres(0.3), speedGain: 1.25, rfGain: 1.25,
      depthError: Millimetres(65.535), speedError: 65.535, rfError: 65.535,
      technician: UInt32.max)
    let emptySerial = CalibrationRecord.identity(
      model: .mn100, serial: FixedASCII<16>(), timestamp: 1)
    records += [
      rfMin, rfMax, emptySerial, .identity(model: .rf200, serial: rfSerial, timestamp: 2),
    ]
    for (bad, verified) in [(false, false), (true, false), (true, true)] {
      var r = example
      r.markedBad = bad
      r.verified = verified
      records.append(r)
    }
    return records
  }

  @Test("typical and boundary records survive encode and decode unchanged")
  func roundTrip() throws {
    for record in Self.roundTripRecords {
      let fixed = try record.encode()
      #expect(try CalibrationRecord.decode(fixed) == record)
      let array = try record.encodedBytes()
      #expect(array == fixed.bytes)
      #expect(try CalibrationRecord.decode(array) == record)
      let viaPointer = try array.withUnsafeBytes { raw in
        try Result { () throws(CalibrationRecordError) in try CalibrationRecord.decode(raw) }.get()
      }
      #expect(viaPointer == record)
    }
  }

  @Test("random valid records round-trip, as values and as bytes")
  func randomRoundTrip() throws {
    var generator = SplitMix(seed: 0xCA1_1B2A7E)
    func pick(_ range: ClosedRange<Int>) -> Int {
      range.lowerBound + Int(generator.next() % UInt64(range.count))
    }
    for _ in 0..<2000 {
      let model: PenModelID = generator.next() % 2 == 0 ? .mn100 : .rf200
      let source: CalibrationSource = generator.next() % 2 == 0 ? .factory : .technician
      var text = (0..<pick(0...16)).map { _ in UInt8(pick(0x20...0x7E)) }
      text += [UInt8](repeating: 0, count: 16 - text.count)
      var serial = FixedASCII<16>()
      for i in 0..<16 { serial.storage[i] = text[i] }
      let record = CalibrationRecord(
        source: source, markedBad: generator.next() % 2 == 0, verified: generator.next() % 2 == 0,
        model: model, serial: serial,
        timestamp: generator.next(), depthGain: gain(pick(800_000...1_250_000)),
        depthOffset: Millimetres(milli(pick(-300...300))),
        speedGain: gain(pick(800_000...1_250_000)),
        rfGain: model == .mn100 ? 1 : gain(pick(800_000...1_250_000)),
        depthError: Millimetres(milli(pick(0...65_535))), speedError: milli(pick(0...65_535)),
        rfError: model == .mn100 ? 0 : milli(pick(0...65_535)),
        technician: source == .factory ? 0 : UInt32(pick(1...Int(UInt32.max))))
      let bytes = try record.encode()
      let decoded = try CalibrationRecord.decode(bytes)
      #expect(decoded == record)
      #expect(try decoded.encode() == bytes)
      #expect(
        decoded.validity(forModel: model, serial: record.serial)
          == record.validity(forModel: model, serial: record.serial))
    }
  }

  // MARK: Encoding refusals

  static var encodeRefusals: [(CalibrationRecord, CalibrationRecordError)] {
    func rf(_ change: (inout CalibrationRecord) -> Void) -> CalibrationRecord {
      var r = rfRecord
      change(&r)
      return r
    }
    func mn(_ change: (inout CalibrationRecord) -> Void) -> CalibrationRecord {
      var r = example
      change(&r)
      return r
    }
    var badSerial = FixedASCII<16>("PC-MN100-000123")!
    badSerial.storage[3] = 0x01
    var gap = FixedASCII<16>("AB")!
    gap.storage[3] = 0x43
    return [
      (rf { $0.serial = badSerial }, .fieldOutOfRange(.serial, raw: 3)),
      (rf { $0.serial = gap }, .fieldOutOfRange(.serial, raw: 3)),
      (rf { $0.depthGain = 0.799_999 }, .fieldOutOfRange(.depthGain, raw: 799_999)),
      (rf { $0.depthGain = 1.250_001 }, .fieldOutOfRange(.depthGain, raw: 1_250_001)),
      (rf { $0.depthGain = .nan }, .fieldOutOfRange(.depthGain, raw: Int64.min)),
      (rf { $0.depthGain = .infinity }, .fieldOutOfRange(.depthGain, raw: Int64.max)),
      (rf { $0.depthGain = -.infinity }, .fieldOutOfRange(.depthGain, raw: Int64.min + 1)),
      (rf { $0.depthOffset = Millimetres(-0.301) }, .fieldOutOfRange(.depthOffset, raw: -301)),
      (rf { $0.depthOffset = Millimetres(0.301) }, .fieldOutOfRange(.depthOffset, raw: 301)),
      (rf { $0.depthOffset = Millimetres(.nan) }, .fieldOutOfRange(.depthOffset, raw: Int64.min)),
      (rf { $0.speedGain = 1.3 }, .fieldOutOfRange(.speedGain, raw: 1_300_000)),
      (rf { $0.speedGain = 0 }, .fieldOutOfRange(.speedGain, raw: 0)),
      (rf { $0.rfGain = 0.5 }, .fieldOutOfRange(.rfGain, raw: 500_000)),
      (rf { $0.rfGain = -1 }, .fieldOutOfRange(.rfGain, raw: -1_000_000)),
      (rf { $0.depthError = Millimetres(-0.001) }, .fieldOutOfRange(.depthError, raw: -1)),
      (rf { $0.depthError = Millimetres(65.536) }, .fieldOutOfRange(.depthError, raw: 65_536)),
      (rf { $0.depthError = Millimetres(.nan) }, .fieldOutOfRange(.depthError, raw: Int64.min)),
      (rf { $0.speedError = 65.5351 }, .fieldOutOfRange(.speedError, raw: 65_536)),
      (rf { $0.speedError = -.infinity }, .fieldOutOfRange(.speedError, raw: Int64.min + 1)),
      (rf { $0.rfError = -0.01 }, .fieldOutOfRange(.rfError, raw: -10)),
      (rf { $0.rfError = .infinity }, .fieldOutOfRange(.rfError, raw: Int64.max)),
      // Offset order: the first bad field is reported.
      (
        rf {
          $0.speedGain = 2
          $0.depthOffset = Millimetres(1)
        }, .fieldOutOfRange(.depthOffset, raw: 1000)
      ),
      (
        rf {
          $0.serial = badSerial
          $0.depthGain = 2
        }, .fieldOutOfRange(.serial, raw: 3)
      ),
      // Writer rules of calibration.md section 1.
      (rf { $0.technician = 0 }, .inconsistentField(.technician, raw: 0)),
      (
        rf {
          $0.source = .factory
          $0.technician = 7
        }, .inconsistentField(.technician, raw: 7)
      ),
      (mn { $0.rfGain = 1.1 }, .inconsistentField(.rfGain, raw: 1_100_000)),
      (mn { $0.rfError = 0.001 }, .inconsistentField(.rfError, raw: 1)),
      // A range error comes before a writer rule.
      (
        mn {
          $0.rfGain = 1.3
          $0.technician = 9
        }, .fieldOutOfRange(.rfGain, raw: 1_300_000)
      ),
    ]
  }

  @Test("encoding refuses each implausible, unrepresentable or inconsistent field by name")
  func encodeRefusesBadFields() {
    for (record, error) in Self.encodeRefusals {
      #expect(throws: error) { try record.encode() }
      #expect(throws: error) { try record.encodedBytes() }
    }
  }

  @Test("values round to the wire step: gains and offset to the nearest, errors upward")
  func encodeRounding() throws {
    var r = Self.rfRecord
    r.depthGain = 1.250_000_4
    r.speedGain = 0.799_999_6
    r.depthOffset = Millimetres(-0.300_4)
    r.depthError = Millimetres(0.018_1)
    r.speedError = 0.050_01
    r.rfError = 0.1 + 1e-12
    let bytes = try r.encodedBytes()
    #expect(readLE(bytes, 32, 4) == 1_250_000)
    #expect(readLE(bytes, 40, 4) == 800_000)
    #expect(Int32(bitPattern: UInt32(readLE(bytes, 36, 4))) == -300)
    #expect(readLE(bytes, 48, 2) == 19)
    #expect(readLE(bytes, 50, 2) == 51)
    #expect(readLE(bytes, 52, 2) == 100, "noise below a millionth of a step is not rounded up")
  }

  // MARK: Decoding refusals

  @Test("every strict prefix, and any longer buffer, is refused as bad_length")
  func badLength() throws {
    let bytes = try CalibrationSpec.exampleFromJSON()
    for count in 0..<64 {
      let prefix = Array(bytes[0..<count])
      #expect(throws: CalibrationRecordError.badLength(count)) {
        try CalibrationRecord.decode(prefix)
      }
      let result = prefix.withUnsafeBytes { raw in
        Result { () throws(CalibrationRecordError) in try CalibrationRecord.decode(raw) }
      }
      #expect(throws: CalibrationRecordError.badLength(count)) { try result.get() }
    }
    for extra in [[UInt8](repeating: 0, count: 1), Array(bytes)] {
      let long = bytes + extra
      #expect(throws: CalibrationRecordError.badLength(long.count)) {
        try CalibrationRecord.decode(long)
      }
      let result = long.withUnsafeBytes { raw in
        Result { () throws(CalibrationRecordError) in try CalibrationRecord.decode(raw) }
      }
      #expect(throws: CalibrationRecordError.badLength(long.count)) { try result.get() }
    }
  }

  static func decodeRefusals(_ good: [UInt8]) -> [(String, [UInt8], CalibrationRecordError)] {
    let goodCRC = UInt32(readLE(good, 60, 4))
    let badCRC = patched(good, [(30, [0x55])], fixCRC: false)
    return [
      ("no record (64 zero bytes)", [UInt8](repeating: 0, count: 64), .badMagic(0)),
      ("magic 'DR'", patched(good, [(0, [0x44])]), .badMagic(0x4452)),
      ("magic reversed", patched(good, [(0, [0x52, 0x43])]), .badMagic(0x5243)),
      ("version 0", patched(good, [(2, [0])]), .unsupportedVersion(0)),
      ("version 2", patched(good, [(2, [2])]), .unsupportedVersion(2)),
      (
        "timestamp changed", badCRC,
        .crcMismatch(received: goodCRC, computed: crc(badCRC[0..<60]))
      ),
      (
        "CRC changed", patched(good, [(60, [0, 0, 0, 0])], fixCRC: false),
        .crcMismatch(received: 0, computed: goodCRC)
      ),
      ("flags bit 2", patched(good, [(4, [0x06])]), .reservedNotZero(offset: 4)),
      ("flags bit 7", patched(good, [(4, [0x80])]), .reservedNotZero(offset: 4)),
      ("byte 5", patched(good, [(5, [1])]), .reservedNotZero(offset: 5)),
      ("byte 7", patched(good, [(7, [0x10])]), .reservedNotZero(offset: 7)),
      ("byte 58", patched(good, [(58, [1])]), .reservedNotZero(offset: 58)),
      ("byte 59", patched(good, [(59, [0x80])]), .reservedNotZero(offset: 58)),
      ("source 0", patched(good, [(3, [0])]), .fieldOutOfRange(.source, raw: 0)),
      ("source 3", patched(good, [(3, [3])]), .fieldOutOfRange(.source, raw: 3)),
      ("source 255", patched(good, [(3, [255])]), .fieldOutOfRange(.source, raw: 255)),
      ("model 0", patched(good, [(6, [0])]), .fieldOutOfRange(.model, raw: 0)),
      ("model 3", patched(good, [(6, [3])]), .fieldOutOfRange(.model, raw: 3)),
      ("serial control byte", patched(good, [(8, [0x1F])]), .fieldOutOfRange(.serial, raw: 0)),
      ("serial DEL", patched(good, [(12, [0x7F])]), .fieldOutOfRange(.serial, raw: 4)),
      ("serial high bit", patched(good, [(9, [0xC3])]), .fieldOutOfRange(.serial, raw: 1)),
      (
        "serial text after NUL", patched(good, [(22, [0, 0x41])]),
        .fieldOutOfRange(.serial, raw: 15)
      ),
      (
        "depth_gain low", patched(good, [(32, le(799_999, 4))]),
        .fieldOutOfRange(.depthGain, raw: 799_999)
      ),
      (
        "depth_gain high", patched(good, [(32, le(1_250_001, 4))]),
        .fieldOutOfRange(.depthGain, raw: 1_250_001)
      ),
      (
        "depth_gain max u32", patched(good, [(32, le(0xFFFF_FFFF, 4))]),
        .fieldOutOfRange(.depthGain, raw: 4_294_967_295)
      ),
      (
        "depth_offset low", patched(good, [(36, le(UInt64(bitPattern: -301), 4))]),
        .fieldOutOfRange(.depthOffset, raw: -301)
      ),
      (
        "depth_offset high", patched(good, [(36, le(301, 4))]),
        .fieldOutOfRange(.depthOffset, raw: 301)
      ),
      (
        "depth_offset i32 min", patched(good, [(36, [0, 0, 0, 0x80])]),
        .fieldOutOfRange(.depthOffset, raw: Int64(Int32.min))
      ),
      (
        "speed_gain low", patched(good, [(40, le(0, 4))]),
        .fieldOutOfRange(.speedGain, raw: 0)
      ),
      (
        "speed_gain high", patched(good, [(40, le(1_250_001, 4))]),
        .fieldOutOfRange(.speedGain, raw: 1_250_001)
      ),
      (
        "rf_gain low", patched(good, [(44, le(799_999, 4))]),
        .fieldOutOfRange(.rfGain, raw: 799_999)
      ),
      (
        "rf_gain high", patched(good, [(44, le(2_000_000, 4))]),
        .fieldOutOfRange(.rfGain, raw: 2_000_000)
      ),
      // Section 5's order: the first failing step wins.
      (
        "bad magic, version and CRC",
        patched(good, [(0, [0]), (2, [9]), (60, [0])], fixCRC: false), .badMagic(0x0052)
      ),
      (
        "bad version and CRC", patched(good, [(2, [9]), (60, [0])], fixCRC: false),
        .unsupportedVersion(9)
      ),
      (
        "bad CRC and reserved byte",
        patched(good, [(5, [1])], fixCRC: false),
        .crcMismatch(
          received: goodCRC, computed: crc(patched(good, [(5, [1])], fixCRC: false)[0..<60]))
      ),
      (
        "reserved byte and bad field", patched(good, [(58, [1]), (3, [9])]),
        .reservedNotZero(offset: 58)
      ),
      ("flags before byte 5", patched(good, [(4, [0xFF]), (5, [1])]), .reservedNotZero(offset: 4)),
      ("byte 5 before byte 7", patched(good, [(5, [1]), (7, [1])]), .reservedNotZero(offset: 5)),
      ("byte 7 before byte 58", patched(good, [(7, [1]), (58, [1])]), .reservedNotZero(offset: 7)),
      (
        "source before model", patched(good, [(3, [0]), (6, [0])]),
        .fieldOutOfRange(.source, raw: 0)
      ),
      (
        "model before serial", patched(good, [(6, [7]), (8, [1])]),
        .fieldOutOfRange(.model, raw: 7)
      ),
      (
        "serial before depth_gain", patched(good, [(8, [1]), (32, le(0, 4))]),
        .fieldOutOfRange(.serial, raw: 0)
      ),
      (
        "depth_gain before depth_offset", patched(good, [(32, le(0, 4)), (36, le(900, 4))]),
        .fieldOutOfRange(.depthGain, raw: 0)
      ),
      (
        "depth_offset before speed_gain", patched(good, [(36, le(900, 4)), (40, le(0, 4))]),
        .fieldOutOfRange(.depthOffset, raw: 900)
      ),
      (
        "speed_gain before rf_gain", patched(good, [(40, le(1, 4)), (44, le(0, 4))]),
        .fieldOutOfRange(.speedGain, raw: 1)
      ),
    ]
  }

  @Test("decoding refuses each malformed record with the specific error, in section 5's order")
  func decodeRefusals() throws {
    let good = try CalibrationSpec.exampleFromJSON()
    for (label, bytes, error) in Self.decodeRefusals(good) {
      #expect(bytes.count == 64, "\(label)")
      #expect(throws: error, "\(label)") { try CalibrationRecord.decode(bytes) }
      let fixed = FixedBytes<64>(bytes)!
      #expect(throws: error, "\(label)") { try CalibrationRecord.decode(fixed) }
    }
  }

  @Test("boundary values decode, and the writer-only rules are not decoding checks")
  func decodeAcceptsBoundaries() throws {
    let good = try CalibrationSpec.exampleFromJSON()
    let accepted: [[(offset: Int, bytes: [UInt8])]] = [
      [(32, le(800_000, 4)), (40, le(1_250_000, 4)), (44, le(800_000, 4))],
      [(36, le(300, 4))],
      [(36, le(UInt64(bitPattern: -300), 4))],
      [(48, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])],
      [(24, le(UInt64.max, 8))],
      [(8, [UInt8](repeating: 0x7E, count: 16))],
      [(8, [UInt8](repeating: 0, count: 16))],
      [(4, [0x03])],
      [(54, le(42, 4))],  // a factory record with a technician id
      [(3, [2])],  // a technician record with technician 0
      [(44, le(900_000, 4)), (52, [5, 0])],  // an mn100 record with an RF correction
    ]
    for (index, changes) in accepted.enumerated() {
      let bytes = patched(good, changes)
      #expect(throws: Never.self, "case \(index)") { try CalibrationRecord.decode(bytes) }
    }
  }

  @Test("flipping any one of the 512 bits of a valid record is detected")
  func everyBitFlip() throws {
    let good = try CalibrationSpec.exampleFromJSON()
    let goodCRC = UInt32(readLE(good, 60, 4))
    for bit in 0..<512 {
      var bytes = good
      bytes[bit / 8] ^= 1 << UInt8(bit % 8)
      let expected: CalibrationRecordError
      switch bit / 8 {
      case 0, 1: expected = .badMagic(UInt16(bytes[0]) << 8 | UInt16(bytes[1]))
      case 2: expected = .unsupportedVersion(bytes[2])
      case 60...63:
        expected = .crcMismatch(received: UInt32(readLE(bytes, 60, 4)), computed: goodCRC)
      default: expected = .crcMismatch(received: goodCRC, computed: crc(bytes[0..<60]))
      }
      #expect(throws: expected, "bit \(bit)") { try CalibrationRecord.decode(bytes) }
    }
  }

  // MARK: Validity for arming

  static func rf(_ change: (inout CalibrationRecord) -> Void) -> CalibrationRecord {
    var r = rfRecord
    change(&r)
    return r
  }

  static var validityCases: [(String, CalibrationRecord, CalibrationValidity)] {
    [
      ("valid", rfRecord, .valid),
      ("marked bad", rf { $0.markedBad = true }, .markedBad),
      (
        "marked bad before not verified",
        rf {
          $0.markedBad = true
          $0.verified = false
        }, .markedBad
      ),
      ("not verified", rf { $0.verified = false }, .notVerified),
      (
        "not verified before wrong pen",
        rf {
          $0.verified = false
          $0.model = .mn100
        }, .notVerified
      ),
      ("wrong model", rf { $0.model = .mn100 }, .wrongPen(.model)),
      (
        "wrong serial, last character",
        rf { $0.serial = FixedASCII<16>("PC-RF200-000008")! }, .wrongPen(.serial)
      ),
      (
        "wrong serial, a prefix", rf { $0.serial = FixedASCII<16>("PC-RF200-00000")! },
        .wrongPen(.serial)
      ),
      (
        "wrong serial, longer", rf { $0.serial = FixedASCII<16>("PC-RF200-0000070")! },
        .wrongPen(.serial)
      ),
      ("empty serial", rf { $0.serial = FixedASCII<16>() }, .wrongPen(.serial)),
      (
        "wrong model before wrong serial",
        rf {
          $0.model = .mn100
          $0.serial = FixedASCII<16>()
        }, .wrongPen(.model)
      ),
      ("depth error met exactly", rf { $0.depthError = Millimetres(0.05) }, .valid),
      (
        "depth error one step over", rf { $0.depthError = Millimetres(0.051) },
        .outOfTolerance(.depthError)
      ),
      (
        "depth error a hair over", rf { $0.depthError = Millimetres(0.050_001) },
        .outOfTolerance(.depthError)
      ),
      ("speed error met exactly", rf { $0.speedError = 0.05 }, .valid),
      ("speed error one step over", rf { $0.speedError = 0.051 }, .outOfTolerance(.speedError)),
      ("speed error a hair over", rf { $0.speedError = 0.050_001 }, .outOfTolerance(.speedError)),
      ("RF error met exactly", rf { $0.rfError = 0.1 }, .valid),
      ("RF error one step over", rf { $0.rfError = 0.101 }, .outOfTolerance(.rfError)),
      ("RF error a hair over", rf { $0.rfError = 0.100_001 }, .outOfTolerance(.rfError)),
      (
        "all at the limit",
        rf {
          $0.depthError = Millimetres(0.05)
          $0.speedError = 0.05
          $0.rfError = 0.1
        }, .valid
      ),
      (
        "depth checked before speed and RF",
        rf {
          $0.depthError = Millimetres(1)
          $0.speedError = 1
          $0.rfError = 1
        }, .outOfTolerance(.depthError)
      ),
      (
        "speed checked before RF",
        rf {
          $0.speedError = 1
          $0.rfError = 1
        }, .outOfTolerance(.speedError)
      ),
      (
        "tolerance checked after the pen",
        rf {
          $0.depthError = Millimetres(1)
          $0.model = .mn100
        }, .wrongPen(.model)
      ),
      ("NaN error", rf { $0.speedError = .nan }, .outOfTolerance(.speedError)),
      ("negative error", rf { $0.rfError = -0.01 }, .outOfTolerance(.rfError)),
      ("implausible depth gain", rf { $0.depthGain = 1.3 }, .implausible(.depthGain)),
      (
        "implausible depth offset", rf { $0.depthOffset = Millimetres(0.4) },
        .implausible(.depthOffset)
      ),
      ("NaN speed gain", rf { $0.speedGain = .nan }, .implausible(.speedGain)),
      ("implausible RF gain", rf { $0.rfGain = 0.7 }, .implausible(.rfGain)),
      (
        "implausible before marked bad",
        rf {
          $0.markedBad = true
          $0.rfGain = 0.7
        }, .implausible(.rfGain)
      ),
      (
        "unprintable serial",
        rf { $0.serial.storage[0] = 0x07 }, .implausible(.serial)
      ),
    ]
  }

  @Test("validity for arming follows calibration.md section 4, rule by rule and in order")
  func validity() throws {
    for (label, record, expected) in Self.validityCases {
      let verdict = record.validity(forModel: .rf200, serial: Self.rfSerial)
      #expect(verdict == expected, "\(label)")
      #expect(verdict.isValidForArming == (expected == .valid), "\(label)")
      if let bytes = try? record.encode() {
        // The pen decides on the decoded record: it must reach the same verdict.
        let decoded = try CalibrationRecord.decode(bytes)
        #expect(
          decoded.validity(forModel: .rf200, serial: Self.rfSerial) == expected, "\(label) decoded")
      }
    }
  }

  @Test("validity at the raw limits of the decoded error fields")
  func validityRawLimits() throws {
    let good = try Self.rfRecord.encodedBytes()
    let cases: [(offset: Int, raw: UInt64, expected: CalibrationValidity)] = [
      (48, 50, .valid), (48, 51, .outOfTolerance(.depthError)),
      (50, 50, .valid), (50, 51, .outOfTolerance(.speedError)),
      (52, 100, .valid), (52, 101, .outOfTolerance(.rfError)),
      (48, 65_535, .outOfTolerance(.depthError)),
    ]
    for c in cases {
      let record = try CalibrationRecord.decode(patched(good, [(c.offset, le(c.raw, 2))]))
      #expect(
        record.validity(forModel: .rf200, serial: Self.rfSerial) == c.expected,
        "offset \(c.offset) raw \(c.raw)")
    }
  }

  @Test("custom tolerances replace the standard ones")
  func customTolerances() {
    let strict = CalibrationTolerances(depth: Millimetres(0.018), speed: 0.012, rfEnergy: 0)
    #expect(
      Self.example.validity(forModel: .mn100, serial: Self.serial, tolerances: strict) == .valid)
    var tighter = strict
    tighter.depth = Millimetres(0.017)
    #expect(
      Self.example.validity(forModel: .mn100, serial: Self.serial, tolerances: tighter)
        == .outOfTolerance(.depthError))
    tighter = strict
    tighter.speed = 0.011
    #expect(
      Self.example.validity(forModel: .mn100, serial: Self.serial, tolerances: tighter)
        == .outOfTolerance(.speedError))
    tighter = strict
    tighter.rfEnergy = .nan
    #expect(
      Self.example.validity(forModel: .mn100, serial: Self.serial, tolerances: tighter)
        == .outOfTolerance(.rfError))
  }

  // MARK: Correction and identity

  @Test("the pen's correction: depth × gain + offset, speed and RF energy × gain")
  func correction() {
    let r = Self.rfRecord
    let depth = r.depthCommand(for: Millimetres(1.5))
    #expect(abs(depth.value - (1.5 * 1.100_001 + 0.123)) < 1e-12)
    #expect(abs(r.speedCommand(for: Hertz(100)).value - 95.4321) < 1e-12)
    #expect(abs(r.rfEnergyCommand(for: Millijoules(20)).value - 20.469_12) < 1e-12)
    // In micrometres, as calibration.md writes it: setpoint_µm × gain + offset_µm.
    let example = Self.example.depthCommand(for: Millimetres(1))
    #expect(abs(example.value * 1000 - (1000 * 1.012345 - 42)) < 1e-9)
    #expect(Self.example.depthCommand(for: .zero) == Millimetres(-0.042))
  }

  @Test("the identity record is neutral, unverified and encodable")
  func identity() throws {
    let id = CalibrationRecord.identity(model: .rf200, serial: Self.rfSerial, timestamp: 99)
    #expect(id.depthCommand(for: Millimetres(0.75)) == Millimetres(0.75))
    #expect(id.speedCommand(for: Hertz(120)) == Hertz(120))
    #expect(id.rfEnergyCommand(for: Millijoules(30)) == Millijoules(30))
    #expect(id.source == .factory && id.technician == 0 && id.timestamp == 99)
    #expect(!id.verified && !id.markedBad)
    #expect(id.validity(forModel: .rf200, serial: Self.rfSerial) == .notVerified)
    let bytes = try id.encodedBytes()
    #expect(readLE(bytes, 32, 4) == 1_000_000)
    #expect(readLE(bytes, 36, 4) == 0)
    #expect(readLE(bytes, 40, 4) == 1_000_000)
    #expect(readLE(bytes, 44, 4) == 1_000_000)
    let technician = CalibrationRecord.identity(
      model: .mn100, serial: Self.serial, timestamp: 1, source: .technician, technician: 5)
    #expect(try CalibrationRecord.decode(technician.encode()) == technician)
    #expect(throws: CalibrationRecordError.inconsistentField(.technician, raw: 0)) {
      try CalibrationRecord.identity(
        model: .mn100, serial: Self.serial, timestamp: 1, source: .technician
      ).encode()
    }
  }

  @Test("equal records hash equally; records differing in one field differ")
  func hashing() {
    var set: Set<CalibrationRecord> = [Self.example, Self.rfRecord]
    set.insert(Self.example)
    #expect(set.count == 2)
    var other = Self.example
    other.serial.storage[15] = 0x41
    #expect(other != Self.example)
    #expect(!set.contains(other))
  }

  // MARK: Descriptions

  @Test("errors describe themselves with the field, the raw value and the limit")
  func descriptions() {
    let cases: [(CalibrationRecordError, String)] = [
      (
        .fieldOutOfRange(.depthGain, raw: 1_300_000),
        "calibration record: depth_gain raw 1300000 outside 800000…1250000"
      ),
      (
        .fieldOutOfRange(.depthOffset, raw: -301),
        "calibration record: depth_offset raw -301 outside -300…300"
      ),
      (.fieldOutOfRange(.source, raw: 0), "calibration record: source raw 0 outside 1…2"),
      (.fieldOutOfRange(.model, raw: 3), "calibration record: model raw 3 outside 1…2"),
      (
        .fieldOutOfRange(.speedError, raw: Int64.min),
        "calibration record: speed_error raw NaN outside 0…65535"
      ),
      (.badLength(63), "calibration record: 63 bytes where exactly 64 are needed"),
      (.badMagic(0x4452), "calibration record: bad magic 0x4452: expected 0x4352 (\"CR\")"),
      (
        .unsupportedVersion(2),
        "calibration record: unsupported format version 2: this codec reads version 1"
      ),
      (
        .crcMismatch(received: 0xED02_B569, computed: 0x0000_00FF),
        "calibration record: CRC-32C mismatch: record carries 0xed02b569, bytes 0-59 give 0x000000ff"
      ),
      (.reservedNotZero(offset: 5), "calibration record: reserved byte at offset 5 not zero"),
      (.reservedNotZero(offset: 4), "calibration record: reserved flag bits 2-7 set at offset 4"),
    ]
    for (error, text) in cases {
      #expect(error.description == text)
      #expect("\(error)" == text)
    }
    #expect(
      CalibrationRecordError.fieldOutOfRange(.serial, raw: 3).description.contains("serial byte 3"))
    #expect(
      CalibrationRecordError.inconsistentField(.technician, raw: 0).description.contains(
        "non-zero"))
    #expect(
      CalibrationRecordError.inconsistentField(.rfGain, raw: 1_100_000).description.contains(
        "rf_gain raw 1100000"))
    #expect(CalibrationValidity.valid.description == "valid for arming")
    #expect(CalibrationValidity.wrongPen(.serial).description.contains("serial"))
    #expect(CalibrationValidity.outOfTolerance(.rfError).description.contains("rf_error"))
  }
}
