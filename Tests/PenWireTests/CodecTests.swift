import PenWire
import Testing

@Suite("Frame codec")
struct CodecTests {
  static let telemetry = Telemetry(
    timestamp: Microseconds(12_345_678), state: .treating, fault: .none,
    flags: PenFlags.skinContact.union(.needlesDriving).union(.rfEnabled),
    depth: Millimetres(0.75), speed: Hertz(2.5), rfPower: Watts(31.2),
    pulseEnergyPerPin: Millijoules(24.5), impedance: Ohms(310), tissueTemperature: Celsius(37.25),
    handpieceTemperature: Celsius(29.5), rfDelivered: Millijoules(12_000),
    rfRemaining: Millijoules(68_000), pulseCount: 42)

  @Test("a message survives encode and decode unchanged")
  func roundTrip() throws {
    var buffer = FrameBuffer()
    try FrameCodec.encode(Self.telemetry, sequence: 7, into: &buffer)
    #expect(buffer.count == 10 + Telemetry.payloadSize + 4)
    let frame = try FrameCodec.decode(buffer)
    #expect(frame.message == .telemetry(Self.telemetry))
    #expect(frame.header.sequence == 7)
    #expect(frame.header.messageID == Telemetry.id)
  }

  @Test(
    "encoding a value above the catalogue maximum is refused, naming the field and the raw value")
  func encodeOutOfRange() {
    let tooDeep = SetParameters(
      depth: Millimetres(4.5), speed: Hertz(100), rfEnergyPerPin: .zero,
      rfPulseDuration: Milliseconds(0))
    var buffer = FrameBuffer()
    #expect(
      throws: WireError.fieldOutOfRange(FieldRef(message: SetParameters.id, index: 0), raw: 4500)
    ) {
      try FrameCodec.encode(tooDeep, sequence: 1, into: &buffer)
    }
    #expect(buffer.count == 0, "nothing half-written is left in the buffer")
    let description =
      "\(WireError.fieldOutOfRange(FieldRef(message: SetParameters.id, index: 0), raw: 4500))"
    #expect(description.contains("set_parameters.depth"))
    #expect(description.contains("4500"))
  }

  @Test("encoding NaN, infinity or a negative depth is refused")
  func encodeNotANumber() {
    for depth in [Double.nan, .infinity, -.infinity, -0.001] {
      let bad = SetParameters(
        depth: Millimetres(depth), speed: Hertz(100), rfEnergyPerPin: .zero,
        rfPulseDuration: Milliseconds(0))
      var buffer = FrameBuffer()
      #expect(throws: WireError.self, "depth \(depth)") {
        try FrameCodec.encode(bad, sequence: 1, into: &buffer)
      }
    }
  }

  @Test("reserved flag bits cannot be encoded")
  func reservedFlagsRefused() {
    var buffer = FrameBuffer()
    #expect(throws: WireError.reservedFlags(0x08)) {
      try FrameCodec.encode(
        GetStatus(), sequence: 1, flags: FrameFlags(rawValue: 0x08), into: &buffer)
    }
  }

  @Test("fixed-point values round to the nearest wire step")
  func fixedPointRounding() throws {
    var t = Self.telemetry
    t.depth = Millimetres(0.7504)
    var buffer = FrameBuffer()
    try FrameCodec.encode(t, sequence: 1, into: &buffer)
    guard case .telemetry(let decoded) = try FrameCodec.decode(buffer).message else {
      Issue.record("not telemetry")
      return
    }
    #expect(decoded.depth == Millimetres(0.75))
  }

  @Test("serial numbers must be printable ASCII that fits the field")
  func asciiFields() {
    #expect(FixedASCII<16>("PC-MN100-000123") != nil)
    #expect(FixedASCII<16>("PC-MN100-0001234567") == nil)
    #expect(FixedASCII<16>(string: "PC\u{1}") == nil)
    #expect(FixedASCII<16>(string: "PC-RF200-7")?.description == "PC-RF200-7")
  }
}

@Suite("Stream decoder")
struct StreamDecoderTests {
  static func frames(_ count: Int) throws -> [[UInt8]] {
    try (0..<count).map { i in
      var t = CodecTests.telemetry
      t.pulseCount = UInt32(i)
      t.timestamp = Microseconds(UInt64(i) * 10_000)
      return try FrameCodec.encode(.telemetry(t), sequence: UInt16(i))
    }
  }

  static func decodedSequences(_ events: [StreamEvent]) -> [UInt16] {
    events.compactMap { if case .frame(let f) = $0 { f.header.sequence } else { nil } }
  }

  @Test("frames split at every possible byte boundary are all found")
  func splitAnywhere() throws {
    let frames = try Self.frames(3)
    let stream = frames.flatMap { $0 }
    for cut in 0...stream.count {
      var decoder = StreamDecoder()
      let events = decoder.feed(Array(stream[0..<cut])) + decoder.feed(Array(stream[cut...]))
      #expect(Self.decodedSequences(events) == [0, 1, 2], "cut at \(cut)")
      #expect(decoder.buffered == 0)
    }
  }

  @Test("garbage before, between and after frames is discarded and every good frame is kept")
  func garbageInterleaved() throws {
    let frames = try Self.frames(20)
    var generator = SplitMix(seed: 0x5EED)
    var stream: [UInt8] = []
    for frame in frames {
      let noise = Int(generator.next() % 40)
      for _ in 0..<noise { stream.append(UInt8(truncatingIfNeeded: generator.next())) }
      stream += frame
    }
    var decoder = StreamDecoder()
    var events: [StreamEvent] = []
    var offset = 0
    while offset < stream.count {
      let chunk = 1 + Int(generator.next() % 64)
      events += decoder.feed(Array(stream[offset..<min(stream.count, offset + chunk)]))
      offset += chunk
    }
    #expect(Self.decodedSequences(events) == Array(0..<20))
  }

  @Test("a false header claiming a long payload does not swallow the good frame after it")
  func falseHeaderDoesNotHideNextFrame() throws {
    let good = try Self.frames(1)[0]
    // "PC", version 1, no flags, seq, id 70, declared length 200: a plausible header whose body
    // never arrives; the good frame's bytes follow immediately.
    let fake: [UInt8] = [0x50, 0x43, 0x01, 0x00, 0x09, 0x00, 0x46, 0x00, 0xC8, 0x00]
    var decoder = StreamDecoder()
    var events = decoder.feed(fake + good)
    // The decoder waits for the fake frame's 214 bytes; padding completes it, its CRC fails,
    // and the search restarts inside it, where the good frame is.
    events += decoder.feed([UInt8](repeating: 0xAA, count: 214))
    #expect(Self.decodedSequences(events) == [0])
    #expect(events.contains { if case .discarded(_, .crcMismatch) = $0 { true } else { false } })
  }

  @Test("a frame with a good CRC but an unknown id is reported as rejected, for a nack")
  func rejectedFrame() throws {
    var bytes: [UInt8] = [0x50, 0x43, 0x01, 0x01, 0x05, 0x00, 0x3F, 0x00, 0x00, 0x00]
    let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
    withUnsafeBytes(of: crc.littleEndian) { bytes += $0 }
    let good = try Self.frames(1)[0]
    var decoder = StreamDecoder()
    let events = decoder.feed(bytes + good)
    #expect(events.count == 2)
    guard case .rejected(let header, .unknownMessage(id: 0x3F)) = events.first else {
      Issue.record("expected a rejected frame, got \(events)")
      return
    }
    #expect(header.sequence == 5)
    #expect(Self.decodedSequences(events) == [0])
  }

  @Test("a corrupted frame is discarded and the next one decodes")
  func corruptedThenGood() throws {
    var frames = try Self.frames(2)
    frames[0][20] ^= 0x10
    var decoder = StreamDecoder()
    let events = decoder.feed(frames[0] + frames[1])
    #expect(Self.decodedSequences(events) == [1])
  }
}

/// A small deterministic generator so stream tests are the same on every run.
struct SplitMix {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
