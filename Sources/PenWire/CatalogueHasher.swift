/// Computes the catalogue hash: CRC-32C over the canonical text of the catalogue, one line per
/// enum, value, flag set, bit, message and field (framing.md, 'Catalogue hash').
///
/// Like MAVLink's CRC_EXTRA, it lets a host and a pen find out at the handshake whether they were
/// built from the same catalogue. `MessageCatalogue.describe(into:)` feeds it from the compiled
/// catalogue; scripts/wirespec.py builds the same text from messages.json.
@frozen public struct CatalogueHasher: Sendable {
  @usableFromInline var crc = CRC32C()

  public init() {}

  /// The hash of everything described so far.
  public var value: UInt32 { crc.value }

  /// The hash of the catalogue compiled into this build.
  public static func compiledCatalogueHash() -> UInt32 {
    var hasher = CatalogueHasher()
    MessageCatalogue.describe(into: &hasher)
    return hasher.value
  }

  mutating func text(_ s: StaticString) {
    crc.update(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
  }

  mutating func space() { crc.update(0x20) }
  mutating func newline() { crc.update(0x0A) }

  mutating func number(_ n: Int64) {
    var digits: InlineArray<20, UInt8> = InlineArray(repeating: 0)
    var magnitude = n.magnitude
    var count = 0
    repeat {
      digits[count] = UInt8(truncatingIfNeeded: magnitude % 10) + 0x30
      magnitude /= 10
      count += 1
    } while magnitude > 0
    if n < 0 { crc.update(0x2D) }
    while count > 0 {
      count -= 1
      crc.update(digits[count])
    }
  }

  public mutating func header(protocol version: Int64) {
    text("pencontrol-catalogue protocol=")
    number(version)
    newline()
  }

  public mutating func enumeration(_ name: StaticString, type: StaticString) {
    text("enum ")
    text(name)
    space()
    text(type)
    newline()
  }

  public mutating func value(_ name: StaticString, _ value: Int64) {
    text("value ")
    text(name)
    space()
    number(value)
    newline()
  }

  public mutating func flags(_ name: StaticString, type: StaticString) {
    text("flags ")
    text(name)
    space()
    text(type)
    newline()
  }

  public mutating func bit(_ name: StaticString, _ bit: Int64) {
    text("bit ")
    text(name)
    space()
    number(bit)
    newline()
  }

  public mutating func message(
    _ id: Int64, _ name: StaticString, direction: StaticString, ack: StaticString
  ) {
    text("message ")
    number(id)
    space()
    text(name)
    space()
    text(direction)
    space()
    text(ack)
    newline()
  }

  public mutating func field(
    _ name: StaticString, type: StaticString, wire: StaticString, unit: StaticString,
    scale: Int64, min: Int64?, max: Int64?, ref: StaticString
  ) {
    text("field ")
    text(name)
    space()
    text(type)
    space()
    text(wire)
    space()
    text(unit)
    space()
    number(scale)
    space()
    bound(min)
    space()
    bound(max)
    space()
    text(ref)
    newline()
  }

  mutating func bound(_ value: Int64?) {
    if let value { number(value) } else { text("-") }
  }
}
