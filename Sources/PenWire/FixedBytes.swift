/// A fixed number of bytes stored inline (a nonce, a MAC, a calibration record).
@frozen public struct FixedBytes<let count: Int>: Sendable {
  public var storage: InlineArray<count, UInt8>

  /// All zero bytes.
  @inlinable public init() { storage = InlineArray(repeating: 0) }

  @inlinable public init(storage: InlineArray<count, UInt8>) { self.storage = storage }

  /// The byte at `index`.
  @inlinable public subscript(index: Int) -> UInt8 {
    get { storage[index] }
    set { storage[index] = newValue }
  }
}

extension FixedBytes: Equatable {
  @inlinable public static func == (lhs: Self, rhs: Self) -> Bool {
    for i in 0..<count where lhs.storage[i] != rhs.storage[i] { return false }
    return true
  }
}

/// Printable ASCII text in a fixed-size field, padded with NUL bytes (a serial number).
@frozen public struct FixedASCII<let count: Int>: Sendable {
  public var storage: InlineArray<count, UInt8>

  /// The empty string (all NUL).
  @inlinable public init() { storage = InlineArray(repeating: 0) }

  /// Text from a static string; nil when it is too long or not printable ASCII.
  @inlinable public init?(_ text: StaticString) {
    guard text.utf8CodeUnitCount <= count else { return nil }
    storage = InlineArray(repeating: 0)
    let start = text.utf8Start
    for i in 0..<text.utf8CodeUnitCount {
      let byte = start[i]
      guard byte >= 0x20 && byte <= 0x7E else { return nil }
      storage[i] = byte
    }
  }

  /// The number of text bytes before the NUL padding.
  @inlinable public var length: Int {
    for i in 0..<count where storage[i] == 0 { return i }
    return count
  }

  /// The index of the first byte that is neither printable ASCII nor part of the trailing NUL
  /// padding, or nil when the bytes are valid.
  @inlinable public static func firstInvalidIndex(_ bytes: InlineArray<count, UInt8>) -> Int? {
    var ended = false
    for i in 0..<count {
      let byte = bytes[i]
      if byte == 0 {
        ended = true
      } else if ended || byte < 0x20 || byte > 0x7E {
        return i
      }
    }
    return nil
  }
}

extension FixedASCII: Equatable {
  @inlinable public static func == (lhs: Self, rhs: Self) -> Bool {
    for i in 0..<count where lhs.storage[i] != rhs.storage[i] { return false }
    return true
  }
}
