public import PenWire

/// What the physics really did, recorded beside the firmware and never read by it: tests judge
/// safety on this, not on what PenSafety believes.
public struct TruthRecord: Sendable {
  /// A change the physics went through, with its virtual time.
  public enum Event: Sendable, Hashable {
    case rfOn, rfOff, needlesDriving, needlesStopped
    case faultInjected(FaultKind)
    case faultCleared(FaultKind)
    case reset
  }

  public private(set) var maxDepth = Millimetres.zero
  public private(set) var maxSpeed = Hertz.zero
  /// The largest energy per pin any single pulse delivered.
  public private(set) var maxPulseEnergyPerPin = Millijoules.zero
  /// The energy per pin of the last complete pulse.
  public private(set) var lastPulseEnergyPerPin = Millijoules.zero
  /// All RF energy delivered, and the part of it delivered without skin contact.
  public private(set) var rfEnergy = Millijoules.zero
  public private(set) var rfEnergyWithoutContact = Millijoules.zero
  public private(set) var maxTissueTemperature = Celsius(-273)
  public private(set) var maxHandpieceTemperature = Celsius(-273)
  public private(set) var pulses = 0
  /// The last instant RF was delivering power, and the needles were being driven.
  public private(set) var lastRFOn: Microseconds?
  public private(set) var lastDriving: Microseconds?
  /// Transitions, oldest first (bounded: the newest 4096 are kept).
  public private(set) var events: [(Microseconds, Event)] = []
  /// RF energy delivered in each session, by session id.
  public private(set) var rfEnergyBySession: [UInt32: Millijoules] = [:]

  var rfWasOn = false
  var drivingWas = false
  var pulseEnergy = Millijoules.zero
  var pinCount = 1

  init(pinCount: Int) { self.pinCount = pinCount }

  mutating func note(_ event: Event, at now: Microseconds) {
    if events.count >= 4096 { events.removeFirst(events.count - 4095) }
    events.append((now, event))
  }

  /// Records one tick of the true physical state.
  mutating func record(
    now: Microseconds, depth: Millimetres, speed: Hertz, rfPower: Watts, contact: Bool,
    driving: Bool,
    tissue: Celsius, handpiece: Celsius, interval: Microseconds, session: UInt32
  ) {
    if depth > maxDepth { maxDepth = depth }
    if speed > maxSpeed { maxSpeed = speed }
    if tissue > maxTissueTemperature { maxTissueTemperature = tissue }
    if handpiece > maxHandpieceTemperature { maxHandpieceTemperature = handpiece }
    let rfOn = rfPower.value > 0.01
    if rfOn {
      let energy = Millijoules(rfPower.value * Double(interval.rawValue) / 1000)
      rfEnergy += energy
      pulseEnergy += energy
      rfEnergyBySession[session, default: .zero] += energy
      if !contact { rfEnergyWithoutContact += energy }
      lastRFOn = now
    }
    if rfOn != rfWasOn {
      note(rfOn ? .rfOn : .rfOff, at: now)
      if !rfOn {
        pulses += 1
        let perPin = Millijoules(pulseEnergy.value / Double(pinCount))
        lastPulseEnergyPerPin = perPin
        if perPin > maxPulseEnergyPerPin { maxPulseEnergyPerPin = perPin }
        pulseEnergy = .zero
      }
      rfWasOn = rfOn
    }
    if driving { lastDriving = now }
    if driving != drivingWas {
      note(driving ? .needlesDriving : .needlesStopped, at: now)
      drivingWas = driving
    }
  }
}
