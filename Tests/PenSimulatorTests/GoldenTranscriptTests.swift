import Foundation
import PenSimulator
import PenSimulatorTestKit
import PenWire
import Testing

/// A short scripted treatment whose frames, with their virtual timestamps, must match a committed
/// transcript byte for byte. A change to the protocol, the firmware's timing or the physics shows up
/// here first. To accept an intended change: PENCONTROL_UPDATE_GOLDEN=1 swift test --filter Golden
@Suite("Golden transcript")
struct GoldenTranscriptTests {
  static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Golden/short-treatment.transcript")

  @Test("a short RF treatment produces exactly the committed frames")
  func shortTreatment() throws {
    let host = try armedRFPen(seed: 2026, transcript: true)
    try host.command(.start(Start()))
    try host.run(for: .milliseconds(600))
    try host.command(.pause(Pause()))
    try host.command(.stop(Stop()))
    try host.command(.disarm(Disarm()))
    let text = host.pen!.with { $0.transcript!.text }
    if ProcessInfo.processInfo.environment["PENCONTROL_UPDATE_GOLDEN"] == "1" {
      try text.write(to: Self.file, atomically: true, encoding: .utf8)
    }
    let golden = try String(contentsOf: Self.file, encoding: .utf8)
    let got = text.split(separator: "\n")
    let want = golden.split(separator: "\n")
    #expect(got.count == want.count, "\(got.count) frames where the transcript has \(want.count)")
    if let first = zip(got, want).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
      Issue.record(
        "first difference at line \(first.offset + 1):\n got  \(first.element.0)\n want \(first.element.1)"
      )
    }
    // It is a real treatment: RF pulses went out and the pen reported them.
    #expect(golden.contains("P>H* telemetry"))
    #expect(golden.contains("H>P start"))
  }
}
