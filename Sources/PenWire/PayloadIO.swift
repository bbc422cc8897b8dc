/// A message payload that the frame codec can carry: every catalogue message conforms.
public protocol WireMessage: Sendable {
  /// The message id on the wire.
  static var id: UInt16 { get }
  /// The catalogue's name.
  static var name: StaticString { get }
  static var direction: MessageDirection { get }
  static var ackPolicy: AckPolicy { get }
  /// The fixed payload size in bytes.
  static var payloadSize: Int { get }
  func encode(into w: inout PayloadWriter) throws(WireError)
  static func decode(from r: inout PayloadReader) throws(WireError) -> Self
}

/// Writes little-endian fields into a payload region the frame encoder has sized already.
///
/// Bounds were checked once, against the message's fixed payload size, before any field is
/// written; the writer itself only advances.
@frozen public struct PayloadWriter {
  @usableFromInline let base: UnsafeMutableRawPointer
  @usableFromInline var offset: Int

  @inlinable init(base: UnsafeMutableRawPointer) {
    self.base = base
    self.offset = 0
  }

  // Concrete per-width writers: a generic FixedWidthInteger writer pulls in array-backed
  // integer conversions on 32-bit targets, which the Embedded -no-allocations build refuses.
  @inlinable public mutating func u8(_ v: UInt8) {
    base.storeBytes(of: v, toByteOffset: offset, as: UInt8.self)
    offset &+= 1
  }
  @inlinable public mutating func u16(_ v: UInt16) {
    base.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt16.self)
    offset &+= 2
  }
  @inlinable public mutating func u32(_ v: UInt32) {
    base.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt32.self)
    offset &+= 4
  }
  @inlinable public mutating func u64(_ v: UInt64) {
    base.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt64.self)
    offset &+= 8
  }
  @inlinable public mutating func i16(_ v: Int16) { u16(UInt16(bitPattern: v)) }
  @inlinable public mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }

  @inlinable public mutating func bytes<let n: Int>(_ v: FixedBytes<n>) {
    for i in 0..<n { u8(v.storage[i]) }
  }

  @inlinable public mutating func bytes<let n: Int>(_ v: FixedASCII<n>) {
    for i in 0..<n { u8(v.storage[i]) }
  }
}

/// Reads little-endian fields from a payload whose size the frame decoder has checked already.
@frozen public struct PayloadReader {
  @usableFromInline let base: UnsafeRawPointer
  @usableFromInline var offset: Int

  @inlinable init(base: UnsafeRawPointer) {
    self.base = base
    self.offset = 0
  }

  @inlinable public mutating func u8() -> UInt8 {
    let v = base.load(fromByteOffset: offset, as: UInt8.self)
    offset &+= 1
    return v
  }
  @inlinable public mutating func u16() -> UInt16 {
    let v = base.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
    offset &+= 2
    return UInt16(littleEndian: v)
  }
  @inlinable public mutating func u32() -> UInt32 {
    let v = base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
    offset &+= 4
    return UInt32(littleEndian: v)
  }
  @inlinable public mutating func u64() -> UInt64 {
    let v = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
    offset &+= 8
    return UInt64(littleEndian: v)
  }
  @inlinable public mutating func i16() -> Int16 { Int16(bitPattern: u16()) }
  @inlinable public mutating func i32() -> Int32 { Int32(bitPattern: u32()) }

  @inlinable public mutating func bytes<let n: Int>() -> FixedBytes<n> {
    var out = FixedBytes<n>()
    for i in 0..<n { out.storage[i] = u8() }
    return out
  }

  @inlinable public mutating func ascii<let n: Int>(field: FieldRef) throws(WireError)
    -> FixedASCII<n>
  {
    var out = FixedASCII<n>()
    for i in 0..<n { out.storage[i] = u8() }
    if let invalid = FixedASCII<n>.firstInvalidIndex(out.storage) {
      // For text, the raw value reported is the position of the first offending byte.
      throw .fieldOutOfRange(field, raw: Wire.int64(invalid))
    }
    return out
  }
}

/// Range checks and fixed-point conversion shared by every generated field codec.
public enum Wire {
  /// `value * scale`, rounded to the nearest integer, when it lies in `min...max` (the caller
  /// narrows it to the field's width; the range guarantees it fits).
  @inlinable public static func fixedPoint(
    _ value: Double, scale: Double, min: Int64, max: Int64, field: FieldRef
  ) throws(WireError) -> Int64 {
    let scaled = (value * scale).rounded()
    guard scaled > -9.2e18 && scaled < 9.2e18 else {
      throw .fieldOutOfRange(field, raw: rawApproximation(value, scale: scale))
    }
    let raw = Int64(scaled)
    guard raw >= min && raw <= max else { throw .fieldOutOfRange(field, raw: raw) }
    return raw
  }

  /// The raw integer a value would have on the wire, saturated; `Int64.min` for NaN.
  @inlinable public static func rawApproximation(_ value: Double, scale: Double) -> Int64 {
    let scaled = (value * scale).rounded()
    if scaled.isNaN { return Int64.min }
    if scaled >= 9.2e18 { return Int64.max }
    if scaled <= -9.2e18 { return Int64.min + 1 }
    return Int64(scaled)
  }

  /// The value when it lies in `min...max`.
  @inlinable public static func ranged<T: FixedWidthInteger>(
    _ value: T, min: Int64, max: Int64, field: FieldRef
  ) throws(WireError) -> T {
    let wide = int64(value)
    guard wide >= min && wide <= max else { throw .fieldOutOfRange(field, raw: wide) }
    return value
  }

  /// An enum case from its raw value.
  @inlinable public static func enumValue<E: RawRepresentable>(
    _: E.Type, _ raw: E.RawValue, field: FieldRef
  ) throws(WireError) -> E where E.RawValue: FixedWidthInteger {
    guard let value = E(rawValue: raw) else {
      throw .fieldOutOfRange(field, raw: int64(raw))
    }
    return value
  }

  /// Flag bits, refusing any bit outside `known`.
  @inlinable public static func flagBits<T: FixedWidthInteger>(
    _ raw: T, known: T, field: FieldRef
  ) throws(WireError) -> T {
    guard raw & ~known == 0 else { throw .fieldOutOfRange(field, raw: int64(raw)) }
    return raw
  }

  /// Any fixed-width integer as an `Int64` (a `UInt64` above `Int64.max` keeps its bit pattern).
  ///
  /// The standard library's generic integer conversions into 64-bit types go through `words` on
  /// 32-bit targets, which `-no-allocations` refuses; this widens with bit operations instead.
  @inlinable public static func int64<T: FixedWidthInteger>(_ v: T) -> Int64 {
    if T.bitWidth == 64 { return unsafeBitCast(v, to: Int64.self) }
    if T.isSigned {
      let i = Int(truncatingIfNeeded: v)
      var bits = UInt64(_truncatingBits: UInt(bitPattern: i))
      if i < 0 { bits |= 0xFFFF_FFFF_0000_0000 }
      return Int64(bitPattern: bits)
    }
    return Int64(bitPattern: UInt64(_truncatingBits: UInt(truncatingIfNeeded: v)))
  }

  /// Any fixed-width integer as a `Double` (exact below 2^53).
  @inlinable public static func double<T: FixedWidthInteger>(_ v: T) -> Double {
    let wide = int64(v)
    if !T.isSigned && wide < 0 {
      // A UInt64 above Int64.max: halve it to stay in range, then double it back.
      return double(Int64(bitPattern: UInt64(bitPattern: wide) &>> 1)) * 2
    }
    return double(wide)
  }

  /// An `Int64` as a `Double` (exact below 2^53), built from `Int` pieces: in inlinable code the
  /// direct conversion resolves to the generic one, which allocates on 32-bit Embedded targets.
  @inlinable public static func double(_ v: Int64) -> Double {
    if Int.bitWidth == 64 { return Double(Int(truncatingIfNeeded: v)) }
    let high = Double(Int(truncatingIfNeeded: v &>> 32)) * 4_294_967_296
    let middle = Double(Int(truncatingIfNeeded: (v &>> 16) & 0xFFFF)) * 65_536
    return high + middle + Double(Int(truncatingIfNeeded: v & 0xFFFF))
  }

  /// A bool encoded as exactly 0 or 1.
  @inlinable public static func bool(_ raw: UInt8, field: FieldRef) throws(WireError) -> Bool {
    switch raw {
    case 0: return false
    case 1: return true
    default: throw .fieldOutOfRange(field, raw: int64(raw))
    }
  }
}
