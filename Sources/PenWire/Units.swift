/// A physical quantity carried as a `Double` in one fixed unit, named by its type.
///
/// Units live in the type so that a depth can never be passed where an energy is expected. The
/// wire carries fixed-point integers (`Firmware-Specs/messages.json` gives each field's scale);
/// these types are what the rest of the system computes with.
public protocol PhysicalQuantity: Comparable, Hashable, Sendable {
  /// The magnitude in this type's unit.
  var value: Double { get }
  init(_ value: Double)
}

extension PhysicalQuantity {
  // All four comparisons are spelled out: Comparable's defaults derive `>=` as `!(a < b)`, which
  // is true for NaN, and a NaN setpoint must never pass a limit check.
  @inlinable public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
  @inlinable public static func <= (lhs: Self, rhs: Self) -> Bool { lhs.value <= rhs.value }
  @inlinable public static func > (lhs: Self, rhs: Self) -> Bool { lhs.value > rhs.value }
  @inlinable public static func >= (lhs: Self, rhs: Self) -> Bool { lhs.value >= rhs.value }
  @inlinable public static func + (lhs: Self, rhs: Self) -> Self { Self(lhs.value + rhs.value) }
  @inlinable public static func - (lhs: Self, rhs: Self) -> Self { Self(lhs.value - rhs.value) }
  @inlinable public static func * (lhs: Self, rhs: Double) -> Self { Self(lhs.value * rhs) }
  @inlinable public static func += (lhs: inout Self, rhs: Self) { lhs = lhs + rhs }
  /// Zero in this unit.
  @inlinable public static var zero: Self { Self(0) }
  /// True when the value is a real number (neither NaN nor infinite).
  @inlinable public var isFinite: Bool { value.isFinite }
}

/// Needle depth, in millimetres.
@frozen public struct Millimetres: PhysicalQuantity {
  public var value: Double
  @inlinable public init(_ value: Double) { self.value = value }
}

/// A rate: needle cycles per second, or an RF carrier frequency.
@frozen public struct Hertz: PhysicalQuantity {
  public var value: Double
  @inlinable public init(_ value: Double) { self.value = value }
}

/// RF energy, in millijoules.
@frozen public struct Millijoules: PhysicalQuantity {
  public var value: Double
  @inlinable public init(_ value: Double) { self.value = value }
}

/// RF power, in watts.
@frozen public struct Watts: PhysicalQuantity {
  public var value: Double
  @inlinable public init(_ value: Double) { self.value = value }
}

/// Electrical impedance, in ohms.
@frozen public struct Ohms: PhysicalQuantity {
  public var value: Double
  @inlinable public init(_ value: Double) { self.value = value }
}

/// Temperature, in degrees Celsius.
@frozen public struct Celsius: PhysicalQuantity {
  public var value: Double
  @inlinable public init(_ value: Double) { self.value = value }
}

/// A duration in milliseconds.
@frozen public struct Milliseconds: PhysicalQuantity {
  public var value: Double
  @inlinable public init(_ value: Double) { self.value = value }
}

/// A duration in seconds.
@frozen public struct Seconds: PhysicalQuantity {
  public var value: Double
  @inlinable public init(_ value: Double) { self.value = value }
}

/// A point or span on a pen's uptime clock, in whole microseconds (virtual time in the simulator).
@frozen public struct Microseconds: Comparable, Hashable, Sendable {
  public var rawValue: UInt64
  @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }
  @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
  @inlinable public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
  /// Zero microseconds.
  @inlinable public static var zero: Self { Self(rawValue: 0) }
  /// Whole milliseconds as microseconds.
  @inlinable public static func milliseconds(_ ms: UInt64) -> Self { Self(rawValue: ms &* 1000) }
  /// Whole seconds as microseconds.
  @inlinable public static func seconds(_ s: UInt64) -> Self { Self(rawValue: s &* 1_000_000) }
}

/// A set of named bits over a fixed-width integer.
///
/// The pure core cannot use `OptionSet`: its conformance drags in array-literal initialisers that
/// allocate, which `-no-allocations` refuses. This gives the same operations without them.
public protocol FlagSet: Hashable, Sendable {
  associatedtype RawValue: FixedWidthInteger & Sendable
  var rawValue: RawValue { get set }
  init(rawValue: RawValue)
}

extension FlagSet {
  /// No bits set.
  @inlinable public static var empty: Self { Self(rawValue: 0) }
  @inlinable public var isEmpty: Bool { rawValue == 0 }
  /// True when every bit of `other` is set here.
  @inlinable public func contains(_ other: Self) -> Bool {
    rawValue & other.rawValue == other.rawValue
  }
  @inlinable public func union(_ other: Self) -> Self { Self(rawValue: rawValue | other.rawValue) }
  @inlinable public func intersection(_ other: Self) -> Self {
    Self(rawValue: rawValue & other.rawValue)
  }
  @inlinable public mutating func insert(_ other: Self) { rawValue |= other.rawValue }
  @inlinable public mutating func remove(_ other: Self) { rawValue &= ~other.rawValue }
  /// Sets or clears the bits of `other`.
  @inlinable public mutating func set(_ other: Self, _ on: Bool) {
    if on { insert(other) } else { remove(other) }
  }
}
