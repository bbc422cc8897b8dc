import Foundation
import PenSafety
import PenWire
import Testing

/// Table-driven: every (state, event) pair, legal and illegal, against state-machine.json.
@Suite("State machine (SR-024)")
struct StateMachineTests {
  static let states: [PenState] = [
    .boot, .idle, .ready, .armed, .treating, .paused, .fault, .estop,
  ]
  static let events: [PenEvent] = (0..<UInt8(PenEvent.count)).map { PenEvent(rawValue: $0)! }

  struct Transition: Hashable {
    var from: String
    var event: String
    var to: String
  }

  static func specTransitions() throws -> Set<Transition> {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("Firmware-Specs/state-machine.json")
    let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    return Set(
      (doc["transitions"] as! [[String: Any]]).map {
        Transition(
          from: $0["from"] as! String, event: $0["event"] as! String, to: $0["to"] as! String)
      })
  }

  @Test("SR-024: the table holds exactly the transitions of state-machine.json, and no others")
  func tableMatchesSpec() throws {
    let spec = try Self.specTransitions()
    var code: Set<Transition> = []
    for state in Self.states {
      for event in Self.events {
        for loaded in [false, true] {
          if let target = PenStateMachine.target(from: state, on: event, envelopeLoaded: loaded) {
            code.insert(
              Transition(
                from: "\(state.catalogueName)", event: "\(event.specName)",
                to: "\(target.catalogueName)"))
          }
        }
      }
    }
    #expect(
      code.subtracting(spec).isEmpty, "in code but not in the spec: \(code.subtracting(spec))")
    #expect(
      spec.subtracting(code).isEmpty, "in the spec but not in code: \(spec.subtracting(code))")
  }

  @Test("SR-024: every pair the spec does not list is refused", arguments: states)
  func illegalPairsAreRefused(_ state: PenState) throws {
    let spec = try Self.specTransitions()
    for event in Self.events {
      let legal = spec.contains {
        $0.from == "\(state.catalogueName)" && $0.event == "\(event.specName)"
      }
      let target = PenStateMachine.target(from: state, on: event, envelopeLoaded: true)
      #expect((target != nil) == legal, "\(state) on \(event)")
    }
  }

  @Test("SR-022: emergency stop is reachable from every state but estop itself")
  func emergencyStopEverywhere() {
    for state in Self.states where state != .estop {
      #expect(
        PenStateMachine.target(from: state, on: .emergencyStop, envelopeLoaded: false) == .estop)
    }
  }

  @Test("SR-023: estop leaves only by reset to idle, or by power loss")
  func estopLatchesHard() {
    for event in Self.events {
      let target = PenStateMachine.target(from: .estop, on: event, envelopeLoaded: true)
      switch event {
      case .resetEstop: #expect(target == .idle)
      case .powerLoss: #expect(target == .boot)
      default: #expect(target == nil, "\(event)")
      }
    }
  }

  @Test("SR-020: a fault is left only by acknowledgement (or power loss or emergency stop)")
  func faultIsLatched() {
    for event in Self.events {
      let target = PenStateMachine.target(from: .fault, on: event, envelopeLoaded: true)
      switch event {
      case .acknowledgeFault: #expect(target == .ready)
      case .emergencyStop: #expect(target == .estop)
      case .powerLoss: #expect(target == .boot)
      default: #expect(target == nil, "\(event)")
      }
    }
    #expect(
      PenStateMachine.target(from: .fault, on: .acknowledgeFault, envelopeLoaded: false) == .idle)
  }

  @Test("only treating may actuate needles or RF")
  func onlyTreatingActuates() {
    for state in Self.states {
      #expect(PenStateMachine.mayActuate(state) == (state == .treating))
    }
  }
}
