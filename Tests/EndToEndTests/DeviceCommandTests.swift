import Foundation
import Testing

@Suite("penctl devices and info")
struct DeviceCommandTests {
  @Test("devices --sim --json lists the simulated pen; real pens (none here) are not an error")
  func devices() throws {
    let result = try PenCtlProcess.run(["devices", "--sim", "--sim-seed", "42", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let doc = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
    let pens = doc["pens"] as! [[String: Any]]
    let simulated = pens.filter { $0["kind"] as? String == "simulated" }
    #expect(simulated.count == 1)
    #expect(simulated.first?["serial"] as? String == "SIM-RF200-000042")
    #expect(simulated.first?["vendor_id"] as? String == "0x1209")
  }

  @Test("info --sim reports what the simulated pen says at the handshake")
  func info() throws {
    let result = try PenCtlProcess.run([
      "info", "--sim", "--sim-model", "mn100", "--sim-seed", "7", "--json",
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let doc = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
    #expect(doc["serial"] as? String == "SIM-MN100-000007")
    #expect(doc["model"] as? String == "mn100")
    #expect(doc["rf"] == nil)
    #expect((doc["depth_mm"] as? [String: Any])?["max"] as? Double == 2.5)
    #expect((doc["capabilities"] as? [String])?.contains("needling") == true)
  }

  @Test("info without a serial or --sim is a usage error; an unknown model is too")
  func usage() throws {
    #expect(try PenCtlProcess.run(["info"]).status == 64)
    let bad = try PenCtlProcess.run(["info", "--sim", "--sim-model", "xx900"])
    #expect(bad.status == 64)
    #expect(bad.stderr.contains("mn100 and rf200"))
  }

  @Test("info for a serial that is not on USB says so and exits with the device code")
  func missingPen() throws {
    let result = try PenCtlProcess.run(["info", "NOPE-000"])
    #expect(result.status == 67)
    #expect(result.stderr.contains("no pen with serial NOPE-000"))
  }
}
