/// CRC-32C (Castagnoli), the frame and calibration-record checksum.
///
/// Polynomial 0x1EDC6F41, reflected in and out (table polynomial 0x82F63B78), initial value and
/// final xor 0xFFFFFFFF; the check value of "123456789" is 0xE3069283 (framing.md).
@frozen public struct CRC32C: Sendable {
  @usableFromInline var state: UInt32

  /// A fresh CRC over no bytes.
  @inlinable public init() { state = 0xFFFF_FFFF }

  /// Adds one byte.
  @inlinable public mutating func update(_ byte: UInt8) {
    state = crc32cTable[Int(UInt8(truncatingIfNeeded: state) ^ byte)] ^ (state &>> 8)
  }

  /// Adds every byte of a buffer.
  @inlinable public mutating func update(_ bytes: UnsafeRawBufferPointer) {
    var crc = state
    for byte in bytes {
      crc = crc32cTable[Int(UInt8(truncatingIfNeeded: crc) ^ byte)] ^ (crc &>> 8)
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
