import Foundation
import PenSafety
public import PenWire

/// A quantity the calibration procedure sweeps and corrects (calibration.md section 2).
public enum CalibrationQuantity: String, Sendable, Hashable, CaseIterable, Codable {
  case depth
  case speed
  case rf

  /// A person's name for the quantity.
  public var title: String {
    switch self {
    case .depth: "Needle depth"
    case .speed: "Needle speed"
    case .rf: "RF energy per pin"
    }
  }

  /// The unit setpoints and measurements are given in.
  public var unit: String {
    switch self {
    case .depth: "mm"
    case .speed: "Hz"
    case .rf: "mJ"
    }
  }

  /// True when errors are relative (fractions of the setpoint); depth errors are absolute (mm).
  public var errorIsRelative: Bool { self != .depth }

  /// The largest error a calibrated pen may show (calibration.md section 4): 0.05 mm, 5 %, 10 %.
  public var tolerance: Double {
    let t = CalibrationTolerances.standard
    switch self {
    case .depth: return t.depth.value
    case .speed: return t.speed
    case .rf: return t.rfEnergy
    }
  }

  /// An error for a person: "0.012 mm" or "1.3 %".
  public func format(error: Double) -> String {
    errorIsRelative
      ? String(format: "%.1f %%", error * 100) : String(format: "%.3f mm", error)
  }
}

/// Which quantities a technician calibrates: one, or all that the pen has (`depth|speed|rf|all`).
public enum CalibrationScope: String, Sendable, Hashable, CaseIterable, Codable {
  case depth
  case speed
  case rf
  case all

  /// The quantities to sweep on a pen of `model`, in sweep order. `all` on a pen without RF is
  /// depth and speed; `rf` alone on such a pen is refused.
  public func quantities(for model: PenModelID) throws(CalibrationError) -> [CalibrationQuantity] {
    let hasRF = PenCapability.of(model).hasRF
    switch self {
    case .depth: return [.depth]
    case .speed: return [.speed]
    case .rf:
      guard hasRF else { throw .fixtureNotApplicable(quantity: .rf, model: model) }
      return [.rf]
    case .all: return hasRF ? [.depth, .speed, .rf] : [.depth, .speed]
    }
  }
}
