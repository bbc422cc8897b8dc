/// CRC-32C (Castagnoli), the frame and calibration-record checksum.
///
/// Polynomial 0x1EDC6F41, reflected in and out (table polynomial 0x82F63B78), initial value and
/// final xor 0xFFFFFFFF; the check value of "123456789" is 0xE3069283 (framing.md). Eight bytes at
/// a time with eight tables (slicing-by-8), then byte by byte for the tail.
@frozen public struct CRC32C: Sendable {
  @usableFromInline var state: UInt32

  /// A fresh CRC over no bytes.
  @inlinable public init() { state = 0xFFFF_FFFF }

  @inlinable static func byte(_ crc: UInt32, _ byte: UInt8) -> UInt32 {
    crc32cTables[Int(UInt8(truncatingIfNeeded: crc) ^ byte)] ^ (crc &>> 8)
  }

  /// Adds one byte.
  @inlinable public mutating func update(_ byte: UInt8) { state = Self.byte(state, byte) }

  /// Adds every byte of a buffer.
  @inlinable public mutating func update(_ bytes: UnsafeRawBufferPointer) {
    var crc = state
    var offset = 0
    let count = bytes.count
    if let base = bytes.baseAddress {
      while count - offset >= 8 {
        let low =
          UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) ^ crc
        let high = UInt32(
          littleEndian: base.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
        crc =
          crc32cTables[7 &* 256 &+ Int(low & 0xFF)]
          ^ crc32cTables[6 &* 256 &+ Int((low &>> 8) & 0xFF)]
          ^ crc32cTables[5 &* 256 &+ Int((low &>> 16) & 0xFF)]
          ^ crc32cTables[4 &* 256 &+ Int(low &>> 24)]
          ^ crc32cTables[3 &* 256 &+ Int(high & 0xFF)]
          ^ crc32cTables[2 &* 256 &+ Int((high &>> 8) & 0xFF)]
          ^ crc32cTables[256 &+ Int((high &>> 16) & 0xFF)] ^ crc32cTables[Int(high &>> 24)]
        offset &+= 8
      }
    }
    while offset < count {
      crc = Self.byte(crc, bytes[offset])
      offset &+= 1
    }
    state = crc
  }

  /// The checksum of everything added so far.
  @inlinable public var value: UInt32 { state ^ 0xFFFF_FFFF }

  /// The checksum of one buffer.
  @inlinable public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var crc = CRC32C()
    crc.update(bytes)
    return crc.value
  }
}
