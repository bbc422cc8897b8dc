public import PenWire

/// One pen's manufacturing imperfections, drawn from its seed: enough that an uncalibrated pen is
/// out of tolerance (depth ±0.05 mm, speed ±5 %, RF ±10 %), small enough that calibration (gains
/// 0.8–1.25, offset ±0.3 mm) can correct them.
public struct UnitProfile: Sendable, Hashable, Codable {
  /// True depth = depthGain × commanded depth + depthOffset.
  public var depthGain: Double
  public var depthOffset: Millimetres
  /// True motor speed = speedGain × commanded speed.
  public var speedGain: Double
  /// True RF power = rfGain × commanded power.
  public var rfGain: Double

  public init(depthGain: Double, depthOffset: Millimetres, speedGain: Double, rfGain: Double) {
    self.depthGain = depthGain
    self.depthOffset = depthOffset
    self.speedGain = speedGain
    self.rfGain = rfGain
  }

  /// A unit with no imperfections.
  public static let ideal = UnitProfile(depthGain: 1, depthOffset: .zero, speedGain: 1, rfGain: 1)

  /// The imperfections of the unit built with `seed`. Each error has a random sign and a
  /// magnitude between its floor (out of tolerance) and its ceiling (still correctable).
  public static func drawn(seed: UInt64) -> UnitProfile {
    var g = SeededGenerator(seed: seed ^ 0x0DDB_A11_CA11B)
    func signed(_ range: ClosedRange<Double>) -> Double {
      let magnitude = g.uniform(range)
      return g.next() & 1 == 0 ? magnitude : -magnitude
    }
    return UnitProfile(
      depthGain: 1 + signed(0.04...0.10), depthOffset: Millimetres(signed(0.06...0.12)),
      speedGain: 1 + signed(0.06...0.12), rfGain: 1 + signed(0.12...0.20))
  }
}
