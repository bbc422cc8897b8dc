public import PenWire

/// Simulated time: advanced only by whoever drives the simulation, never by the wall clock, so
/// runs are fast and the same seed and inputs give the same bytes.
public struct VirtualClock: Sendable, Hashable {
  /// Microseconds since the simulated power-on.
  public private(set) var now: Microseconds = .zero

  public init() {}

  /// Moves time forward; time never runs backwards.
  public mutating func advance(by span: Microseconds) {
    now = Microseconds(rawValue: now.rawValue + span.rawValue)
  }
}

/// SplitMix64: a small, fast, well-mixed generator. Every random choice of the simulator (unit
/// imperfections, sensor noise, fixture uncertainty) comes from one of these, seeded explicitly.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Hashable {
  private var state: UInt64

  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z &>> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z &>> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z &>> 31)
  }

  /// A uniformly distributed value in `range`.
  public mutating func uniform(_ range: ClosedRange<Double>) -> Double {
    let unit = Double(next() &>> 11) / Double(1 << 53)
    return range.lowerBound + (range.upperBound - range.lowerBound) * unit
  }
}
