// Conveniences for hosts with a full standard library: arrays, strings and descriptions. None of
// this exists in the Embedded build, which keeps to the allocation-free core.
#if !hasFeature(Embedded)

  /// One field's raw wire value, for access by catalogue name.
  public enum RawField: Hashable, Sendable {
    case integer(Int64)
    case bytes([UInt8])
  }

  extension FixedBytes {
    /// The bytes as an array.
    public var bytes: [UInt8] { (0..<count).map { storage[$0] } }

    /// Bytes from an array of exactly `count` bytes.
    public init?(_ bytes: [UInt8]) {
      guard bytes.count == count else { return nil }
      self.init()
      for (i, b) in bytes.enumerated() { storage[i] = b }
    }
  }

  extension FixedASCII: CustomStringConvertible {
    /// The bytes as an array, padding included.
    public var bytes: [UInt8] { (0..<count).map { storage[$0] } }

    /// The text without its padding.
    public var description: String {
      String(decoding: (0..<length).map { storage[$0] }, as: UTF8.self)
    }

    /// Text from a string; nil when it is too long or not printable ASCII.
    public init?(string: String) {
      let utf8 = Array(string.utf8)
      guard utf8.count <= count, utf8.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) else { return nil }
      self.init()
      for (i, b) in utf8.enumerated() { storage[i] = b }
    }
  }

  extension FrameBuffer {
    /// The encoded frame as an array.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
  }

  extension FrameCodec {
    /// Encodes one message into a new array.
    public static func encode(
      _ message: Message, sequence: UInt16, flags: FrameFlags = .empty
    ) throws(WireError) -> [UInt8] {
      var buffer = FrameBuffer()
      try encode(message, sequence: sequence, flags: flags, into: &buffer)
      return buffer.bytes
    }

    /// Decodes exactly one frame from an array.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> Frame {
      let result = bytes.withUnsafeBytes { raw in
        Result { () throws(WireError) -> Frame in try decode(raw) }
      }
      return try result.get()
    }
  }

  extension StreamDecoder {
    /// Feeds an array through the decoder and returns every event, in order.
    public mutating func feed(_ bytes: [UInt8]) -> [StreamEvent] {
      var events: [StreamEvent] = []
      bytes.withUnsafeBytes { raw in feed(raw) { events.append($0) } }
      return events
    }
  }

  extension WireError: CustomStringConvertible {
    /// What was wrong, with the value and the limit, for a person.
    public var description: String {
      switch self {
      case .truncated(let have, let need):
        return "truncated frame: \(have) bytes where at least \(need) are needed"
      case .badMagic(let magic):
        return "bad frame magic 0x\(String(magic, radix: 16)): expected 0x5043 (\"PC\")"
      case .badLength(let declared, let expected):
        return "bad length: payload length \(declared) does not fit (expected \(expected))"
      case .crcMismatch(let received, let computed):
        return
          "CRC-32C mismatch: frame carries 0x\(String(received, radix: 16)), bytes give 0x\(String(computed, radix: 16))"
      case .unsupportedVersion(let v):
        return
          "unsupported protocol version \(v): this host speaks version \(FrameLayout.protocolVersion)"
      case .reservedFlags(let flags):
        return "reserved flag bits set in 0x\(String(flags, radix: 16)) (mask 0xf8 must be clear)"
      case .unknownMessage(let id):
        return "unknown message id \(id): not in the catalogue"
      case .fieldOutOfRange(let field, let raw):
        let message =
          MessageCatalogue.name(id: field.message).map { "\($0)" } ?? "message \(field.message)"
        let name = MessageCatalogue.fieldName(field).map { "\($0)" } ?? "field \(field.index)"
        return
          "\(message).\(name): raw value \(raw == Int64.min ? "NaN" : String(raw)) is outside the catalogue's range"
      case .bufferTooSmall(let capacity, let need):
        return "frame of \(need) bytes does not fit a buffer of \(capacity)"
      }
    }
  }

  /// Builds a payload from raw values by catalogue field name, then decodes it with the same
  /// checks as a received frame. Used by `Message.init(name:rawFields:)`.
  struct RawFieldWriter {
    let fields: [String: RawField]
    var payload: [UInt8] = []

    init(fields: [String: RawField]) { self.fields = fields }

    mutating func integer<T: FixedWidthInteger>(
      _ name: String, as: T.Type, field: FieldRef
    ) throws(WireError) {
      guard case .integer(let raw)? = fields[name] else {
        throw .fieldOutOfRange(field, raw: Int64.min)
      }
      let value: T
      if T.isSigned {
        guard let v = T(exactly: raw) else { throw .fieldOutOfRange(field, raw: raw) }
        value = v
      } else if T.bitWidth == 64 {
        value = T(truncatingIfNeeded: UInt64(bitPattern: raw))
      } else {
        guard let v = T(exactly: raw) else { throw .fieldOutOfRange(field, raw: raw) }
        value = v
      }
      withUnsafeBytes(of: value.littleEndian) { payload.append(contentsOf: $0) }
    }

    mutating func bytes(_ name: String, count: Int, field: FieldRef) throws(WireError) {
      guard case .bytes(let b)? = fields[name], b.count == count else {
        throw .fieldOutOfRange(field, raw: Int64.min)
      }
      payload.append(contentsOf: b)
    }

    func decode(id: UInt16) throws(WireError) -> Message {
      let result = payload.withUnsafeBytes { raw in
        Result { () throws(WireError) -> Message in
          var reader = PayloadReader(base: raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!)
          return try Message.decodePayload(id: id, from: &reader)
        }
      }
      return try result.get()
    }
  }

  extension MessageCatalogue {
    /// The id of a message by its catalogue name.
    public static func id(named name: String) -> UInt16? {
      (1...UInt16(255)).first { id in self.name(id: id).map { "\($0)" == name } ?? false }
    }
  }
#endif
