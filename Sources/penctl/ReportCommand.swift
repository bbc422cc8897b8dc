import ArgumentParser
import Foundation
import PenClinic
import PenWire

/// Writes a session's HTML report: the summary and charts of depth, speed and RF energy over
/// time, from the samples the records store kept.
enum ReportWriter {
  /// Writes the report to `path`, or to reports/session-ID.html in the data directory.
  static func write(
    sessionID: Int64, store: RecordsStore, to path: String?, in options: StoreOptions
  ) throws(CLIError) -> URL {
    let record: SessionRecord
    let samples: [SessionSample]
    do {
      guard let found = try store.session(id: sessionID) else {
        throw CLIError(
          "no session \(sessionID) in \(options.path.path): penctl records list shows the sessions",
          code: ExitStatus.badInput)
      }
      record = found
      samples = try store.samples(session: sessionID)
    } catch let error as CLIError {
      throw error
    } catch {
      throw CLIError("\(error)", code: ExitStatus.internalError)
    }
    let s = SessionSummary(record)
    var summary: [(label: String, value: String)] = [
      ("Session", "\(s.id)"), ("Patient", s.patient), ("Area", s.area), ("Preset", s.preset),
      ("Pen", "\(s.penSerial ?? "-") (\(s.model ?? "-"))"), ("Skin type", "\(s.fitzpatrick)"),
      ("Test patch", s.testPatch ? "yes" : "no"), ("Status", s.status),
      ("Started", s.startedAt), ("Ended", s.endedAt ?? "-"),
      ("RF delivered", "\(fmt(s.deliveredRfMj / 1000)) J"),
      ("Passes", s.passes.map(String.init) ?? "unknown"),
    ]
    if let reason = s.reason { summary.append(("Reason", reason)) }
    if let o = s.overrideReason { summary.append(("Override reason", o)) }
    let t0 = samples.first?.time.rawValue ?? 0
    let html = SessionReport.html(
      title: "PenControl session \(s.id)", summary: summary,
      series: SessionSeries(
        times: samples.map { Double($0.time.rawValue &- t0) / 1e6 },
        depth: samples.map(\.depth.value), speed: samples.map(\.speed.value),
        deliveredEnergy: samples.map(\.delivered.value)))
    let url =
      path.map { URL(fileURLWithPath: $0) }
      ?? options.dataDirectory.appendingPathComponent("reports").appendingPathComponent(
        "session-\(sessionID).html")
    do {
      try FileManager.default.createDirectory(
        at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try Data(html.utf8).write(to: url, options: .atomic)
    } catch {
      throw CLIError(
        "cannot write the report to \(url.path): \(error.localizedDescription)",
        code: ExitStatus.badInput)
    }
    return url
  }
}

/// `penctl report SESSION_ID`: the session's HTML report.
struct ReportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Write a session's HTML report (summary; depth, speed and RF energy over time).")

  @Argument(help: "The session's id (penctl records list).") var sessionID: Int64
  @Option(help: "Where to write it (default: reports/session-ID.html in the data directory).")
  var out: String?
  @OptionGroup var store: StoreOptions
  @Flag(help: "Print JSON instead of text.") var json = false

  func run() throws {
    do {
      let records = try store.open()
      let url = try ReportWriter.write(sessionID: sessionID, store: records, to: out, in: store)
      if json {
        try JSONOutput.print(["session_id": "\(sessionID)", "report": url.path])
      } else {
        print("report for session \(sessionID): \(url.path)")
      }
    } catch let error as CLIError {
      fail(error, json: json)
    }
  }
}
