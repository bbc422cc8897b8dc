import Foundation
public import PenSafety
public import PenWire

/// The physical pen and the skin under it: actuators with first-order responses, the motor under
/// load, RF power into tissue impedance, heating and cooling, needle strokes, skin contact.
/// Units: SI-ish in the quantity types; time steps in microseconds.
public struct PenPhysics: Sendable {
  public let capability: PenCapability
  public let profile: UnitProfile
  /// True physical state.
  public private(set) var depth = Millimetres.zero
  public private(set) var speed = Hertz.zero
  public private(set) var rfPower = Watts.zero
  public private(set) var impedance = Ohms(65535)
  public private(set) var tissueTemperature = Celsius(33)
  public private(set) var handpieceTemperature = Celsius(25)
  /// Whether the tip touches skin: set by whoever scripts the treatment.
  public var skinContact = false
  /// The tissue's base impedance where the tip is (depends on the area).
  public var tissueBaseImpedance = Ohms(320)
  /// The tip sits on the technician's RF reference load instead of skin.
  var onReferenceLoad = false
  /// Faults acting on the physics.
  var stalled = false
  var rfStuck = false
  var overheating = false
  var impedanceOverride: Ohms?
  /// Needle stroke phase, in cycles; a new stroke starts each time it passes a whole number.
  var phase = 0.0

  static let depthTimeConstant = 0.005
  static let motorTimeConstant = 0.010
  static let tissueCooling = 3.0
  static let handpieceCooling = 60.0
  /// Tissue heating per joule delivered (°C/J): 40 W for a second warms it about 3 °C.
  static let tissueHeating = 0.075
  static let nominalImpedance = 300.0

  init(capability: PenCapability, profile: UnitProfile) {
    self.capability = capability
    self.profile = profile
  }

  /// Advances by `dt` under the given actuator commands (already corrected by calibration).
  /// Returns true when a needle stroke begins in this step (the moment an RF pulse may start).
  /// `rfRelayClosed` is the hardware interlock: the RF supply is energised only while treating, so
  /// even a stuck RF stage stops delivering once the safety core leaves treatment (SR-031).
  mutating func step(
    dt: Microseconds, driveNeedles: Bool, depthCommand: Millimetres, speedCommand: Hertz,
    rfCommand: Watts,
    rfRelayClosed: Bool
  ) -> Bool {
    let seconds = Double(dt.rawValue) / 1_000_000
    // Depth actuator: first order towards the unit's true response to the command.
    let depthTarget =
      driveNeedles ? max(0, profile.depthGain * depthCommand.value + profile.depthOffset.value) : 0
    depth = Millimetres(
      depth.value + (depthTarget - depth.value) * min(1, seconds / Self.depthTimeConstant))
    // Motor: first order towards its true speed; a stalled motor decays to zero.
    let speedTarget = driveNeedles && !stalled ? profile.speedGain * speedCommand.value : 0
    speed = Hertz(
      max(0, speed.value + (speedTarget - speed.value) * min(1, seconds / Self.motorTimeConstant)))
    // Strokes: the needles go in once a cycle.
    let before = phase
    phase += speed.value * seconds
    let stroke = driveNeedles && phase.rounded(.down) > before.rounded(.down)
    // Impedance: open without contact; deeper needles see lower impedance; heat lowers it a little.
    if let forced = impedanceOverride {
      impedance = forced
    } else if onReferenceLoad {
      impedance = ReferenceFixtures.loadResistance
    } else if skinContact {
      let depthFactor = 1 + 0.4 * (1 - min(depth.value, 2) / 2)
      let heatFactor = 1 - 0.01 * max(0, tissueTemperature.value - 34)
      impedance = Ohms(tissueBaseImpedance.value * depthFactor * heatFactor)
    } else {
      impedance = Ohms(65535)
    }
    // RF: the generator is set for a nominal load; real power follows V²/R into the tissue.
    if !rfRelayClosed || !capability.hasRF {
      rfPower = .zero
    } else if rfStuck {
      rfPower = Watts(capability.maxRFPower.value * 0.5)
    } else if rfCommand.value > 0 && impedance.value < 65535 {
      // The generator saturates at the pen's rated power.
      let load = min(2, max(0.5, Self.nominalImpedance / impedance.value))
      rfPower = Watts(min(rfCommand.value * profile.rfGain * load, capability.maxRFPower.value))
    } else {
      rfPower = .zero
    }
    let delivered = rfPower.value * seconds
    // Heat: RF warms the tissue (only through contact) and the handpiece; both cool towards rest.
    let heating = skinContact && !onReferenceLoad ? delivered * Self.tissueHeating : 0
    tissueTemperature = Celsius(
      tissueTemperature.value + heating - (tissueTemperature.value - 33) * seconds
        / Self.tissueCooling)
    if overheating { tissueTemperature = Celsius(max(tissueTemperature.value, 45)) }
    let motorHeat = speed.value > 0 ? 0.002 * seconds : 0
    handpieceTemperature = Celsius(
      handpieceTemperature.value + delivered * 0.002 + motorHeat
        - (handpieceTemperature.value - 25) * seconds / Self.handpieceCooling)
    return stroke
  }

  /// A power cycle: actuators stop, the tip stays where it is.
  mutating func reset() {
    depth = .zero
    speed = .zero
    rfPower = .zero
    phase = 0
  }
}

/// The pen's own sensors, reading the physics with noise, and the faults injected into them.
struct SensorBank: Sendable {
  var faults: [SensorID: SensorFault] = [:]
  var frozen: [SensorID: Double] = [:]
  var slowState: [SensorID: Double] = [:]
  /// 50 ms delay lines (500 ticks), one per sensor.
  var delayLines: [SensorID: DelayLine] = [:]
  var noise: SeededGenerator

  struct DelayLine: Sendable {
    var values = [Double](repeating: 0, count: 500)
    var index = 0
    mutating func push(_ v: Double) -> Double {
      let out = values[index]
      values[index] = v
      index = (index + 1) % values.count
      return out
    }
  }

  init(seed: UInt64) { noise = SeededGenerator(seed: seed ^ 0x5E_2505) }

  mutating func read(_ id: SensorID, _ truth: Double, noise amplitude: Double, now: Microseconds)
    -> Double
  {
    // Noise never takes a reading below its physical floor (no negative depth or speed).
    let clean = max(0, truth + (amplitude > 0 ? noise.uniform(-amplitude...amplitude) : 0))
    if faults.isEmpty { return clean }  // the common case: no dictionary lookup per tick
    guard let fault = faults[id] else { return clean }
    switch fault {
    case .off:
      return .nan
    case .stuck:
      if frozen[id] == nil { frozen[id] = clean }
      return frozen[id]!
    case .garbage:
      let pick = noise.next() % 8
      return pick == 0 ? .nan : noise.uniform(-500...70_000)
    case .wrong:
      return clean * 0.5
    case .slow:
      let previous = slowState[id] ?? clean
      let next = previous + (clean - previous) * (100.0 / 200_000.0)
      slowState[id] = next
      return next
    case .delayed:
      var line = delayLines[id] ?? DelayLine(values: [Double](repeating: clean, count: 500))
      let out = line.push(clean)
      delayLines[id] = line
      return out
    case .intermittent:
      return (now.rawValue / 3_000) % 2 == 0 ? clean : .nan
    }
  }

  mutating func set(_ id: SensorID, _ fault: SensorFault?) {
    faults[id] = fault
    frozen[id] = nil
    slowState[id] = nil
    delayLines[id] = nil
  }
}
