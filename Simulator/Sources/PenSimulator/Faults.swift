public import PenWire

/// A sensor of the simulated pen.
public enum SensorID: String, Sendable, Hashable, Codable, CaseIterable {
  case depth
  case speed
  case rfPower = "rf-power"
  case impedance
  case tissueTemperature = "tissue-temperature"
  case handpieceTemperature = "handpiece-temperature"
  case contact
}

/// How a sensor can fail.
public enum SensorFault: String, Sendable, Hashable, Codable, CaseIterable {
  /// No reading at all (the ADC reports an error: not a number; contact reads false).
  case off
  /// Frozen at the value it had when the fault began.
  case stuck
  /// Random values, in and out of range, NaN among them.
  case garbage
  /// Plausible but wrong: half the true value.
  case wrong
  /// Heavily low-passed (a 200 ms time constant).
  case slow
  /// Delayed by 50 ms.
  case delayed
  /// Good and absent (NaN) in turns, a few milliseconds each.
  case intermittent
}

/// Everything the simulator can inject.
public enum FaultKind: Sendable, Hashable, Codable {
  case sensor(SensorID, SensorFault)
  /// The USB link is cut: nothing passes either way (the pen runs on its battery).
  case usbUnplug
  /// The host's frames stop arriving; the pen's still leave.
  case hostSilence
  /// The RF stage delivers power whatever it is told.
  case rfStuckOn
  /// The needle motor stalls.
  case motorStall
  /// The tissue under the tip overheats.
  case overTemperature
  /// The tip loses electrical contact (open circuit).
  case impedanceOpen
  /// The tip shorts (a few ohms).
  case impedanceShort
  /// A used cartridge is swapped in (its chip reports its use count at the maximum).
  case cartridgeReuse
  /// The supply dips: the pen resets and boots again.
  case brownOut

  /// The text name: `sensor-depth-stuck`, `rf-stuck-on`, `impedance-open`, …
  public var name: String {
    switch self {
    case .sensor(let s, let f): "sensor-\(s.rawValue)-\(f.rawValue)"
    case .usbUnplug: "usb-unplug"
    case .hostSilence: "host-silence"
    case .rfStuckOn: "rf-stuck-on"
    case .motorStall: "motor-stall"
    case .overTemperature: "over-temperature"
    case .impedanceOpen: "impedance-open"
    case .impedanceShort: "impedance-short"
    case .cartridgeReuse: "cartridge-reuse"
    case .brownOut: "brown-out"
    }
  }

  /// Every fault the simulator offers, sensors × modes first.
  public static var all: [FaultKind] {
    SensorID.allCases.flatMap { s in SensorFault.allCases.map { FaultKind.sensor(s, $0) } } + [
      .usbUnplug, .hostSilence, .rfStuckOn, .motorStall, .overTemperature, .impedanceOpen,
      .impedanceShort, .cartridgeReuse, .brownOut,
    ]
  }

  /// The fault with this text name.
  public init?(name: String) {
    guard let kind = FaultKind.all.first(where: { $0.name == name }) else { return nil }
    self = kind
  }
}

/// A fault at a point of virtual time, for a while or for good.
public struct ScheduledFault: Sendable, Hashable, Codable, CustomStringConvertible {
  public var kind: FaultKind
  public var at: Microseconds
  /// How long it lasts; nil for the rest of the run. A brown-out is instantaneous.
  public var duration: Microseconds?

  public init(_ kind: FaultKind, at: Microseconds, duration: Microseconds? = nil) {
    self.kind = kind
    self.at = at
    self.duration = duration
  }

  /// `NAME@TIME` or `NAME@TIME/DURATION`, times as `12.5s`, `300ms` or `250us`.
  public var description: String {
    "\(kind.name)@\(FaultText.format(at))" + (duration.map { "/\(FaultText.format($0))" } ?? "")
  }

  /// Parses `rf-stuck-on@12.5s`, `impedance-open@3s/500ms`, … with a typed error on bad input.
  public init(parsing text: String) throws(FaultTextError) {
    let parts = text.split(separator: "@", omittingEmptySubsequences: false)
    guard parts.count == 2, !parts[0].isEmpty else { throw .missingTime(text) }
    guard let kind = FaultKind(name: String(parts[0])) else {
      throw .unknownFault(String(parts[0]))
    }
    let timing = parts[1].split(separator: "/", omittingEmptySubsequences: false)
    guard timing.count <= 2 else { throw .badTime(String(parts[1])) }
    let at = try FaultText.parseTime(String(timing[0]))
    let duration = timing.count == 2 ? try FaultText.parseTime(String(timing[1])) : nil
    self.init(kind, at: at, duration: duration)
  }
}

/// Why a fault's text form could not be read.
public enum FaultTextError: Error, Hashable, Sendable, CustomStringConvertible {
  case missingTime(String)
  case unknownFault(String)
  case badTime(String)

  public var description: String {
    switch self {
    case .missingTime(let t):
      "fault '\(t)' has no time: write NAME@TIME, e.g. rf-stuck-on@12.5s"
    case .unknownFault(let n):
      "unknown fault '\(n)': known faults are \(FaultKind.all.map(\.name).joined(separator: ", "))"
    case .badTime(let t):
      "bad time '\(t)': write a non-negative number with s, ms or us (e.g. 12.5s, 300ms), at most 24 h"
    }
  }
}

enum FaultText {
  static func parseTime(_ text: String) throws(FaultTextError) -> Microseconds {
    let units: [(String, Double)] = [("us", 1), ("ms", 1_000), ("s", 1_000_000)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
      let number = text.dropLast(suffix.count)
      guard let value = Double(number), value.isFinite, value >= 0, value * scale <= 86_400e6 else {
        throw .badTime(text)
      }
      return Microseconds(UInt64((value * scale).rounded()))
    }
    throw .badTime(text)
  }

  static func format(_ t: Microseconds) -> String {
    if t.rawValue % 1_000_000 == 0 { return "\(t.rawValue / 1_000_000)s" }
    if t.rawValue % 1_000 == 0 { return "\(t.rawValue / 1_000)ms" }
    return "\(t.rawValue)us"
  }
}
