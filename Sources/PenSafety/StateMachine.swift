public import PenWire

/// What can happen to a pen: the commands that change state and the pen's own events
/// (Firmware-Specs/state-machine.json).
public enum PenEvent: UInt8, Sendable, Hashable {
  case selfTestPassed = 0
  case selfTestFailed = 1
  case setSessionEnvelope = 2
  case setParameters = 3
  case arm = 4
  case start = 5
  case pause = 6
  case stop = 7
  case disarm = 8
  case emergencyStop = 9
  case acknowledgeFault = 10
  case resetEstop = 11
  /// Any hard-limit or interlock violation, sensor fault, or loss of cartridge or calibration.
  case trip = 12
  case heartbeatLost = 13
  /// Brown-out or power cycle.
  case powerLoss = 14

  /// The number of events, for exhaustive table walks without allocating.
  public static let count = 15

  /// The catalogue-style name used by state-machine.json.
  public var specName: StaticString {
    switch self {
    case .selfTestPassed: "self_test_passed"
    case .selfTestFailed: "self_test_failed"
    case .setSessionEnvelope: "set_session_envelope"
    case .setParameters: "set_parameters"
    case .arm: "arm"
    case .start: "start"
    case .pause: "pause"
    case .stop: "stop"
    case .disarm: "disarm"
    case .emergencyStop: "emergency_stop"
    case .acknowledgeFault: "acknowledge_fault"
    case .resetEstop: "reset_estop"
    case .trip: "trip"
    case .heartbeatLost: "heartbeat_lost"
    case .powerLoss: "power_loss"
    }
  }
}

/// The pen's legal state transitions, exactly as Firmware-Specs/state-machine.json lists them
/// (SR-024). Guards (calibration, cartridge, envelope, cause cleared) are checked by the caller;
/// this table only says which (state, event) pairs exist and where they lead.
public enum PenStateMachine {
  /// The state `event` leads to from `state`, or nil when the transition is illegal and must be
  /// refused with the state unchanged. `envelopeLoaded` picks the target of a fault
  /// acknowledgement: back to ready with the envelope, else to idle.
  @inlinable
  public static func target(from state: PenState, on event: PenEvent, envelopeLoaded: Bool)
    -> PenState?
  {
    switch (state, event) {
    case (_, .powerLoss): return .boot
    case (.boot, .selfTestPassed): return .idle
    case (.boot, .selfTestFailed): return .fault
    case (.idle, .setSessionEnvelope), (.ready, .setSessionEnvelope): return .ready
    case (.ready, .setParameters), (.armed, .setParameters), (.treating, .setParameters),
      (.paused, .setParameters):
      return state
    case (.ready, .arm): return .armed
    case (.armed, .start), (.paused, .start): return .treating
    case (.treating, .pause): return .paused
    case (.treating, .stop), (.paused, .stop): return .armed
    case (.armed, .disarm): return .ready
    case (.idle, .trip), (.ready, .trip), (.armed, .trip), (.treating, .trip), (.paused, .trip):
      return .fault
    case (.armed, .heartbeatLost), (.treating, .heartbeatLost), (.paused, .heartbeatLost):
      return .fault
    case (.fault, .acknowledgeFault): return envelopeLoaded ? .ready : .idle
    case (.estop, .emergencyStop): return nil
    case (_, .emergencyStop): return .estop
    case (.estop, .resetEstop): return .idle
    default: return nil
    }
  }

  /// True in the states where RF may be enabled and needles may be driven.
  @inlinable public static func mayActuate(_ state: PenState) -> Bool { state == .treating }
}
