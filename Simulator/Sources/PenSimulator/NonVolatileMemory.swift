public import PenWire

/// One entry of the pen's event log.
public struct LoggedEvent: Sendable, Hashable, Codable {
  public var timestamp: Microseconds
  public var kind: EventKind
  public var state: PenState
  public var fault: FaultCode
  public var value: Int32
}

extension Microseconds: Codable {
  public init(from decoder: any Decoder) throws { self.init(rawValue: try UInt64(from: decoder)) }
  public func encode(to encoder: any Encoder) throws { try rawValue.encode(to: encoder) }
}

extension EventKind: Codable {}
extension PenState: Codable {}
extension FaultCode: Codable {}
extension PenModelID: Codable {}
extension Millimetres: Codable {
  public init(from decoder: any Decoder) throws { self.init(try Double(from: decoder)) }
  public func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}

/// What survives a power cycle: identity, the service key, the calibration record, cartridge use
/// counts, the estop count and the event log. Codable so a tool can keep it in a state file.
public struct NonVolatileMemory: Sendable, Hashable, Codable {
  public var model: PenModelID
  public var serial: String
  /// The per-pen key for service-mode challenge–response.
  public var serviceKey: [UInt8]
  /// The 64-byte calibration record, or nil when none was ever written.
  public var calibrationRecord: [UInt8]?
  /// Use counts by cartridge id, as the cartridges' own chips keep them.
  public var cartridgeUses: [UInt64: Int] = [:]
  public var estopCount: UInt16 = 0
  /// The event log, oldest first, at most `eventLogCapacity` entries.
  public var eventLog: [LoggedEvent] = []
  /// Entries ever written; the oldest are dropped once the log is full.
  public var eventsWritten: UInt32 = 0

  public static let eventLogCapacity = 1024

  public init(model: PenModelID, serial: String, serviceKey: [UInt8]) {
    self.model = model
    self.serial = serial
    self.serviceKey = serviceKey
  }

  mutating func log(_ entry: LoggedEvent) {
    if eventLog.count == Self.eventLogCapacity { eventLog.removeFirst() }
    eventLog.append(entry)
    eventsWritten &+= 1
  }
}
