// libFuzzer target for PenWire's frame decoders: FrameCodec.decode and StreamDecoder.
//
// Input layout: byte 0 selects the mode, the rest is the frame or stream.
//   Mode A (byte 0 even): the rest as-is, to FrameCodec.decode and to a StreamDecoder fed in two
//     pieces split at a data-dependent point.
//   Mode B (byte 0 odd, "CRC fix-up"): the rest is treated as one frame; when it has at least 14
//     bytes its payload-length field (bytes 8-9, little-endian) is set to count - 14 (when that is
//     at most 240) and the CRC-32C over bytes 0..<count-4 is written into the last 4 bytes, so
//     mutations get past framing into field decoding. Then the same checks as mode A.
//
// Invariants (a violation calls fatalError, which libFuzzer reports as a crash):
//   1. A frame that FrameCodec.decode accepts re-encodes, with its own sequence and flags, to
//      exactly the same bytes.
//   2. A StreamDecoder fed the same bytes reports exactly that frame, and nothing else.
//   3. The stream decoder never accounts for more bytes than it was given; the bytes it accounts
//      for plus the bytes it still holds are exactly the bytes it was given.
//   4. Every frame the stream decoder reports is what FrameCodec.decode makes of the bytes it
//      covers (so invariant 1 holds for it too), and every rejected frame fails FrameCodec.decode
//      with the same error.
//
// Build and run with scripts/fuzz.sh (swift build --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address).

import PenWire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrameDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  guard let data, size >= 1 else { return 0 }
  let mode = data[0]
  let rest = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
  if mode & 1 == 0 {
    checkBytes(rest, mode: mode)
  } else {
    // A stack copy: no heap allocation per input keeps the fuzzer fast under AddressSanitizer.
    withUnsafeTemporaryAllocation(byteCount: rest.count, alignment: 1) { frame in
      frame.copyMemory(from: rest)
      fixUpLengthAndCRC(frame)
      checkBytes(UnsafeRawBufferPointer(frame), mode: mode)
    }
  }
  return 0
}

/// Mode B: makes the declared payload length and the CRC agree with the bytes.
func fixUpLengthAndCRC(_ bytes: UnsafeMutableRawBufferPointer) {
  let overhead = FrameLayout.headerSize + FrameLayout.crcSize
  let count = bytes.count
  guard count >= overhead else { return }
  let payload = count - overhead
  if payload <= FrameLayout.maxPayload {
    bytes[8] = UInt8(truncatingIfNeeded: payload)
    bytes[9] = UInt8(truncatingIfNeeded: payload >> 8)
  }
  let covered = count - FrameLayout.crcSize
  let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<covered]))
  for i in 0..<4 { bytes[covered + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
}

/// The checks common to both modes.
func checkBytes(_ bytes: UnsafeRawBufferPointer, mode: UInt8) {
  let decoded: Frame?
  do {
    let frame = try FrameCodec.decode(bytes)
    checkReencodes(frame, to: bytes, context: "FrameCodec.decode")
    decoded = frame
  } catch {
    decoded = nil
  }

  // Split at a point that depends on the input, so the fuzzer controls where a frame is cut.
  let split =
    bytes.isEmpty ? 0 : (Int(mode >> 1) | Int(bytes[bytes.count - 1]) << 7) % (bytes.count + 1)
  let (first, eventCount) = feedStream(bytes, split: split)

  if let decoded {
    invariant(
      eventCount == 1 && first == .frame(decoded),
      "StreamDecoder does not report the frame FrameCodec.decode accepts: \(decoded); "
        + "first of \(eventCount) events: \(String(describing: first))",
      bytes)
  }
}

/// Feeds `bytes` through a fresh StreamDecoder in two pieces and checks its accounting and every
/// event against FrameCodec.decode of the bytes the event covers. Returns the first event and the
/// number of events.
func feedStream(_ bytes: UnsafeRawBufferPointer, split: Int) -> (StreamEvent?, Int) {
  var decoder = StreamDecoder()
  var first: StreamEvent? = nil
  var eventCount = 0
  var accounted = 0
  var given = 0
  for piece in (0..<2).lazy.map({ $0 == 0 ? 0..<split : split..<bytes.count }) {
    given += piece.count
    decoder.feed(UnsafeRawBufferPointer(rebasing: bytes[piece])) { event in
      if eventCount == 0 { first = event }
      eventCount += 1
      let start = accounted
      let covered: Int
      switch event {
      case .frame(let frame):
        covered = frameSize(frame.header)
      case .rejected(let header, _):
        covered = frameSize(header)
      case .discarded(let byteCount, _):
        invariant(byteCount > 0, "StreamDecoder discarded \(byteCount) bytes: \(event)", bytes)
        covered = byteCount
      }
      accounted += covered
      invariant(
        accounted <= given,
        "StreamDecoder accounted for \(accounted) bytes of \(given) given: \(event)", bytes)
      let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<accounted])
      switch event {
      case .frame(let frame):
        do {
          let again = try FrameCodec.decode(slice)
          invariant(
            again == frame,
            "StreamDecoder frame \(frame) differs from FrameCodec.decode of its bytes: \(again)",
            bytes)
        } catch {
          invariant(
            false,
            "StreamDecoder reported \(frame) but FrameCodec.decode of its bytes throws \(error)",
            bytes)
        }
        checkReencodes(frame, to: slice, context: "StreamDecoder")
      case .rejected(let header, let reason):
        do throws(WireError) {
          let frame = try FrameCodec.decode(slice)
          invariant(
            false,
            "StreamDecoder rejected \(header) (\(reason)) but FrameCodec.decode gives \(frame)",
            bytes)
        } catch {
          invariant(
            error == reason,
            "StreamDecoder rejected \(header) with \(reason), FrameCodec.decode with \(error)",
            bytes)
        }
      case .discarded:
        break
      }
    }
    invariant(
      accounted + decoder.buffered == given,
      "StreamDecoder accounted for \(accounted) bytes and holds \(decoder.buffered) of \(given) given",
      bytes)
  }
  return (first, eventCount)
}

/// Invariant 1: re-encoding a decoded frame gives back exactly its bytes.
func checkReencodes(_ frame: Frame, to bytes: UnsafeRawBufferPointer, context: StaticString) {
  var buffer = FrameBuffer()
  do {
    try FrameCodec.encode(
      frame.message, sequence: frame.header.sequence, flags: frame.header.flags, into: &buffer)
  } catch {
    invariant(false, "\(context) accepted \(frame) but it does not re-encode: \(error)", bytes)
  }
  let same = buffer.withUnsafeBytes { encoded in
    encoded.count == bytes.count && zip(encoded, bytes).allSatisfy { $0 == $1 }
  }
  invariant(
    same, "\(context) accepted \(frame) but it re-encodes to \(hex(buffer.bytes))", bytes)
}

func frameSize(_ header: FrameHeader) -> Int {
  FrameLayout.headerSize + Int(header.payloadLength) + FrameLayout.crcSize
}

/// fatalError, which prints its message in release builds too (precondition's is dropped there).
func invariant(
  _ condition: Bool, _ message: @autoclosure () -> String, _ input: UnsafeRawBufferPointer
) {
  if !condition {
    fatalError(
      "invariant violated: \(message())\n"
        + "  bytes checked (after the mode byte and any fix-up): \(hex(Array(input)))")
  }
}

func hex(_ bytes: [UInt8]) -> String {
  let digits = Array("0123456789abcdef")
  var s = ""
  for b in bytes {
    s.append(digits[Int(b >> 4)])
    s.append(digits[Int(b & 15)])
  }
  return s
}
