import Foundation

/// A JSON value with one canonical text form, for the JSON columns of the records store and the
/// `detail` of audit entries (Firmware-Specs/records.md section 3).
///
/// Canonical form: no whitespace; object keys sorted by their UTF-8 bytes; strings escape only
/// `"`, `\` and U+0000–U+001F (as `\"`, `\\`, `\n`, `\r`, `\t`, else `\u00xx` in lower-case hex);
/// integers in decimal; other numbers as Swift's shortest round-trip decimal. Non-finite numbers
/// have no JSON form: the store refuses them before they reach a record.
public enum RecordJSON: Sendable, Hashable {
  case null
  case bool(Bool)
  case int(Int64)
  case double(Double)
  case string(String)
  case array([RecordJSON])
  case object([String: RecordJSON])

  /// The canonical text.
  public var canonicalText: String {
    var out = ""
    write(to: &out)
    return out
  }

  /// Whether every number in the value is finite.
  public var isFinite: Bool {
    switch self {
    case .double(let value): value.isFinite
    case .array(let items): items.allSatisfy(\.isFinite)
    case .object(let members): members.values.allSatisfy(\.isFinite)
    case .null, .bool, .int, .string: true
    }
  }

  /// Parses JSON text (as stored in a record) back into a value.
  public init(parsing text: String) throws(RecordsError) {
    do {
      self = try JSONDecoder().decode(RecordJSON.self, from: Data(text.utf8))
    } catch {
      throw RecordsError(
        .corrupt, path: nil, "stored JSON does not parse (\(error)): \(text.prefix(80))")
    }
  }

  /// The value an `Encodable` encodes to, for callers that keep their own Codable types.
  public init(encoding value: some Encodable) throws(RecordsError) {
    let data: Data
    do {
      data = try JSONEncoder().encode(value)
    } catch {
      throw RecordsError(
        .invalidInput, path: nil, "cannot encode \(type(of: value)) as JSON: \(error)")
    }
    try self.init(parsing: String(decoding: data, as: UTF8.self))
  }

  private func write(to out: inout String) {
    switch self {
    case .null: out += "null"
    case .bool(let value): out += value ? "true" : "false"
    case .int(let value): out += String(value)
    case .double(let value):
      if let exact = Int64(exactly: value) {
        out += String(exact)
      } else {
        out += String(value)
      }
    case .string(let value): Self.writeString(value, to: &out)
    case .array(let items):
      out += "["
      for (index, item) in items.enumerated() {
        if index > 0 { out += "," }
        item.write(to: &out)
      }
      out += "]"
    case .object(let members):
      out += "{"
      let keys = members.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
      for (index, key) in keys.enumerated() {
        if index > 0 { out += "," }
        Self.writeString(key, to: &out)
        out += ":"
        members[key]!.write(to: &out)
      }
      out += "}"
    }
  }

  private static func writeString(_ value: String, to out: inout String) {
    out += "\""
    for scalar in value.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case let control where control.value < 0x20:
        let hex = String(control.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: out.unicodeScalars.append(scalar)
      }
    }
    out += "\""
  }
}

extension RecordJSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
  ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral,
  ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
  public init(stringLiteral value: String) { self = .string(value) }
  public init(integerLiteral value: Int64) { self = .int(value) }
  public init(floatLiteral value: Double) { self = .double(value) }
  public init(booleanLiteral value: Bool) { self = .bool(value) }
  public init(arrayLiteral elements: RecordJSON...) { self = .array(elements) }
  public init(dictionaryLiteral elements: (String, RecordJSON)...) {
    self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
  }
  public init(nilLiteral: ()) { self = .null }
}

extension RecordJSON: Codable {
  public init(from decoder: any Decoder) throws {
    let container = try decoder.singleValueContainer()
    if container.decodeNil() {
      self = .null
    } else if let value = try? container.decode(Bool.self) {
      self = .bool(value)
    } else if let value = try? container.decode(Int64.self) {
      self = .int(value)
    } else if let value = try? container.decode(Double.self) {
      self = .double(value)
    } else if let value = try? container.decode(String.self) {
      self = .string(value)
    } else if let value = try? container.decode([RecordJSON].self) {
      self = .array(value)
    } else {
      self = .object(try container.decode([String: RecordJSON].self))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    switch self {
    case .null: try container.encodeNil()
    case .bool(let value): try container.encode(value)
    case .int(let value): try container.encode(value)
    case .double(let value): try container.encode(value)
    case .string(let value): try container.encode(value)
    case .array(let value): try container.encode(value)
    case .object(let value): try container.encode(value)
    }
  }
}
