import Foundation
import PenWire
import Testing

/// Every golden frame of Firmware-Specs/vectors/frames.json, decoded and encoded.
///
/// The vectors come from scripts/wirespec.py's own Python encoder, which shares no code with
/// PenWire, so agreement here means two implementations read the catalogue the same way.
@Suite("Golden vectors")
struct GoldenVectorTests {
  struct Vector: Sendable, CustomTestStringConvertible {
    let name: String
    let message: String
    let sequence: UInt16
    let flags: UInt8
    let bytes: [UInt8]
    let fields: [String: RawField]
    let values: [String: Double]
    var testDescription: String { name }
  }

  struct Malformed: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let error: String
    let message: String?
    let field: String?
    let raw: Int64?
    var testDescription: String { name }
  }

  nonisolated(unsafe) static let document: [String: Any] =
    (try? SpecFiles.json("Firmware-Specs/vectors/frames.json")) ?? [:]

  static let valid: [Vector] = (document["valid"] as? [[String: Any]] ?? []).map { v in
    var fields: [String: RawField] = [:]
    var values: [String: Double] = [:]
    for (name, entry) in v["fields"] as? [String: [String: Any]] ?? [:] {
      if let raw = entry["raw"] as? NSNumber {
        fields[name] = .integer(raw.int64Value)
      } else if let hex = entry["hex"] as? String {
        fields[name] = .bytes([UInt8](hex: hex))
      }
      if let value = entry["value"] as? NSNumber { values[name] = value.doubleValue }
    }
    return Vector(
      name: v["name"] as! String, message: v["message"] as! String,
      sequence: UInt16((v["sequence"] as! NSNumber).intValue),
      flags: UInt8((v["flags"] as! NSNumber).intValue), bytes: [UInt8](hex: v["hex"] as! String),
      fields: fields, values: values)
  }

  static let malformed: [Malformed] = (document["malformed"] as? [[String: Any]] ?? []).map { v in
    Malformed(
      name: v["name"] as! String, bytes: [UInt8](hex: v["hex"] as! String),
      error: v["error"] as! String, message: v["message"] as? String, field: v["field"] as? String,
      raw: (v["raw"] as? NSNumber)?.int64Value)
  }

  @Test("the vector file covers every catalogue message, typical and at its upper bounds")
  func coversEveryMessage() throws {
    let catalogue = try SpecFiles.json("Firmware-Specs/messages.json")
    let names = Set((catalogue["messages"] as! [[String: Any]]).map { $0["name"] as! String })
    #expect(Set(Self.valid.map(\.message)) == names)
    #expect(Self.valid.count >= names.count)
    #expect(Self.malformed.count >= 10)
  }

  @Test(
    "decoding each golden frame gives the header and field values the vector states",
    arguments: valid)
  func decodesToStatedValues(_ vector: Vector) throws {
    let frame = try FrameCodec.decode(vector.bytes)
    #expect(frame.header.sequence == vector.sequence)
    #expect(frame.header.flags.rawValue == vector.flags)
    #expect(frame.header.version == 1)
    #expect(MessageCatalogue.name(id: frame.message.id).map { "\($0)" } == vector.message)
    #expect(frame.message.rawFields == vector.fields)
    // Unit-typed properties hold raw / scale exactly as the vector's decoded value.
    for child in Mirror(reflecting: frame.message).children {
      for field in Mirror(reflecting: child.value).children {
        guard let label = field.label, let quantity = field.value as? any PhysicalQuantity else {
          continue
        }
        let snake = label.replacing(/[A-Z]/) { "_" + $0.output.lowercased() }
        #expect(vector.values[snake] == quantity.value, "\(vector.name).\(snake)")
      }
    }
  }

  @Test("encoding each golden frame's values gives its bytes exactly", arguments: valid)
  func encodesToStatedBytes(_ vector: Vector) throws {
    let message = try Message(name: vector.message, rawFields: vector.fields)
    let bytes = try FrameCodec.encode(
      message, sequence: vector.sequence, flags: FrameFlags(rawValue: vector.flags))
    #expect(bytes.hex == vector.bytes.hex)
  }

  @Test("each malformed frame is refused with the error the vector names", arguments: malformed)
  func refusesMalformed(_ vector: Malformed) {
    #expect {
      _ = try FrameCodec.decode(vector.bytes)
    } throws: { error in
      guard let error = error as? WireError else { return false }
      guard "\(error.kind)" == vector.error else { return false }
      if case .fieldOutOfRange(let field, let raw) = error {
        return MessageCatalogue.name(id: field.message).map { "\($0)" } == vector.message
          && MessageCatalogue.fieldName(field).map { "\($0)" } == vector.field
          && raw == vector.raw
      }
      return true
    }
  }

  @Test("a one-bit flip anywhere in any golden frame is detected")
  func everySingleBitFlipIsDetected() {
    var flips = 0
    for vector in Self.valid {
      for bit in 0..<(vector.bytes.count * 8) {
        var corrupted = vector.bytes
        corrupted[bit / 8] ^= 1 << (bit % 8)
        #expect(throws: WireError.self, "\(vector.name) bit \(bit)") {
          _ = try FrameCodec.decode(corrupted)
        }
        flips += 1
      }
    }
    #expect(flips > 10_000)
  }

  @Test("every strict prefix of every golden frame is reported as truncated")
  func everyPrefixIsTruncated() {
    for vector in Self.valid {
      for length in 0..<vector.bytes.count {
        #expect {
          _ = try FrameCodec.decode(Array(vector.bytes[0..<length]))
        } throws: { error in
          guard case .truncated(let have, _) = error as? WireError else { return false }
          return have == length
        }
      }
    }
  }
}
