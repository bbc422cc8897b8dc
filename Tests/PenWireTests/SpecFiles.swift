import Foundation

/// Reads the committed Firmware-Specs files that the tests check the code against.
enum SpecFiles {
  static let root = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  static func json(_ relativePath: String) throws -> [String: Any] {
    let data = try Data(contentsOf: root.appendingPathComponent(relativePath))
    guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
      throw CocoaError(.fileReadCorruptFile)
    }
    return object
  }
}

extension Array where Element == UInt8 {
  init(hex: String) {
    var bytes: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
      let next = hex.index(index, offsetBy: 2)
      bytes.append(UInt8(hex[index..<next], radix: 16)!)
      index = next
    }
    self = bytes
  }

  var hex: String { map { String(format: "%02x", $0) }.joined() }
}
