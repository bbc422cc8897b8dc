import Crypto
import Foundation

/// The audit hash chain's canonical encoding (Firmware-Specs/records.md section 4.2).
///
/// `hash = SHA-256("PCAUDIT1" ‖ u64be(id) ‖ f(at) ‖ f(actor) ‖ f(action) ‖ f(subject) ‖ f(detail)
/// ‖ f(prev_hash))`, where `f(s) = u32be(byte count of UTF-8 s) ‖ UTF-8 s`, and the result is
/// written as 64 lower-case hex digits. Length prefixes make the encoding unambiguous: no two
/// different entries encode to the same bytes.
enum AuditChain {
  /// The `prev_hash` of the first entry: 32 zero bytes in hex.
  static let genesis = String(repeating: "0", count: 64)
  static let domain = Array("PCAUDIT1".utf8)

  /// The exact bytes hashed for one entry.
  static func encoding(
    id: Int64, at: String, actor: String, action: String, subject: String, detail: String,
    prevHash: String
  ) -> [UInt8] {
    var bytes = domain
    withUnsafeBytes(of: UInt64(bitPattern: id).bigEndian) { bytes.append(contentsOf: $0) }
    for field in [at, actor, action, subject, detail, prevHash] {
      let utf8 = Array(field.utf8)
      withUnsafeBytes(of: UInt32(utf8.count).bigEndian) { bytes.append(contentsOf: $0) }
      bytes.append(contentsOf: utf8)
    }
    return bytes
  }

  static func hash(
    id: Int64, at: String, actor: String, action: String, subject: String, detail: String,
    prevHash: String
  ) -> String {
    hex(
      SHA256.hash(
        data: encoding(
          id: id, at: at, actor: actor, action: action, subject: subject, detail: detail,
          prevHash: prevHash)))
  }

  static func hex(_ digest: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in digest {
      out.append(digits[Int(byte >> 4)])
      out.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
  }
}
