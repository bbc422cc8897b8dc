public import PenWire

/// The technician's reference fixtures: a depth gauge, a tachometer, and an RF load with a power
/// meter. They measure the true physical output (not the pen's own readings), each with its own
/// small uncertainty, which is what calibration fits the pen's correction against.
public struct ReferenceFixtures: Sendable {
  /// Depth gauge: ±0.003 mm.
  public static let depthUncertainty = Millimetres(0.003)
  /// Tachometer: ±0.2 % of reading.
  public static let speedUncertainty = 0.002
  /// Power meter on the RF load: ±1 % of the pulse energy.
  public static let energyUncertainty = 0.01
  /// The RF load's resistance.
  public static let loadResistance = Ohms(300)

  var noise: SeededGenerator

  init(seed: UInt64) { noise = SeededGenerator(seed: seed ^ 0xF1C7_0735) }

  mutating func depth(_ truth: Millimetres) -> Millimetres {
    let u = Self.depthUncertainty.value
    return Millimetres(truth.value + noise.uniform(-u...u))
  }

  mutating func speed(_ truth: Hertz) -> Hertz {
    Hertz(truth.value * (1 + noise.uniform(-Self.speedUncertainty...Self.speedUncertainty)))
  }

  mutating func energy(_ truth: Millijoules) -> Millijoules {
    Millijoules(truth.value * (1 + noise.uniform(-Self.energyUncertainty...Self.energyUncertainty)))
  }
}

extension PenFirmware {
  /// Reads the depth gauge against the needle tip.
  public mutating func measureDepthWithGauge() -> Millimetres { fixtures.depth(physics.depth) }

  /// Reads the optical tachometer on the needle drive.
  public mutating func measureSpeedWithTachometer() -> Hertz { fixtures.speed(physics.speed) }

  /// Puts the tip on the RF load (300 Ω, in contact, no tissue heating), or takes it off.
  public mutating func attachRFLoad(_ attached: Bool) {
    physics.onReferenceLoad = attached
    physics.skinContact = attached
  }

  /// The power meter's reading of the last complete pulse, per pin.
  public mutating func readPowerMeter() -> Millijoules {
    fixtures.energy(truth.lastPulseEnergyPerPin)
  }
}
