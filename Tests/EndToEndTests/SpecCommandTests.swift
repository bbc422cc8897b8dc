import Foundation
import Synchronization
import Testing

/// Runs the real penctl binary, as a user or a script would.
enum PenCtlProcess {
  static let root = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// The penctl built with the tests: beside the test bundle in the build directory.
  static var binary: URL {
    if let path = ProcessInfo.processInfo.environment["PENCTL_BINARY"] {
      return URL(fileURLWithPath: path)
    }
    let candidates =
      [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
      + [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
    for dir in candidates {
      let url = dir.appendingPathComponent("penctl")
      if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    return candidates[0].appendingPathComponent("penctl")
  }

  struct Result {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  static func run(_ arguments: [String], cwd: URL = root) throws -> Result {
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    process.currentDirectoryURL = cwd
    var environment = ProcessInfo.processInfo.environment
    environment["PENCONTROL_SPECS"] = nil
    process.environment = environment
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Standard error is read on its own thread: read one pipe to its end before the other, and a
    // penctl that fills the other (64 KiB) blocks for good, and so does the test.
    let errorOutput = Mutex(Data())
    let errorRead = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
      let data = err.fileHandleForReading.readDataToEndOfFile()
      errorOutput.withLock { $0 = data }
      errorRead.signal()
    }
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    errorRead.wait()
    let stderr = errorOutput.withLock { $0 }
    process.waitUntilExit()
    return Result(
      status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
      stderr: String(decoding: stderr, as: UTF8.self))
  }
}

@Suite("penctl spec")
struct SpecCommandTests {
  @Test("penctl spec validates Firmware-Specs and prints both tables")
  func printsTables() throws {
    let result = try PenCtlProcess.run(["spec"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.contains("valid"))
    #expect(result.stdout.contains("rf200"))
    #expect(result.stdout.contains("periorbital"))
  }

  @Test("penctl spec --json gives stable fields a script can read")
  func jsonOutput() throws {
    let result = try PenCtlProcess.run(["spec", "--json"])
    #expect(result.status == 0)
    let doc = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
    #expect(doc["valid"] as? Bool == true)
    #expect((doc["areas"] as? [[String: Any]])?.count == 12)
    #expect((doc["catalogue_hash"] as? String)?.hasPrefix("0x") == true)
    let forehead = (doc["areas"] as! [[String: Any]]).first { $0["id"] as? String == "forehead" }
    #expect(forehead?["max_depth_mm"] as? Double == 0.75)
  }

  @Test("a broken spec directory exits with the bad-input code and says what is wrong")
  func brokenSpecs() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "broken-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for name in ["messages.json", "pen-models.json"] {
      try FileManager.default.copyItem(
        at: PenCtlProcess.root.appendingPathComponent("Firmware-Specs/\(name)"),
        to: dir.appendingPathComponent(name))
    }
    try Data("{ not json".utf8).write(to: dir.appendingPathComponent("treatment-areas.json"))
    let result = try PenCtlProcess.run(["spec", "--specs", dir.path])
    #expect(result.status == 65)
    #expect(result.stderr.contains("treatment-areas.json"))
    #expect(result.stdout.isEmpty)
  }

  @Test("an unknown option is a usage error")
  func usageError() throws {
    let result = try PenCtlProcess.run(["spec", "--no-such-option"])
    #expect(result.status == 64)
  }
}
