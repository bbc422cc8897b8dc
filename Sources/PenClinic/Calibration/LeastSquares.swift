/// A straight line fitted by least squares to measured points: `y = slope × x + intercept`, or
/// `y = slope × x` when fitted through the origin (calibration.md section 6, step 3).
public struct LinearFit: Sendable, Hashable, Codable {
  public var slope: Double
  /// Zero for a fit through the origin.
  public var intercept: Double
  /// Whether the intercept was fixed at zero.
  public var throughOrigin: Bool
  /// `y − fitted(x)` at each point, in the order given.
  public var residuals: [Double]

  public init(slope: Double, intercept: Double, throughOrigin: Bool, residuals: [Double]) {
    self.slope = slope
    self.intercept = intercept
    self.throughOrigin = throughOrigin
    self.residuals = residuals
  }

  /// The fitted value at `x`.
  public func callAsFunction(_ x: Double) -> Double { slope * x + intercept }

  /// The x at which the fit gives `y` (nil for a flat line).
  public func inverse(_ y: Double) -> Double? {
    slope == 0 ? nil : (y - intercept) / slope
  }

  /// The root mean square of the residuals.
  public var rmsResidual: Double {
    residuals.isEmpty
      ? 0 : (residuals.reduce(0) { $0 + $1 * $1 } / Double(residuals.count)).squareRoot()
  }

  /// The largest absolute residual.
  public var maxAbsResidual: Double { residuals.map(abs).max() ?? 0 }

  /// Least squares line `y = a x + b` through at least two points with distinct x.
  public static func line(x: [Double], y: [Double]) throws(FitError) -> LinearFit {
    try check(x, y, needed: 2)
    let n = Double(x.count)
    let meanX = x.reduce(0, +) / n
    let meanY = y.reduce(0, +) / n
    // Centred sums: better conditioned than the textbook normal equations.
    var sxx = 0.0
    var sxy = 0.0
    for (xi, yi) in zip(x, y) {
      sxx += (xi - meanX) * (xi - meanX)
      sxy += (xi - meanX) * (yi - meanY)
    }
    guard sxx > 0 else { throw .degenerate("every x is \(meanX): a line needs two distinct x") }
    let slope = sxy / sxx
    let intercept = meanY - slope * meanX
    return LinearFit(
      slope: slope, intercept: intercept, throughOrigin: false,
      residuals: zip(x, y).map { $1 - (slope * $0 + intercept) })
  }

  /// Least squares line through the origin `y = a x`, from at least one point with x ≠ 0.
  public static func throughOrigin(x: [Double], y: [Double]) throws(FitError) -> LinearFit {
    try check(x, y, needed: 1)
    var sxx = 0.0
    var sxy = 0.0
    for (xi, yi) in zip(x, y) {
      sxx += xi * xi
      sxy += xi * yi
    }
    guard sxx > 0 else { throw .degenerate("every x is 0: a line through the origin needs x ≠ 0") }
    let slope = sxy / sxx
    return LinearFit(
      slope: slope, intercept: 0, throughOrigin: true,
      residuals: zip(x, y).map { $1 - slope * $0 })
  }

  static func check(_ x: [Double], _ y: [Double], needed: Int) throws(FitError) {
    guard x.count == y.count else {
      throw .degenerate("\(x.count) x values but \(y.count) y values")
    }
    guard x.count >= needed else {
      throw .degenerate("\(x.count) points where at least \(needed) are needed")
    }
    if let bad = (x + y).first(where: { !$0.isFinite }) {
      throw .degenerate("a value is not a finite number (\(bad))")
    }
  }
}

/// Why a least squares fit could not be made.
public enum FitError: Error, Sendable, Hashable, CustomStringConvertible {
  case degenerate(String)

  public var description: String {
    switch self {
    case .degenerate(let why): "least squares fit impossible: \(why)"
    }
  }
}
