/// The fixed numbers of the frame format (framing.md).
public enum FrameLayout {
  /// The two magic bytes, "PC".
  public static let magic: (UInt8, UInt8) = (0x50, 0x43)
  /// magic(2) version(1) flags(1) sequence(2) message id(2) payload length(2).
  public static let headerSize = 10
  /// The CRC-32C trailer.
  public static let crcSize = 4
  /// The largest payload any frame may declare.
  public static let maxPayload = 240
  /// The largest frame: header, maximum payload and CRC.
  public static let maxFrame = headerSize + maxPayload + crcSize
  /// The one protocol version this codec speaks.
  public static let protocolVersion: UInt8 = 1
}

/// Frame header flags (framing.md, 'Flags'). Bits 3 to 7 are reserved and must be zero.
@frozen public struct FrameFlags: FlagSet {
  public var rawValue: UInt8
  @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
  /// The sender wants an ack, nack or reply for this frame.
  public static let ackRequested = FrameFlags(rawValue: 1 &<< 0)
  /// This frame repeats an earlier one with the same sequence number.
  public static let retransmission = FrameFlags(rawValue: 1 &<< 1)
  /// This frame answers the command whose sequence number it carries.
  public static let response = FrameFlags(rawValue: 1 &<< 2)
  /// The bits a receiver must find clear.
  public static let reservedMask: UInt8 = 0xF8
}

/// The decoded header of a frame.
@frozen public struct FrameHeader: Hashable, Sendable {
  public var version: UInt8
  public var flags: FrameFlags
  public var sequence: UInt16
  public var messageID: UInt16
  public var payloadLength: UInt16

  @inlinable public init(
    version: UInt8 = FrameLayout.protocolVersion, flags: FrameFlags, sequence: UInt16,
    messageID: UInt16, payloadLength: UInt16
  ) {
    self.version = version
    self.flags = flags
    self.sequence = sequence
    self.messageID = messageID
    self.payloadLength = payloadLength
  }
}

/// A whole decoded frame: its header and its message.
@frozen public struct Frame: Equatable, Sendable {
  public var header: FrameHeader
  public var message: Message

  @inlinable public init(header: FrameHeader, message: Message) {
    self.header = header
    self.message = message
  }
}

/// Room for one encoded frame, stored inline so that encoding allocates nothing.
@frozen public struct FrameBuffer: Sendable {
  /// Bytes of room: at least the largest frame.
  public static let capacity = 256
  @usableFromInline var storage: InlineArray<256, UInt8>
  /// How many bytes hold the frame.
  public var count: Int

  @inlinable public init() {
    storage = InlineArray(repeating: 0)
    count = 0
  }

  /// The byte at `index` (below `count`).
  @inlinable public subscript(index: Int) -> UInt8 {
    precondition(index < count, "index beyond the encoded frame")
    return storage[index]
  }

  /// Calls `body` with the encoded bytes.
  @inlinable public func withUnsafeBytes<R, E: Error>(
    _ body: (UnsafeRawBufferPointer) throws(E) -> R
  ) throws(E) -> R {
    let n = count
    return try Swift.withUnsafeBytes(of: storage) { (raw) throws(E) -> R in
      try body(UnsafeRawBufferPointer(rebasing: raw[0..<n]))
    }
  }
}

/// Encodes and decodes single frames.
public enum FrameCodec {
  /// Encodes one message into `buffer`, replacing its contents.
  @inlinable public static func encode<M: WireMessage>(
    _ message: M, sequence: UInt16, flags: FrameFlags = .empty, into buffer: inout FrameBuffer
  ) throws(WireError) {
    try encode(
      id: M.id, payloadSize: M.payloadSize, sequence: sequence, flags: flags, into: &buffer
    ) { (w) throws(WireError) in try message.encode(into: &w) }
  }

  /// Encodes one message of any kind into `buffer`, replacing its contents.
  @inlinable public static func encode(
    _ message: Message, sequence: UInt16, flags: FrameFlags = .empty, into buffer: inout FrameBuffer
  ) throws(WireError) {
    guard let size = MessageCatalogue.payloadSize(id: message.id) else {
      throw .unknownMessage(id: message.id)
    }
    try encode(id: message.id, payloadSize: size, sequence: sequence, flags: flags, into: &buffer) {
      (w) throws(WireError) in try message.encodePayload(into: &w)
    }
  }

  @inlinable static func encode(
    id: UInt16, payloadSize: Int, sequence: UInt16, flags: FrameFlags,
    into buffer: inout FrameBuffer, payload: (inout PayloadWriter) throws(WireError) -> Void
  ) throws(WireError) {
    guard flags.rawValue & FrameFlags.reservedMask == 0 else {
      throw .reservedFlags(flags.rawValue)
    }
    let total = FrameLayout.headerSize + payloadSize + FrameLayout.crcSize
    guard payloadSize <= FrameLayout.maxPayload, total <= FrameBuffer.capacity else {
      throw .bufferTooSmall(capacity: FrameBuffer.capacity, need: total)
    }
    buffer.count = 0
    try withUnsafeMutableBytes(of: &buffer.storage) { (raw) throws(WireError) in
      let base = raw.baseAddress!
      base.storeBytes(of: FrameLayout.magic.0, toByteOffset: 0, as: UInt8.self)
      base.storeBytes(of: FrameLayout.magic.1, toByteOffset: 1, as: UInt8.self)
      base.storeBytes(of: FrameLayout.protocolVersion, toByteOffset: 2, as: UInt8.self)
      base.storeBytes(of: flags.rawValue, toByteOffset: 3, as: UInt8.self)
      base.storeBytes(of: sequence.littleEndian, toByteOffset: 4, as: UInt16.self)
      base.storeBytes(of: id.littleEndian, toByteOffset: 6, as: UInt16.self)
      base.storeBytes(of: UInt16(payloadSize).littleEndian, toByteOffset: 8, as: UInt16.self)
      var writer = PayloadWriter(base: base + FrameLayout.headerSize)
      try payload(&writer)
      let covered = FrameLayout.headerSize + payloadSize
      let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<covered]))
      base.storeBytes(of: crc.littleEndian, toByteOffset: covered, as: UInt32.self)
    }
    buffer.count = total
  }

  /// Reads the header fields that locate a frame, checking only what needs no CRC: enough bytes
  /// for a header, the magic, and a payload length within the maximum.
  @inlinable static func locate(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> FrameHeader {
    guard bytes.count >= 2 else {
      throw .truncated(have: bytes.count, need: FrameLayout.headerSize)
    }
    guard bytes[0] == FrameLayout.magic.0 && bytes[1] == FrameLayout.magic.1 else {
      throw .badMagic(UInt16(bytes[0]) &<< 8 | UInt16(bytes[1]))
    }
    guard bytes.count >= FrameLayout.headerSize else {
      throw .truncated(have: bytes.count, need: FrameLayout.headerSize)
    }
    let length = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
    guard Int(length) <= FrameLayout.maxPayload else {
      throw .badLength(declared: Int(length), expected: FrameLayout.maxPayload)
    }
    return FrameHeader(
      version: bytes[2], flags: FrameFlags(rawValue: bytes[3]),
      sequence: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self)),
      messageID: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self)),
      payloadLength: length)
  }

  /// The whole frame size a located header declares.
  @inlinable static func frameSize(_ header: FrameHeader) -> Int {
    FrameLayout.headerSize + Int(header.payloadLength) + FrameLayout.crcSize
  }

  /// Checks the CRC of a located frame of exactly `frameSize(header)` bytes.
  @inlinable static func verifyCRC(_ frame: UnsafeRawBufferPointer) throws(WireError) {
    let covered = frame.count - FrameLayout.crcSize
    let received = UInt32(
      littleEndian: frame.loadUnaligned(fromByteOffset: covered, as: UInt32.self))
    let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: frame[0..<covered]))
    guard received == computed else { throw .crcMismatch(received: received, computed: computed) }
  }

  /// Decodes the message of a frame whose CRC is good: version, flags, id, length, then fields.
  @inlinable static func decodeVerified(
    _ header: FrameHeader, _ frame: UnsafeRawBufferPointer
  ) throws(WireError) -> Message {
    guard header.version == FrameLayout.protocolVersion else {
      throw .unsupportedVersion(header.version)
    }
    guard header.flags.rawValue & FrameFlags.reservedMask == 0 else {
      throw .reservedFlags(header.flags.rawValue)
    }
    guard let size = MessageCatalogue.payloadSize(id: header.messageID) else {
      throw .unknownMessage(id: header.messageID)
    }
    guard size == Int(header.payloadLength) else {
      throw .badLength(declared: Int(header.payloadLength), expected: size)
    }
    var reader = PayloadReader(base: frame.baseAddress! + FrameLayout.headerSize)
    return try Message.decodePayload(id: header.messageID, from: &reader)
  }

  /// Decodes exactly one frame, in the order framing.md gives: length and magic, declared length,
  /// CRC, version, flags, message id, payload size, fields. Bytes after the frame are refused.
  @inlinable public static func decode(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> Frame {
    let header = try locate(bytes)
    let size = frameSize(header)
    guard bytes.count >= size else { throw .truncated(have: bytes.count, need: size) }
    guard bytes.count == size else {
      throw .badLength(declared: Int(header.payloadLength), expected: bytes.count - size)
    }
    try verifyCRC(bytes)
    return Frame(header: header, message: try decodeVerified(header, bytes))
  }

  /// Decodes the frame held in a buffer.
  @inlinable public static func decode(_ buffer: FrameBuffer) throws(WireError) -> Frame {
    try buffer.withUnsafeBytes { (raw) throws(WireError) in try decode(raw) }
  }
}
