/// What the stream decoder found in the bytes it was given.
public enum StreamEvent: Equatable, Sendable {
  /// A good frame.
  case frame(Frame)
  /// A frame with a good CRC whose content is refused (unknown id, unsupported version, bad
  /// length, a field out of range): the receiver answers a command like this with a nack.
  case rejected(FrameHeader, WireError)
  /// Bytes dropped while looking for the next frame, and why the first of them was not one.
  case discarded(byteCount: Int, reason: WireError)
}

/// Finds frames in a byte stream that may be split anywhere, corrupted or interleaved with
/// garbage, and resynchronises without losing the next good frame (framing.md, 'Resynchronising').
///
/// On a bad magic, a declared length above the maximum or a CRC mismatch, the decoder drops one
/// byte and searches again from the next magic byte: a good frame that began inside a false one is
/// still found. Storage is inline; nothing is allocated.
@frozen public struct StreamDecoder: Sendable {
  /// Bytes of room: two of the largest frames, so a false header never hides a whole good frame.
  public static let capacity = 512
  @usableFromInline var storage: InlineArray<512, UInt8>
  @usableFromInline var start: Int
  @usableFromInline var end: Int

  @inlinable public init() {
    storage = InlineArray(repeating: 0)
    start = 0
    end = 0
  }

  /// Bytes held and not yet part of a reported event.
  @inlinable public var buffered: Int { end - start }

  /// Forgets every buffered byte (after a transport reset).
  @inlinable public mutating func reset() {
    start = 0
    end = 0
  }

  /// Takes as many bytes as there is room for and returns how many it took. Call `next()` until it
  /// returns nil before appending more.
  @inlinable public mutating func append(_ bytes: UnsafeRawBufferPointer) -> Int {
    let held = end - start
    if start > 0 && Self.capacity - end < bytes.count {
      let from = start
      withUnsafeMutableBytes(of: &storage) { raw in
        let base = raw.baseAddress!
        base.copyMemory(from: base + from, byteCount: held)
      }
      start = 0
      end = held
    }
    let taken = min(bytes.count, Self.capacity - end)
    if taken > 0 {
      let at = end
      withUnsafeMutableBytes(of: &storage) { raw in
        (raw.baseAddress! + at).copyMemory(from: bytes.baseAddress!, byteCount: taken)
      }
      end += taken
    }
    return taken
  }

  /// The next event from the buffered bytes, or nil when more bytes are needed.
  @inlinable public mutating func next() -> StreamEvent? {
    guard end > start else { return nil }
    let (event, consumed) = withUnsafeBytes(of: storage) { raw in
      Self.scan(UnsafeRawBufferPointer(rebasing: raw[start..<end]))
    }
    start += consumed
    if start == end {
      start = 0
      end = 0
    }
    return event
  }

  /// Feeds bytes through the decoder and hands every event to `handle`, in order.
  @inlinable public mutating func feed(
    _ bytes: UnsafeRawBufferPointer, _ handle: (StreamEvent) -> Void
  ) {
    var offset = 0
    while offset < bytes.count {
      offset += append(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
      while let event = next() { handle(event) }
    }
  }

  /// Looks at the front of the buffered bytes: returns an event and the bytes it accounts for,
  /// or (nil, 0) when the front could still become a frame with more bytes.
  @inlinable static func scan(_ view: UnsafeRawBufferPointer) -> (StreamEvent?, Int) {
    if view[0] != FrameLayout.magic.0 {
      var skip = 1
      while skip < view.count && view[skip] != FrameLayout.magic.0 { skip += 1 }
      return (.discarded(byteCount: skip, reason: .badMagic(UInt16(view[0]) &<< 8)), skip)
    }
    let header: FrameHeader
    do {
      header = try FrameCodec.locate(view)
    } catch {
      if case .truncated = error { return (nil, 0) }
      return (.discarded(byteCount: 1, reason: error), 1)
    }
    let size = FrameCodec.frameSize(header)
    guard view.count >= size else { return (nil, 0) }
    let frame = UnsafeRawBufferPointer(rebasing: view[0..<size])
    do {
      try FrameCodec.verifyCRC(frame)
    } catch {
      return (.discarded(byteCount: 1, reason: error), 1)
    }
    do {
      return (
        .frame(Frame(header: header, message: try FrameCodec.decodeVerified(header, frame))), size
      )
    } catch {
      return (.rejected(header, error), size)
    }
  }
}
