/// Names one field of one catalogue message, for error reports that allocate nothing.
@frozen public struct FieldRef: Hashable, Sendable {
  /// The message id.
  public var message: UInt16
  /// The field's position in the message, from 0.
  public var index: UInt8

  @inlinable public init(message: UInt16, index: UInt8) {
    self.message = message
    self.index = index
  }
}

/// Why bytes could not be decoded as a frame, or a value could not be encoded.
///
/// framing.md, section 'Decoding order', says which check comes first, so that a given malformed
/// frame always produces the same error; the golden vectors pin that order.
public enum WireError: Error, Hashable, Sendable {
  /// Fewer bytes than the frame needs: `have` bytes where at least `need` are required.
  case truncated(have: Int, need: Int)
  /// The first two bytes are not the frame magic "PC" (0x50 0x43).
  case badMagic(UInt16)
  /// A payload length above the maximum, or not the message's fixed size, or bytes after the CRC.
  case badLength(declared: Int, expected: Int)
  /// The CRC-32C in the frame does not match the bytes before it.
  case crcMismatch(received: UInt32, computed: UInt32)
  /// A protocol version this codec does not speak.
  case unsupportedVersion(UInt8)
  /// A flag bit the specification reserves is set.
  case reservedFlags(UInt8)
  /// A message id the catalogue does not define.
  case unknownMessage(id: UInt16)
  /// A field value outside its catalogue range, an unknown enum value or flag bit, a bool that is
  /// neither 0 nor 1, or non-printable ASCII. `raw` is the offending wire value (for a value that
  /// is not a number, `Int64.min`).
  case fieldOutOfRange(FieldRef, raw: Int64)
  /// An output buffer too small for the frame.
  case bufferTooSmall(capacity: Int, need: Int)

  /// The error's kind as the golden vectors name it.
  public var kind: StaticString {
    switch self {
    case .truncated: "truncated"
    case .badMagic: "bad_magic"
    case .badLength: "bad_length"
    case .crcMismatch: "crc_mismatch"
    case .unsupportedVersion: "unsupported_version"
    case .reservedFlags: "reserved_flags"
    case .unknownMessage: "unknown_message"
    case .fieldOutOfRange: "field_out_of_range"
    case .bufferTooSmall: "buffer_too_small"
    }
  }
}
