// The 64-byte calibration record (Firmware-Specs/calibration.md): its codec, its validity for
// arming, and the correction the pen applies with it. Pure and allocation-free: it compiles in
// Embedded Swift with -no-allocations. Host conveniences are at the end, outside Embedded.

/// Who made a calibration record (calibration.md section 1, `source`).
public enum CalibrationSource: UInt8, Sendable, Hashable {
  case factory = 1
  case technician = 2

  /// The specification's name for this value.
  public var specName: StaticString {
    switch self {
    case .factory: "factory"
    case .technician: "technician"
    }
  }
}

/// The named fields of a calibration record, in offset order, for error reports.
public enum CalibrationField: UInt8, Sendable, Hashable {
  case source
  case flags
  case model
  case serial
  case timestamp
  case depthGain
  case depthOffset
  case speedGain
  case rfGain
  case depthError
  case speedError
  case rfError
  case technician

  /// The field's name in calibration.md and calibration.json.
  public var specName: StaticString {
    switch self {
    case .source: "source"
    case .flags: "flags"
    case .model: "model"
    case .serial: "serial"
    case .timestamp: "timestamp"
    case .depthGain: "depth_gain"
    case .depthOffset: "depth_offset"
    case .speedGain: "speed_gain"
    case .rfGain: "rf_gain"
    case .depthError: "depth_error"
    case .speedError: "speed_error"
    case .rfError: "rf_error"
    case .technician: "technician"
    }
  }

  /// The field's byte offset in the record; also the `bad_calibration_record` nack detail.
  public var offset: Int {
    switch self {
    case .source: 3
    case .flags: 4
    case .model: 6
    case .serial: 8
    case .timestamp: 24
    case .depthGain: 32
    case .depthOffset: 36
    case .speedGain: 40
    case .rfGain: 44
    case .depthError: 48
    case .speedError: 50
    case .rfError: 52
    case .technician: 54
    }
  }

  /// The field's size in bytes.
  public var size: Int {
    switch self {
    case .source, .flags, .model: 1
    case .serial: 16
    case .timestamp: 8
    case .depthGain, .depthOffset, .speedGain, .rfGain, .technician: 4
    case .depthError, .speedError, .rfError: 2
    }
  }

  /// The field's wire type as calibration.json names it.
  public var wireType: StaticString {
    switch self {
    case .source, .flags, .model: "u8"
    case .serial: "ascii"
    case .timestamp: "u64"
    case .depthGain, .speedGain, .rfGain, .technician: "u32"
    case .depthOffset: "i32"
    case .depthError, .speedError, .rfError: "u16"
    }
  }

  /// The raw values a record may carry in this field: the plausible range of calibration.md
  /// section 3 where there is one, otherwise what the wire type can represent. Nil for the serial
  /// (text), the flags (a bit set) and the fields that take every value of their type.
  public var rawRange: (min: Int64, max: Int64)? {
    switch self {
    case .source: (1, 2)
    case .model: (1, 2)
    case .depthGain, .speedGain, .rfGain:
      (CalibrationRecord.minGainRaw, CalibrationRecord.maxGainRaw)
    case .depthOffset: (CalibrationRecord.minOffsetRaw, CalibrationRecord.maxOffsetRaw)
    case .depthError, .speedError, .rfError: (0, 65_535)
    case .flags, .serial, .timestamp, .technician: nil
    }
  }
}

/// Why bytes are not a calibration record, or a record cannot be encoded (calibration.md
/// section 5). The decoder reports the first failure in the specification's order.
public enum CalibrationRecordError: Error, Hashable, Sendable {
  /// Not exactly 64 bytes: the count given.
  case badLength(Int)
  /// Bytes 0–1 are not "CR" (0x43 0x52); the first byte is the high byte here.
  case badMagic(UInt16)
  /// A `format_version` other than 1.
  case unsupportedVersion(UInt8)
  /// The CRC-32C at offset 60 does not match bytes 0–59.
  case crcMismatch(received: UInt32, computed: UInt32)
  /// A reserved flag bit (offset 4) or reserved byte (5, 7, or 58 for the pair 58–59) is set.
  case reservedNotZero(offset: Int)
  /// A field outside its plausible range (section 3), or a value the wire cannot represent.
  /// `raw` is the raw wire value (the value × scale, rounded, saturated; `Int64.min` for NaN);
  /// for the serial it is the index of the first byte that is not printable ASCII or that follows
  /// the NUL padding, as in the rest of PenWire.
  case fieldOutOfRange(CalibrationField, raw: Int64)
  /// Encoding only: a value that breaks a writer rule of calibration.md section 1 — a factory
  /// record with a non-zero `technician`, a technician record with `technician` 0, or an `mn100`
  /// record whose `rf_gain` is not 1 000 000 or whose `rf_error` is not 0. `raw` is the field's
  /// raw wire value. Decoding does not check these rules (section 5 does not list them).
  case inconsistentField(CalibrationField, raw: Int64)

  /// The error's name in calibration.md.
  public var kind: StaticString {
    switch self {
    case .badLength: "bad_length"
    case .badMagic: "bad_magic"
    case .unsupportedVersion: "unsupported_version"
    case .crcMismatch: "crc_mismatch"
    case .reservedNotZero: "reserved_not_zero"
    case .fieldOutOfRange: "field_out_of_range"
    case .inconsistentField: "inconsistent_field"
    }
  }

  /// The `nack bad_calibration_record` detail for this failure (calibration.md section 5), or nil
  /// for a length error, which cannot occur on the wire (the field is always 64 bytes).
  public var nackDetail: Int32? {
    switch self {
    case .badLength: nil
    case .badMagic: 0
    case .unsupportedVersion: 2
    case .crcMismatch: 60
    case .reservedNotZero(let offset): Int32(truncatingIfNeeded: offset)
    case .fieldOutOfRange(let field, _), .inconsistentField(let field, _):
      Int32(truncatingIfNeeded: field.offset)
    }
  }
}

/// The largest verification-sweep errors a record may carry and still be valid for arming
/// (calibration.md section 4).
public struct CalibrationTolerances: Sendable, Hashable {
  /// The largest absolute depth error.
  public var depth: Millimetres
  /// The largest relative speed error, as a fraction (0.05 is 5 %).
  public var speed: Double
  /// The largest relative RF energy error, as a fraction (0.10 is 10 %).
  public var rfEnergy: Double

  public init(depth: Millimetres, speed: Double, rfEnergy: Double) {
    self.depth = depth
    self.speed = speed
    self.rfEnergy = rfEnergy
  }

  /// calibration.md section 4: depth ≤ 0.05 mm, speed ≤ 5.0 %, RF energy ≤ 10.0 %.
  public static var standard: CalibrationTolerances {
    CalibrationTolerances(depth: Millimetres(0.05), speed: 0.05, rfEnergy: 0.10)
  }
}

/// Whether a record is valid for arming a given pen (calibration.md section 4, SR-019), and if
/// not, the first rule it breaks.
public enum CalibrationValidity: Sendable, Hashable {
  /// Every rule holds.
  case valid
  /// Rule 1: the record would not decode — a field outside its plausible range (section 3) or not
  /// representable. Only an in-memory record can be in this state; a decoded one never is.
  case implausible(CalibrationField)
  /// Rule 2: `marked_bad` is set.
  case markedBad
  /// Rule 3: `verified` is clear.
  case notVerified
  /// Rules 4 and 5: the record is for another pen; `.model` or `.serial` says which differs.
  case wrongPen(CalibrationField)
  /// Rule 6: the named error field exceeds its tolerance (or is not a number).
  case outOfTolerance(CalibrationField)

  /// True only for `.valid`.
  public var isValidForArming: Bool {
    if case .valid = self { return true }
    return false
  }
}

/// A pen's calibration record (calibration.md), in the units the rest of the system computes with.
public struct CalibrationRecord: Sendable, Hashable {
  /// Who made the record.
  public var source: CalibrationSource
  /// `flags` bit 0: the pen failed verification or was taken out of service.
  public var markedBad: Bool
  /// `flags` bit 1: the verification sweep was run and its errors are filled in.
  public var verified: Bool
  /// The pen model the record is for.
  public var model: PenModelID
  /// The serial of the pen the record is for.
  public var serial: FixedASCII<16>
  /// When the record was made: Unix seconds, UTC, set by the host.
  public var timestamp: UInt64
  /// Depth gain (1.0 is neutral); the wire carries it in steps of 1e-6.
  public var depthGain: Double
  /// Depth offset; the wire carries whole micrometres.
  public var depthOffset: Millimetres
  /// Speed gain (1.0 is neutral).
  public var speedGain: Double
  /// RF energy gain (1.0 is neutral).
  public var rfGain: Double
  /// The largest absolute depth error of the verification sweep; whole micrometres on the wire.
  public var depthError: Millimetres
  /// The largest relative speed error of the verification sweep, as a fraction (0.012 is 1.2 %);
  /// the wire carries steps of 0.1 %.
  public var speedError: Double
  /// The largest relative RF energy error of the verification sweep, as a fraction.
  public var rfError: Double
  /// The operator id; 0 for a factory record.
  public var technician: UInt32

  public init(
    source: CalibrationSource, markedBad: Bool, verified: Bool, model: PenModelID,
    serial: FixedASCII<16>, timestamp: UInt64, depthGain: Double, depthOffset: Millimetres,
    speedGain: Double, rfGain: Double, depthError: Millimetres, speedError: Double,
    rfError: Double, technician: UInt32
  ) {
    self.source = source
    self.markedBad = markedBad
    self.verified = verified
    self.model = model
    self.serial = serial
    self.timestamp = timestamp
    self.depthGain = depthGain
    self.depthOffset = depthOffset
    self.speedGain = speedGain
    self.rfGain = rfGain
    self.depthError = depthError
    self.speedError = speedError
    self.rfError = rfError
    self.technician = technician
  }

  /// A neutral record (gains 1.0, offset 0, errors 0), not verified and not marked bad: the
  /// correction in force where a pen holds no record (calibration.md section 6, step 1).
  public static func identity(
    model: PenModelID, serial: FixedASCII<16>, timestamp: UInt64,
    source: CalibrationSource = .factory, technician: UInt32 = 0
  ) -> CalibrationRecord {
    CalibrationRecord(
      source: source, markedBad: false, verified: false, model: model, serial: serial,
      timestamp: timestamp, depthGain: 1, depthOffset: .zero, speedGain: 1, rfGain: 1,
      depthError: .zero, speedError: 0, rfError: 0, technician: technician)
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(source)
    hasher.combine(markedBad)
    hasher.combine(verified)
    hasher.combine(model)
    for i in 0..<16 { hasher.combine(serial.storage[i]) }
    hasher.combine(timestamp)
    hasher.combine(depthGain)
    hasher.combine(depthOffset)
    hasher.combine(speedGain)
    hasher.combine(rfGain)
    hasher.combine(depthError)
    hasher.combine(speedError)
    hasher.combine(rfError)
    hasher.combine(technician)
  }
}

// MARK: - Layout

extension CalibrationRecord {
  /// The record's size in bytes.
  public static let size = 64
  /// Bytes 0–1, "CR", read with the first byte high (as `badMagic` reports it).
  public static let magic: UInt16 = 0x4352
  /// The one `format_version` this codec reads and writes.
  public static let formatVersion: UInt8 = 1
  /// Where the CRC-32C of bytes 0 to `crcOffset - 1` sits.
  public static let crcOffset = 60
  /// `flags` bit 0.
  public static let markedBadBit: UInt8 = 0x01
  /// `flags` bit 1.
  public static let verifiedBit: UInt8 = 0x02
  /// `flags` bits 2–7, which must be clear.
  public static let reservedFlagsMask: UInt8 = 0xFC
  /// Gains are carried in millionths.
  public static let gainScale: Double = 1_000_000
  /// Plausible gain range, raw (0.8 to 1.25).
  public static let minGainRaw: Int64 = 800_000
  public static let maxGainRaw: Int64 = 1_250_000
  /// Plausible depth offset range, in micrometres.
  public static let minOffsetRaw: Int64 = -300
  public static let maxOffsetRaw: Int64 = 300
  /// Millimetres to micrometres, and fractions to steps of 0.1 %.
  static let milliScale: Double = 1000
  /// The raw `rf_gain` a writer sets for a pen without RF.
  static let neutralGainRaw: Int64 = 1_000_000
}

// MARK: - Encoding

extension CalibrationRecord {
  /// The record as its 64 bytes, with the CRC filled in.
  ///
  /// Gains and the depth offset round to the nearest wire step; the error fields round up to the
  /// next step (calibration.md section 6 step 5), ignoring floating-point noise below a millionth
  /// of a step, so that encoding never makes a record look more accurate than it is. Refuses, in
  /// offset order, a field outside its plausible range or not representable (NaN, infinite,
  /// negative error, non-printable serial), then a breach of the writer rules of section 1.
  public func encode() throws(CalibrationRecordError) -> FixedBytes<64> {
    if let index = FixedASCII<16>.firstInvalidIndex(serial.storage) {
      throw .fieldOutOfRange(.serial, raw: Wire.int64(index))
    }
    let depthGainRaw = try Self.checkedRaw(.depthGain, depthGain, scale: Self.gainScale)
    let depthOffsetRaw = try Self.checkedRaw(
      .depthOffset, depthOffset.value, scale: Self.milliScale)
    let speedGainRaw = try Self.checkedRaw(.speedGain, speedGain, scale: Self.gainScale)
    let rfGainRaw = try Self.checkedRaw(.rfGain, rfGain, scale: Self.gainScale)
    let depthErrorRaw = try Self.checkedErrorRaw(.depthError, depthError.value)
    let speedErrorRaw = try Self.checkedErrorRaw(.speedError, speedError)
    let rfErrorRaw = try Self.checkedErrorRaw(.rfError, rfError)

    switch source {
    case .factory where technician != 0, .technician where technician == 0:
      throw .inconsistentField(.technician, raw: Wire.int64(technician))
    default: break
    }
    if model == .mn100 {
      if rfGainRaw != Self.neutralGainRaw { throw .inconsistentField(.rfGain, raw: rfGainRaw) }
      if rfErrorRaw != 0 { throw .inconsistentField(.rfError, raw: rfErrorRaw) }
    }

    var out = FixedBytes<64>()
    out[0] = UInt8(truncatingIfNeeded: Self.magic &>> 8)
    out[1] = UInt8(truncatingIfNeeded: Self.magic)
    out[2] = Self.formatVersion
    out[3] = source.rawValue
    out[4] = (markedBad ? Self.markedBadBit : 0) | (verified ? Self.verifiedBit : 0)
    out[6] = model.rawValue
    for i in 0..<16 { out[8 + i] = serial.storage[i] }
    Self.put32(&out, 24, UInt32(truncatingIfNeeded: timestamp))
    Self.put32(&out, 28, UInt32(truncatingIfNeeded: timestamp &>> 32))
    Self.put32(&out, 32, UInt32(truncatingIfNeeded: depthGainRaw))
    Self.put32(&out, 36, UInt32(truncatingIfNeeded: depthOffsetRaw))
    Self.put32(&out, 40, UInt32(truncatingIfNeeded: speedGainRaw))
    Self.put32(&out, 44, UInt32(truncatingIfNeeded: rfGainRaw))
    Self.put16(&out, 48, UInt16(truncatingIfNeeded: depthErrorRaw))
    Self.put16(&out, 50, UInt16(truncatingIfNeeded: speedErrorRaw))
    Self.put16(&out, 52, UInt16(truncatingIfNeeded: rfErrorRaw))
    Self.put32(&out, 54, technician)
    Self.put32(&out, Self.crcOffset, Self.crc(out))
    return out
  }

  /// A value's raw wire integer, rounded to the nearest step and saturated; `Int64.min` for NaN.
  static func nearestRaw(_ value: Double, scale: Double) -> Int64 {
    Wire.rawApproximation(value, scale: scale)
  }

  /// An error value's raw wire integer, rounded up to the next step (noise below 1e-6 of a step
  /// ignored) and saturated; `Int64.min` for NaN.
  static func errorRaw(_ value: Double) -> Int64 {
    let scaled = value * milliScale
    if scaled.isNaN { return Int64.min }
    let up = (scaled - 1e-6).rounded(.up)
    if up >= 9.2e18 { return Int64.max }
    if up <= -9.2e18 { return Int64.min + 1 }
    return Int64(up)
  }

  /// A tolerance's raw limit, rounded down to a whole step (noise below 1e-6 of a step ignored);
  /// nil for NaN, which no error meets.
  static func toleranceRaw(_ value: Double) -> Int64? {
    let scaled = value * milliScale
    if scaled.isNaN { return nil }
    let down = (scaled + 1e-6).rounded(.down)
    if down >= 9.2e18 { return Int64.max }
    if down <= -9.2e18 { return Int64.min + 1 }
    return Int64(down)
  }

  static func inRange(_ raw: Int64, _ field: CalibrationField) -> Bool {
    guard let range = field.rawRange else { return true }
    return raw >= range.min && raw <= range.max
  }

  static func checkedRaw(_ field: CalibrationField, _ value: Double, scale: Double)
    throws(CalibrationRecordError) -> Int64
  {
    let raw = nearestRaw(value, scale: scale)
    guard raw != Int64.min && inRange(raw, field) else { throw .fieldOutOfRange(field, raw: raw) }
    return raw
  }

  static func checkedErrorRaw(_ field: CalibrationField, _ value: Double)
    throws(CalibrationRecordError) -> Int64
  {
    let raw = errorRaw(value)
    guard raw != Int64.min && inRange(raw, field) else { throw .fieldOutOfRange(field, raw: raw) }
    return raw
  }

  static func put16(_ out: inout FixedBytes<64>, _ offset: Int, _ v: UInt16) {
    out[offset] = UInt8(truncatingIfNeeded: v)
    out[offset + 1] = UInt8(truncatingIfNeeded: v &>> 8)
  }

  static func put32(_ out: inout FixedBytes<64>, _ offset: Int, _ v: UInt32) {
    out[offset] = UInt8(truncatingIfNeeded: v)
    out[offset + 1] = UInt8(truncatingIfNeeded: v &>> 8)
    out[offset + 2] = UInt8(truncatingIfNeeded: v &>> 16)
    out[offset + 3] = UInt8(truncatingIfNeeded: v &>> 24)
  }

  static func get16(_ bytes: FixedBytes<64>, _ offset: Int) -> UInt16 {
    UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) &<< 8
  }

  static func get32(_ bytes: FixedBytes<64>, _ offset: Int) -> UInt32 {
    UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) &<< 8 | UInt32(bytes[offset + 2]) &<< 16
      | UInt32(bytes[offset + 3]) &<< 24
  }

  /// CRC-32C of bytes 0–59.
  static func crc(_ bytes: FixedBytes<64>) -> UInt32 {
    var crc = CRC32C()
    for i in 0..<crcOffset { crc.update(bytes[i]) }
    return crc.value
  }
}

// MARK: - Decoding

extension CalibrationRecord {
  /// Decodes a record, checking in calibration.md section 5's order (magic, version, CRC,
  /// reserved bits and bytes, then each field's range in offset order) and reporting the first
  /// failure.
  public static func decode(_ bytes: FixedBytes<64>) throws(CalibrationRecordError)
    -> CalibrationRecord
  {
    let magic = UInt16(bytes[0]) &<< 8 | UInt16(bytes[1])
    guard magic == Self.magic else { throw .badMagic(magic) }
    guard bytes[2] == formatVersion else { throw .unsupportedVersion(bytes[2]) }
    let received = get32(bytes, crcOffset)
    let computed = crc(bytes)
    guard received == computed else { throw .crcMismatch(received: received, computed: computed) }

    let flags = bytes[4]
    guard flags & reservedFlagsMask == 0 else { throw .reservedNotZero(offset: 4) }
    guard bytes[5] == 0 else { throw .reservedNotZero(offset: 5) }
    guard bytes[7] == 0 else { throw .reservedNotZero(offset: 7) }
    guard bytes[58] == 0 && bytes[59] == 0 else { throw .reservedNotZero(offset: 58) }

    guard let source = CalibrationSource(rawValue: bytes[3]) else {
      throw .fieldOutOfRange(.source, raw: Wire.int64(bytes[3]))
    }
    guard let model = PenModelID(rawValue: bytes[6]) else {
      throw .fieldOutOfRange(.model, raw: Wire.int64(bytes[6]))
    }
    var serial = FixedASCII<16>()
    for i in 0..<16 { serial.storage[i] = bytes[8 + i] }
    if let index = FixedASCII<16>.firstInvalidIndex(serial.storage) {
      throw .fieldOutOfRange(.serial, raw: Wire.int64(index))
    }
    let timestamp =
      UInt64(_truncatingBits: UInt(get32(bytes, 24)))
      | UInt64(_truncatingBits: UInt(get32(bytes, 28))) &<< 32
    let depthGainRaw = try ranged(.depthGain, Wire.int64(get32(bytes, 32)))
    let depthOffsetRaw = try ranged(.depthOffset, Wire.int64(Int32(bitPattern: get32(bytes, 36))))
    let speedGainRaw = try ranged(.speedGain, Wire.int64(get32(bytes, 40)))
    let rfGainRaw = try ranged(.rfGain, Wire.int64(get32(bytes, 44)))

    return CalibrationRecord(
      source: source, markedBad: flags & markedBadBit != 0, verified: flags & verifiedBit != 0,
      model: model, serial: serial, timestamp: timestamp,
      depthGain: Wire.double(depthGainRaw) / gainScale,
      depthOffset: Millimetres(Wire.double(depthOffsetRaw) / milliScale),
      speedGain: Wire.double(speedGainRaw) / gainScale,
      rfGain: Wire.double(rfGainRaw) / gainScale,
      depthError: Millimetres(Wire.double(get16(bytes, 48)) / milliScale),
      speedError: Wire.double(get16(bytes, 50)) / milliScale,
      rfError: Wire.double(get16(bytes, 52)) / milliScale,
      technician: get32(bytes, 54))
  }

  /// Decodes a record from exactly 64 bytes; any other count is `.badLength`.
  public static func decode(_ bytes: UnsafeRawBufferPointer) throws(CalibrationRecordError)
    -> CalibrationRecord
  {
    guard bytes.count == size else { throw .badLength(bytes.count) }
    var copy = FixedBytes<64>()
    for i in 0..<size { copy[i] = bytes[i] }
    return try decode(copy)
  }

  static func ranged(_ field: CalibrationField, _ raw: Int64) throws(CalibrationRecordError)
    -> Int64
  {
    guard inRange(raw, field) else { throw .fieldOutOfRange(field, raw: raw) }
    return raw
  }
}

// MARK: - Validity and correction

extension CalibrationRecord {
  /// Whether this record is valid for arming the pen with `model` and `serial` (calibration.md
  /// section 4), or the first rule it breaks, in the section's order.
  ///
  /// The error fields are compared as the wire carries them (rounded up to whole micrometres and
  /// 0.1 % steps), so a record and its decoded copy always give the same answer.
  public func validity(
    forModel model: PenModelID, serial: FixedASCII<16>,
    tolerances: CalibrationTolerances = .standard
  ) -> CalibrationValidity {
    if let field = implausibleField() { return .implausible(field) }
    if markedBad { return .markedBad }
    if !verified { return .notVerified }
    if self.model != model { return .wrongPen(.model) }
    if self.serial != serial { return .wrongPen(.serial) }
    if !Self.withinTolerance(depthError.value, tolerances.depth.value) {
      return .outOfTolerance(.depthError)
    }
    if !Self.withinTolerance(speedError, tolerances.speed) { return .outOfTolerance(.speedError) }
    if !Self.withinTolerance(rfError, tolerances.rfEnergy) { return .outOfTolerance(.rfError) }
    return .valid
  }

  /// The first field, in offset order, that section 5 step 6 would refuse, or that the wire
  /// cannot carry.
  func implausibleField() -> CalibrationField? {
    if FixedASCII<16>.firstInvalidIndex(serial.storage) != nil { return .serial }
    if !Self.plausible(.depthGain, depthGain, scale: Self.gainScale) { return .depthGain }
    if !Self.plausible(.depthOffset, depthOffset.value, scale: Self.milliScale) {
      return .depthOffset
    }
    if !Self.plausible(.speedGain, speedGain, scale: Self.gainScale) { return .speedGain }
    if !Self.plausible(.rfGain, rfGain, scale: Self.gainScale) { return .rfGain }
    return nil
  }

  static func plausible(_ field: CalibrationField, _ value: Double, scale: Double) -> Bool {
    let raw = nearestRaw(value, scale: scale)
    return raw != Int64.min && inRange(raw, field)
  }

  static func withinTolerance(_ error: Double, _ tolerance: Double) -> Bool {
    let raw = errorRaw(error)
    guard raw >= 0 && raw <= 65_535, let limit = toleranceRaw(tolerance) else { return false }
    return raw <= limit
  }

  /// The depth the actuator is driven to for a depth setpoint: setpoint × gain + offset.
  public func depthCommand(for setpoint: Millimetres) -> Millimetres {
    setpoint * depthGain + depthOffset
  }

  /// The needle speed the actuator is driven at for a speed setpoint: setpoint × gain.
  public func speedCommand(for setpoint: Hertz) -> Hertz {
    setpoint * speedGain
  }

  /// The RF energy per pin delivered for an energy setpoint: setpoint × gain.
  public func rfEnergyCommand(for setpoint: Millijoules) -> Millijoules {
    setpoint * rfGain
  }
}

// MARK: - Host conveniences

#if !hasFeature(Embedded)

  extension CalibrationRecord {
    /// The encoded record as an array of 64 bytes.
    public func encodedBytes() throws(CalibrationRecordError) -> [UInt8] {
      try encode().bytes
    }

    /// Decodes a record from an array, which must hold exactly 64 bytes.
    public static func decode(_ bytes: [UInt8]) throws(CalibrationRecordError)
      -> CalibrationRecord
    {
      guard let fixed = FixedBytes<64>(bytes) else { throw .badLength(bytes.count) }
      return try decode(fixed)
    }
  }

  extension CalibrationRecordError: CustomStringConvertible {
    /// What was wrong, with the value and the limit, for a person.
    public var description: String {
      let prefix = "calibration record: "
      switch self {
      case .badLength(let count):
        return prefix + "\(count) bytes where exactly \(CalibrationRecord.size) are needed"
      case .badMagic(let magic):
        return prefix + "bad magic 0x\(Self.hex(magic, width: 4)): expected 0x4352 (\"CR\")"
      case .unsupportedVersion(let version):
        return prefix
          + "unsupported format version \(version): this codec reads version \(CalibrationRecord.formatVersion)"
      case .crcMismatch(let received, let computed):
        return prefix
          + "CRC-32C mismatch: record carries 0x\(Self.hex(received, width: 8)), bytes 0-59 give 0x\(Self.hex(computed, width: 8))"
      case .reservedNotZero(let offset):
        return prefix
          + (offset == CalibrationField.flags.offset
            ? "reserved flag bits 2-7 set at offset \(offset)"
            : "reserved byte at offset \(offset) not zero")
      case .fieldOutOfRange(let field, let raw):
        let name = "\(field.specName)"
        if field == .serial {
          return prefix
            + "serial byte \(raw) is not printable ASCII (0x20-0x7E) or follows the NUL padding"
        }
        let value = raw == Int64.min ? "NaN" : String(raw)
        guard let range = field.rawRange else { return prefix + "\(name) raw \(value) invalid" }
        return prefix + "\(name) raw \(value) outside \(range.min)…\(range.max)"
      case .inconsistentField(let field, let raw):
        let name = "\(field.specName)"
        switch field {
        case .technician where raw == 0:
          return prefix + "technician raw 0: a technician record needs the operator's non-zero id"
        case .technician:
          return prefix + "technician raw \(raw): a factory record carries technician 0"
        case .rfGain:
          return prefix + "rf_gain raw \(raw): a pen without RF (mn100) carries 1000000"
        case .rfError:
          return prefix + "rf_error raw \(raw): a pen without RF (mn100) carries 0"
        default:
          return prefix + "\(name) raw \(raw) breaks a writer rule"
        }
      }
    }

    private static func hex<T: BinaryInteger>(_ value: T, width: Int) -> String {
      let digits = String(value, radix: 16)
      return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
  }

  extension CalibrationValidity: CustomStringConvertible {
    /// The verdict for a person.
    public var description: String {
      switch self {
      case .valid: "valid for arming"
      case .implausible(let field): "not valid for arming: \(field.specName) outside its range"
      case .markedBad: "not valid for arming: marked bad"
      case .notVerified: "not valid for arming: not verified"
      case .wrongPen(let field): "not valid for arming: \(field.specName) is another pen's"
      case .outOfTolerance(let field):
        "not valid for arming: \(field.specName) exceeds its tolerance"
      }
    }
  }

#endif
