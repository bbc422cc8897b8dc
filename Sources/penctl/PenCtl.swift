import ArgumentParser
import Foundation

/// penctl: calibrate, load presets, treat and inspect pens, real or simulated.
@main
struct PenCtl: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "penctl",
    abstract: "Drive microneedling and RF-microneedling pens within per-area safety limits.",
    discussion: """
      Exit codes: 0 success; 64 usage error; 65 bad input (a file or value is wrong); \
      66 refused by a safety or clinical rule; 67 device fault or aborted treatment; 70 internal error.
      """,
    subcommands: [SpecCommand.self, DevicesCommand.self, InfoCommand.self]
  )
}

/// The exit codes every command uses, documented in the README.
enum ExitStatus {
  static let success: Int32 = 0
  static let usage: Int32 = 64
  static let badInput: Int32 = 65
  static let refused: Int32 = 66
  static let deviceFault: Int32 = 67
  static let internalError: Int32 = 70
}

/// Writes machine-readable output with stable, sorted keys.
enum JSONOutput {
  static func print<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    let data = try encoder.encode(value)
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
  }
}

/// Prints a message on standard error and exits with `code`.
func fail(_ message: String, code: Int32) -> Never {
  FileHandle.standardError.write(Data("penctl: \(message)\n".utf8))
  exit(code)
}
