import Foundation
import PenClinic
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Where a treatment is killed. The points are chosen by a seeded generator and reached by
/// watching what the process writes (its standard error, its files), never by waiting on a clock.
enum KillPoint: Sendable, CustomStringConvertible {
  /// While the first command creates the records store (a new store is built beside the file).
  case whileCreatingStore
  /// Straight after the process is started, before it has opened anything.
  case atSpawn
  /// When the records' write-ahead log appears: opening, migrating or recovering the store.
  case whenStoreOpens
  /// When a new session-owner lock file appears: the session is being begun.
  case whenSessionLockAppears
  /// On reading "session N started".
  case onSessionStarted
  /// After this many live status lines (one a second of pen time, samples saved in between).
  case afterStatusLines(Int)
  /// After this many bytes of standard error, wherever that falls in a line.
  case afterBytes(Int)

  var description: String {
    switch self {
    case .whileCreatingStore: "while creating the store"
    case .atSpawn: "at spawn"
    case .whenStoreOpens: "when the store opens"
    case .whenSessionLockAppears: "when the session lock appears"
    case .onSessionStarted: "on 'session started'"
    case .afterStatusLines(let n): "after \(n) status lines"
    case .afterBytes(let n): "after \(n) bytes"
    }
  }

  /// Whether a session was surely begun by the time of the kill.
  var sessionSurelyBegun: Bool {
    switch self {
    case .onSessionStarted, .afterStatusLines: true
    default: false
    }
  }
}

/// SplitMix64: the test's only source of randomness, seeded.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z &>> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z &>> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z &>> 31)
  }
}

/// penctl treatments killed with SIGKILL at many points, one records store throughout: whatever
/// the point, the next command opens the store, closes the interrupted session as aborted with the
/// energy of its last saved sample, the audit chain verifies, and nothing acknowledged is lost.
@Suite("penctl crash consistency")
struct CrashConsistencyTests {
  static let seed: UInt64 = 0x5EED_C0FF_EE07
  static let kills = 16

  /// A running `penctl treat`, its standard error read as it comes.
  final class Treatment {
    let process = Process()
    let stderr = Pipe()
    var seen = ""

    init(_ arguments: [String]) throws {
      process.executableURL = PenCtlProcess.binary
      process.arguments = arguments
      process.currentDirectoryURL = PenCtlProcess.root
      var environment = ProcessInfo.processInfo.environment
      environment["PENCONTROL_SPECS"] = nil
      process.environment = environment
      process.standardError = stderr
      process.standardOutput = FileHandle.nullDevice
      try process.run()
    }

    /// Reads standard error until `done` says so or the stream ends; false at the end.
    func read(until done: (String) -> Bool) -> Bool {
      while !done(seen) {
        let chunk = stderr.fileHandleForReading.availableData
        if chunk.isEmpty { return false }
        seen += String(decoding: chunk, as: UTF8.self)
      }
      return true
    }

    /// Waits, without a clock, until `appeared` holds or the process has ended. On Linux it
    /// blocks on inotify (a file created in `dir`) and on the process's standard error (more
    /// output, or its end), so that it takes no CPU from the process it waits for.
    func watch(_ dir: URL, until appeared: () -> Bool) {
      #if canImport(Glibc)
        let events = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard events >= 0 else { return spin(until: appeared) }
        defer { close(events) }
        guard inotify_add_watch(events, dir.path, UInt32(IN_CREATE | IN_MOVED_TO)) >= 0 else {
          return spin(until: appeared)
        }
        let output = stderr.fileHandleForReading.fileDescriptor
        var buffer = [UInt8](repeating: 0, count: 4096)
        // Checked after the watch is in place, so no creation goes unseen.
        while !appeared() {
          var fds = [
            pollfd(fd: events, events: Int16(POLLIN), revents: 0),
            pollfd(fd: output, events: Int16(POLLIN), revents: 0),
          ]
          guard poll(&fds, 2, -1) > 0 else { continue }
          if fds[0].revents != 0 { _ = Glibc.read(events, &buffer, buffer.count) }
          if fds[1].revents != 0 {
            let n = Glibc.read(output, &buffer, buffer.count)
            if n <= 0 { return }  // the process ended
            seen += String(decoding: buffer[0..<n], as: UTF8.self)
          }
        }
      #else
        spin(until: appeared)
      #endif
    }

    private func spin(until appeared: () -> Bool) {
      while process.isRunning && !appeared() { sched_yield() }
    }

    /// Kills it with SIGKILL and collects everything it wrote.
    func kill() -> (signalled: Bool, stderr: String) {
      Foundation.kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
      seen += String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      return (process.terminationReason == .uncaughtSignal, seen)
    }
  }

  static func files(in dir: URL) -> Set<String> {
    Set((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
  }

  static func sessions(_ list: PenCtlProcess.Result) throws -> [Int: NSDictionary] {
    let doc = try #require(
      try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])
    let rows = try #require(doc["sessions"] as? [[String: Any]])
    var byID: [Int: NSDictionary] = [:]
    for row in rows { byID[try #require(row["id"] as? Int)] = row as NSDictionary }
    return byID
  }

  /// The kill points: the first while the store is created, then each kind once in a seeded
  /// order, then seeded choices.
  static func plan(_ g: inout SplitMix64) -> [KillPoint] {
    func pick(_ kind: Int, _ g: inout SplitMix64) -> KillPoint {
      switch kind {
      case 0: .atSpawn
      case 1: .whenStoreOpens
      case 2: .whenSessionLockAppears
      case 3: .onSessionStarted
      case 4: .afterStatusLines(1 + Int(g.next() % 6))
      default: .afterBytes(1 + Int(g.next() % 400))
      }
    }
    var points =
      [KillPoint.whileCreatingStore] + Array(0..<6).shuffled(using: &g).map { pick($0, &g) }
    while points.count < kills { points.append(pick(Int(g.next() % 6), &g)) }
    return points
  }

  @Test(
    "SIGKILL at seeded points of RF test patches and mechanical sessions: the store opens, the session is closed as aborted with its last saved energy, the audit chain verifies, nothing acknowledged is lost"
  )
  func repeatedKills() throws {
    let clock = ContinuousClock()
    let started = clock.now
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "penctl-crash-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let db = dir.appendingPathComponent("records.sqlite")
    var g = SplitMix64(state: Self.seed)
    let points = Self.plan(&g)

    /// Every session a command has reported, as `records list` showed it.
    var acknowledged: [Int: NSDictionary] = [:]
    var head: AuditHead? = nil
    var recovered = 0
    var completed = 0
    var outcomes: [String] = []

    func treatment(_ i: Int, rf: Bool, duration: String) -> [String] {
      [
        "treat", "--area", "forehead", "--patient", "P-CRASH-\(i)", "--sim", "--duration",
        duration, "--db", db.path,
      ]
        + (rf
          ? ["--sim-model", "rf200", "--fitzpatrick", "2", "--test-patch"]
          : ["--sim-model", "mn100"])
    }

    /// After anything: the store opens, nothing acknowledged changed, the chain verifies and
    /// still holds the last head seen, and the pens' state files are whole.
    func checkStore(after what: String) throws -> (list: PenCtlProcess.Result, new: [Int]) {
      let list = try PenCtlProcess.run([
        "records", "list", "--limit", "1000", "--json", "--db", db.path,
      ])
      #expect(list.status == 0, "\(what): records list: \(list.stderr)")
      let now = try Self.sessions(list)
      for (id, row) in acknowledged {
        #expect(now[id] == row, "\(what): session \(id) changed or went: \(now[id] as Any)")
      }
      #expect(
        !now.values.contains { $0["status"] as? String == "in_progress" },
        "\(what): a session was left in progress")
      let verify = try PenCtlProcess.run(["audit", "verify", "--json", "--db", db.path])
      #expect(verify.status == 0, "\(what): audit verify: \(verify.stdout) \(verify.stderr)")
      let store = try RecordsStore(path: db, actor: "crash-test")
      if let previous = head {
        let entries = try store.auditEntries(limit: 1_000_000)
        #expect(
          entries.first { $0.id == previous.count }?.hash == previous.lastHash,
          "\(what): audit entry \(previous.count) is no longer the one seen before")
      }
      head = try store.auditHead()
      for name in Self.files(in: dir.appendingPathComponent("sim")) where name.hasSuffix(".json") {
        let url = dir.appendingPathComponent("sim/\(name)")
        let nvm = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        #expect(
          nvm?["serial"] as? String == String(name.dropLast(5)), "\(what): \(name) is damaged")
      }
      let new = now.keys.filter { acknowledged[$0] == nil }.sorted()
      for id in now.keys { acknowledged[id] = now[id] }
      return (list, new)
    }

    /// The interrupted session, closed by the next command with its last saved sample.
    func checkRecovered(
      _ id: Int, what: String, point: KillPoint, rf: Bool, list: PenCtlProcess.Result
    ) throws -> Int {
      let row = try #require(acknowledged[id])
      #expect(row["status"] as? String == "aborted", "\(what): \(row)")
      #expect(row["reason"] as? String == RecordsStore.interruptedReason)
      #expect(
        row["passes"] == nil || row["passes"] is NSNull, "\(what): passes are unknown after a kill")
      #expect(list.stderr.contains("recovered session \(id) "), "\(what): \(list.stderr)")
      let store = try RecordsStore(path: db, actor: "crash-test")
      let samples = try store.samples(session: Int64(id))
      #expect(
        row["delivered_rf_mj"] as? Double == samples.last?.delivered.value ?? 0,
        "\(what): the recorded energy is the last saved sample's (\(samples.count) samples)")
      if case .afterStatusLines = point {
        #expect(!samples.isEmpty, "\(what): samples were saved before the status lines")
      }
      if rf, case .afterStatusLines(let n) = point, n >= 3 {
        #expect((samples.last?.delivered.value ?? 0) > 0, "\(what): RF energy was delivered")
      }
      return samples.count
    }

    /// A treatment run to its end: the pen's saved state works after the kills.
    func complete(_ i: Int, rf: Bool) throws {
      let run = try PenCtlProcess.run(treatment(i, rf: rf, duration: "2") + ["--json"])
      #expect(run.status == 0, "completed run \(i): \(run.stdout) \(run.stderr)")
      let summary = try #require(
        try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
      let id = try #require(summary["session_id"] as? Int)
      #expect(summary["status"] as? String == "completed")
      let (_, new) = try checkStore(after: "completed run \(i)")
      #expect(new == [id], "the completed session \(id) is recorded once")
      #expect(acknowledged[id]?["status"] as? String == "completed")
      completed += 1
    }

    for (i, point) in points.enumerated() {
      let rf = i % 2 == 0
      let what = "kill \(i) (\(rf ? "RF test patch" : "mechanical"), \(point))"
      let locksBefore = Self.files(in: dir).filter { $0.contains("-owner-") }
      let treatment = try Treatment(treatment(i, rf: rf, duration: "3600"))
      switch point {
      case .whileCreatingStore:
        treatment.watch(dir) {
          Self.files(in: dir).contains { $0.contains(".creating-") }
            || FileManager.default.fileExists(atPath: db.path)
        }
      case .atSpawn:
        break
      case .whenStoreOpens:
        treatment.watch(dir) { FileManager.default.fileExists(atPath: db.path + "-wal") }
      case .whenSessionLockAppears:
        treatment.watch(dir) {
          !Self.files(in: dir).filter { $0.contains("-owner-") }.subtracting(locksBefore).isEmpty
        }
      case .onSessionStarted:
        #expect(treatment.read { $0.contains(" started:") }, "\(what): \(treatment.seen)")
      case .afterStatusLines(let n):
        let reached = treatment.read { $0.components(separatedBy: "/3600 s").count > n }
        #expect(reached, "\(what): \(treatment.seen)")
      case .afterBytes(let n):
        _ = treatment.read { $0.utf8.count >= n }
      }
      let (signalled, stderr) = treatment.kill()
      #expect(signalled, "\(what): it ended before the kill: \(stderr)")

      let (list, new) = try checkStore(after: what)
      let begun = stderr.firstMatch(of: /session (\d+) started/).map { Int($0.1)! }
      if point.sessionSurelyBegun {
        #expect(begun != nil, "\(what): \(stderr)")
      }
      if let begun { #expect(new == [begun], "\(what): the begun session is listed") }
      #expect(new.count <= 1, "\(what): one treatment, at most one session")
      if let id = new.first {
        let samples = try checkRecovered(id, what: what, point: point, rf: rf, list: list)
        recovered += 1
        outcomes.append("\(i) \(point): session \(id) recovered, \(samples) samples")
      } else {
        outcomes.append("\(i) \(point): no session begun")
      }
      if i % 4 == 3 { try complete(100 + i, rf: rf) }
    }
    try complete(200, rf: true)
    try complete(201, rf: false)

    let surely = points.filter(\.sessionSurelyBegun).count
    #expect(recovered >= surely, "every kill after 'session started' left a session to recover")
    #expect(completed == 2 + Self.kills / 4)
    let elapsed = clock.now - started
    print(
      "crash consistency: \(points.count) kills (\(recovered) sessions recovered), \(completed) completed treatments, \(elapsed)\n  "
        + outcomes.joined(separator: "\n  "))
  }
}
