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
    subcommands: [
      SpecCommand.self, DevicesCommand.self, InfoCommand.self, CalibrateCommand.self,
      TreatCommand.self, RecordsCommand.self, ReportCommand.self, AuditCommand.self,
    ]
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

/// What a failed command prints with --json, on standard output, besides the message on standard
/// error.
struct ErrorReport: Encodable {
  var error: String
  var exitCode: Int32
  var kind: String

  init(_ error: CLIError) {
    self.error = error.message
    exitCode = error.code
    kind =
      switch error.code {
      case ExitStatus.usage: "usage"
      case ExitStatus.badInput: "bad_input"
      case ExitStatus.refused: "refused"
      case ExitStatus.deviceFault: "device_fault"
      default: "internal_error"
      }
  }
}

/// Reports a failure (as JSON too when asked) and exits with its code.
func fail(_ error: CLIError, json: Bool) -> Never {
  if json { try? JSONOutput.print(ErrorReport(error)) }
  fail(error.message, code: error.code)
}

/// Prints a message on standard error and exits with `code`.
func fail(_ message: String, code: Int32) -> Never {
  FileHandle.standardError.write(Data("penctl: \(message)\n".utf8))
  exit(code)
}
