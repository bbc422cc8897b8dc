import Foundation
import PenWire
import Testing

@Suite("Catalogue agreement")
struct CatalogueTests {
  let catalogue: [String: Any]

  init() throws { catalogue = try SpecFiles.json("Firmware-Specs/messages.json") }

  @Test("CRC-32C gives the check value framing.md states")
  func crcCheckValue() {
    let check = Array("123456789".utf8).withUnsafeBytes { CRC32C.checksum($0) }
    #expect(check == 0xE306_9283)
  }

  @Test(
    "the catalogue hash is the same from the compiled catalogue, the generated constant and messages.json"
  )
  func hashAgrees() throws {
    let recorded = try #require(catalogue["catalogue_hash"] as? String)
    #expect(recorded == String(format: "0x%08X", MessageCatalogue.hash))
    #expect(CatalogueHasher.compiledCatalogueHash() == MessageCatalogue.hash)
  }

  @Test("an independent reading of messages.json hashes to the compiled hash")
  func independentCanonicalText() throws {
    // A third implementation of framing.md's canonical text, straight from the JSON.
    var lines = ["pencontrol-catalogue protocol=\(catalogue["protocol_version"] as! Int)"]
    var enumTypes: [String: String] = [:]
    for e in catalogue["enums"] as! [[String: Any]] {
      enumTypes[e["name"] as! String] = e["type"] as? String
      lines.append("enum \(e["name"]!) \(e["type"]!)")
      for v in e["values"] as! [[String: Any]] {
        lines.append("value \(v["name"]!) \(v["value"]!)")
      }
    }
    for f in catalogue["flags"] as! [[String: Any]] {
      enumTypes[f["name"] as! String] = f["type"] as? String
      lines.append("flags \(f["name"]!) \(f["type"]!)")
      for b in f["bits"] as! [[String: Any]] { lines.append("bit \(b["name"]!) \(b["bit"]!)") }
    }
    let messages = (catalogue["messages"] as! [[String: Any]]).sorted {
      ($0["id"] as! Int) < ($1["id"] as! Int)
    }
    for m in messages {
      lines.append("message \(m["id"]!) \(m["name"]!) \(m["direction"]!) \(m["ack"]!)")
      for f in m["fields"] as! [[String: Any]] {
        let type = f["type"] as! String
        let ref = (f["enum"] ?? f["flags"]) as? String
        let wire = ref.flatMap { enumTypes[$0] } ?? type
        let scale = (f["scale"] as? Int) ?? 1
        func bound(_ key: String) -> String {
          guard let v = f[key] as? NSNumber else { return "-" }
          return String(Int64((v.doubleValue * Double(scale)).rounded()))
        }
        let refText = ref ?? (f["length"] as? Int).map(String.init) ?? "-"
        lines.append(
          "field \(f["name"]!) \(type) \(wire) \(f["unit"] as? String ?? "-") \(scale) \(bound("min")) \(bound("max")) \(refText)"
        )
      }
    }
    let text = lines.joined(separator: "\n") + "\n"
    let hash = Array(text.utf8).withUnsafeBytes { CRC32C.checksum($0) }
    #expect(hash == MessageCatalogue.hash)
  }

  @Test("every catalogue message has the id, name, direction and payload size of messages.json")
  func messageFacts() throws {
    let sizes = ["u8": 1, "u16": 2, "u32": 4, "u64": 8, "i16": 2, "i32": 4, "bool": 1]
    var enumSizes: [String: Int] = [:]
    for e in (catalogue["enums"] as! [[String: Any]]) + (catalogue["flags"] as! [[String: Any]]) {
      enumSizes[e["name"] as! String] = sizes[e["type"] as! String]
    }
    for m in catalogue["messages"] as! [[String: Any]] {
      let id = UInt16(m["id"] as! Int)
      var size = 0
      for f in m["fields"] as! [[String: Any]] {
        if let length = f["length"] as? Int {
          size += length
        } else if let ref = (f["enum"] ?? f["flags"]) as? String {
          size += enumSizes[ref]!
        } else {
          size += sizes[f["type"] as! String]!
        }
      }
      #expect(MessageCatalogue.payloadSize(id: id) == size, "\(m["name"]!)")
      #expect(MessageCatalogue.name(id: id).map { "\($0)" } == m["name"] as? String)
      let direction: MessageDirection =
        m["direction"] as? String == "host_to_pen" ? .hostToPen : .penToHost
      #expect(MessageCatalogue.direction(id: id) == direction)
    }
    #expect(MessageCatalogue.payloadSize(id: 0) == nil)
  }

  @Test("the inline value types keep the sizes the allocation-free design relies on")
  func valueTypeSizes() {
    #expect(MemoryLayout<FrameBuffer>.size == 256 + MemoryLayout<Int>.size)
    #expect(MemoryLayout<StreamDecoder>.size == 512 + 2 * MemoryLayout<Int>.size)
    #expect(MemoryLayout<FrameHeader>.size <= 16)
    // The largest payload struct bounds the message enum: no hidden boxes or indirection.
    #expect(MemoryLayout<Message>.size <= 128)
  }
}
