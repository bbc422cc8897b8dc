public import PenWire

/// The technician's reference fixtures (calibration.md section 6): a depth gauge against the
/// needle tip, a tachometer on the needle drive, and an RF load with a power meter. They measure
/// the pen's true output, never its own readings. A real bench and the simulator's fixtures both
/// conform.
public protocol CalibrationFixtures {
  /// The needle depth the gauge reads now.
  func measureDepth() throws(FixtureError) -> Millimetres
  /// The needle speed the tachometer reads now.
  func measureSpeed() throws(FixtureError) -> Hertz
  /// Puts the tip on the RF load (`true`) or takes it off (`false`).
  func attachRFLoad(_ attached: Bool) throws(FixtureError)
  /// The power meter's energy per pin of the last complete pulse into the RF load.
  func readPowerMeter() throws(FixtureError) -> Millijoules
}

/// A fixture that could not measure: which one, and why.
public struct FixtureError: Error, Sendable, Hashable, CustomStringConvertible {
  /// The fixture, as a technician names it ("depth gauge", "tachometer", "RF load", "power meter").
  public var fixture: String
  public var reason: String

  public init(fixture: String, reason: String) {
    self.fixture = fixture
    self.reason = reason
  }

  public var description: String { "\(fixture): \(reason)" }
}
