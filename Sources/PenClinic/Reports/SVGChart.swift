import Foundation

/// A small self-contained SVG chart: line and scatter series on linear axes with ticks, labels and
/// a legend. Pure string building, no dependency; every text is escaped.
public struct SVGChart: Sendable, Hashable {
  /// How a series is drawn.
  public enum Style: String, Sendable, Hashable {
    case line
    case dashedLine
    case scatter
  }

  /// A named set of points.
  public struct Series: Sendable, Hashable {
    public var name: String
    public var x: [Double]
    public var y: [Double]
    public var style: Style
    /// Whether the legend names it (a second line of a band need not be named twice).
    public var inLegend: Bool
    /// A CSS colour ("#1f77b4"); only `#`, letters and digits are kept.
    public var color: String

    public init(
      name: String, x: [Double], y: [Double], style: Style, color: String, inLegend: Bool = true
    ) {
      self.name = name
      self.x = x
      self.y = y
      self.style = style
      self.color = color
      self.inLegend = inLegend
    }

    /// The finite points, in order (extra values of the longer array are ignored).
    var points: [(x: Double, y: Double)] {
      zip(x, y).filter { $0.0.isFinite && $0.1.isFinite }.map { (x: $0.0, y: $0.1) }
    }
  }

  /// The chart's id in its document (letters, digits and `-` kept): unique per page.
  public var id: String
  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var series: [Series]
  public var width: Double
  public var height: Double
  /// Lines with more points are reduced to the minimum and maximum of each of this many buckets,
  /// so that a long session stays small without hiding a peak.
  public var maxLinePoints: Int

  public init(
    id: String, title: String, xLabel: String, yLabel: String, series: [Series],
    width: Double = 640, height: Double = 360, maxLinePoints: Int = 1_500
  ) {
    self.id = id
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.series = series
    self.width = width
    self.height = height
    self.maxLinePoints = maxLinePoints
  }

  /// The plot area inside the margins.
  struct Frame {
    var left: Double, top: Double, right: Double, bottom: Double
    var xRange: Axis, yRange: Axis
    func px(_ x: Double) -> Double {
      left + (x - xRange.lower) / (xRange.upper - xRange.lower) * (right - left)
    }
    func py(_ y: Double) -> Double {
      bottom - (y - yRange.lower) / (yRange.upper - yRange.lower) * (bottom - top)
    }
  }

  /// The chart as an `<svg>` element.
  public func svg() -> String {
    let all = series.flatMap(\.points)
    let xAxis = Axis.nice(all.map(\.x))
    let yAxis = Axis.nice(all.map(\.y))
    let named = series.filter(\.inLegend).count
    let legendHeight = 18.0 * Double((named + 1) / 2)
    let frame = Frame(
      left: 64, top: 34, right: width - 16, bottom: height - 46 - legendHeight, xRange: xAxis,
      yRange: yAxis)
    let c = Markup.coordinate
    var s =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"\(Self.safeID(id))\" class=\"chart\" width=\"\(c(width))\" height=\"\(c(height))\" viewBox=\"0 0 \(c(width)) \(c(height))\" role=\"img\" aria-label=\"\(Markup.escape(title))\">\n"
    s += "<title>\(Markup.escape(title))</title>\n"
    s += "<rect x=\"0\" y=\"0\" width=\"\(c(width))\" height=\"\(c(height))\" fill=\"#ffffff\"/>\n"
    s +=
      "<text x=\"\(c(width / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(Markup.escape(title))</text>\n"
    s += axes(frame)
    // Clip so that a series outside the axes (never, with nice axes) cannot draw over the labels.
    let clip = "\(Self.safeID(id))-plot"
    s +=
      "<clipPath id=\"\(clip)\"><rect x=\"\(c(frame.left - 5))\" y=\"\(c(frame.top - 5))\" width=\"\(c(frame.right - frame.left + 10))\" height=\"\(c(frame.bottom - frame.top + 10))\"/></clipPath>\n"
    s += "<g clip-path=\"url(#\(clip))\">\n"
    for item in series { s += draw(item, frame) }
    s += "</g>\n"
    s += legend(frame)
    s += "</svg>\n"
    return s
  }

  func axes(_ f: Frame) -> String {
    let c = Markup.coordinate
    var s = "<g class=\"axes\" font-size=\"11\" fill=\"#333333\">\n"
    for tick in f.yRange.ticks() {
      let y = f.py(tick)
      s +=
        "<line x1=\"\(c(f.left))\" y1=\"\(c(y))\" x2=\"\(c(f.right))\" y2=\"\(c(y))\" stroke=\"#e3e3e3\"/>\n"
      s +=
        "<text x=\"\(c(f.left - 6))\" y=\"\(c(y + 4))\" text-anchor=\"end\">\(Markup.escape(f.yRange.label(tick)))</text>\n"
    }
    for tick in f.xRange.ticks() {
      let x = f.px(tick)
      s +=
        "<line x1=\"\(c(x))\" y1=\"\(c(f.bottom))\" x2=\"\(c(x))\" y2=\"\(c(f.bottom + 5))\" stroke=\"#333333\"/>\n"
      s +=
        "<text x=\"\(c(x))\" y=\"\(c(f.bottom + 17))\" text-anchor=\"middle\">\(Markup.escape(f.xRange.label(tick)))</text>\n"
    }
    s +=
      "<polyline points=\"\(c(f.left)),\(c(f.top)) \(c(f.left)),\(c(f.bottom)) \(c(f.right)),\(c(f.bottom))\" fill=\"none\" stroke=\"#333333\"/>\n"
    s +=
      "<text x=\"\(c((f.left + f.right) / 2))\" y=\"\(c(f.bottom + 34))\" text-anchor=\"middle\" font-size=\"12\">\(Markup.escape(xLabel))</text>\n"
    s +=
      "<text transform=\"translate(16 \(c((f.top + f.bottom) / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">\(Markup.escape(yLabel))</text>\n"
    s += "</g>\n"
    return s
  }

  func draw(_ item: Series, _ f: Frame) -> String {
    let c = Markup.coordinate
    let color = Self.safeColor(item.color)
    var points = item.points
    switch item.style {
    case .scatter:
      var s = "<g class=\"series scatter\" fill=\"\(color)\">\n"
      for p in points {
        s += "<circle cx=\"\(c(f.px(p.x)))\" cy=\"\(c(f.py(p.y)))\" r=\"3.5\"/>\n"
      }
      return s + "</g>\n"
    case .line, .dashedLine:
      if points.count > maxLinePoints { points = Self.decimate(points, buckets: maxLinePoints / 2) }
      guard !points.isEmpty else { return "" }
      let path = points.map { "\(c(f.px($0.x))),\(c(f.py($0.y)))" }.joined(separator: " ")
      let dash = item.style == .dashedLine ? " stroke-dasharray=\"6 4\"" : ""
      return
        "<polyline class=\"series line\" points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.8\"\(dash)/>\n"
    }
  }

  func legend(_ f: Frame) -> String {
    let c = Markup.coordinate
    var s = "<g class=\"legend\" font-size=\"11\">\n"
    let columnWidth = (width - 80) / 2
    for (i, item) in series.filter(\.inLegend).enumerated() {
      let x = 64 + Double(i % 2) * columnWidth
      let y = f.bottom + 52 + 18 * Double(i / 2)
      let color = Self.safeColor(item.color)
      switch item.style {
      case .scatter:
        s += "<circle cx=\"\(c(x + 9))\" cy=\"\(c(y - 4))\" r=\"3.5\" fill=\"\(color)\"/>\n"
      case .line, .dashedLine:
        let dash = item.style == .dashedLine ? " stroke-dasharray=\"6 4\"" : ""
        s +=
          "<line x1=\"\(c(x))\" y1=\"\(c(y - 4))\" x2=\"\(c(x + 18))\" y2=\"\(c(y - 4))\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
      }
      s += "<text x=\"\(c(x + 24))\" y=\"\(c(y))\">\(Markup.escape(item.name))</text>\n"
    }
    return s + "</g>\n"
  }

  /// The minimum and maximum of each bucket, in time order: the outline of the curve.
  static func decimate(_ points: [(x: Double, y: Double)], buckets: Int) -> [(x: Double, y: Double)]
  {
    let size = Int((Double(points.count) / Double(max(1, buckets))).rounded(.up))
    var out: [(x: Double, y: Double)] = []
    var start = 0
    while start < points.count {
      let bucket = points[start..<min(points.count, start + size)]
      let low = bucket.min { $0.y < $1.y }!
      let high = bucket.max { $0.y < $1.y }!
      if low.x <= high.x {
        out.append(low)
        if high.x != low.x || high.y != low.y { out.append(high) }
      } else {
        out.append(high)
        out.append(low)
      }
      start += size
    }
    return out
  }

  /// Only ASCII letters, digits and `-`: an id can never break out of its attribute.
  static func safeID(_ id: String) -> String {
    let kept = id.unicodeScalars.filter {
      ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-"
    }
    return kept.isEmpty ? "chart" : String(String.UnicodeScalarView(kept))
  }

  /// Only `#`, letters and digits: a colour can never break out of its attribute.
  static func safeColor(_ color: String) -> String {
    let kept = color.unicodeScalars.filter {
      ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "#"
    }
    return kept.isEmpty ? "#000000" : String(String.UnicodeScalarView(kept.prefix(24)))
  }
}

/// A linear axis over "nice" bounds (1, 2 or 5 × 10ⁿ steps).
struct Axis: Hashable {
  var lower: Double
  var upper: Double
  var step: Double

  /// An axis covering `values` (and a unit range around a single value, or 0…1 for none).
  static func nice(_ values: [Double], targetTicks: Int = 6) -> Axis {
    let finite = values.filter(\.isFinite)
    var lo = finite.min() ?? 0
    var hi = finite.max() ?? 1
    if hi - lo < 1e-12 {
      let pad = max(abs(lo) * 0.1, 0.5)
      lo -= pad
      hi += pad
    }
    let step = niceStep((hi - lo) / Double(targetTicks))
    return Axis(
      lower: (lo / step).rounded(.down) * step, upper: (hi / step).rounded(.up) * step, step: step)
  }

  static func niceStep(_ raw: Double) -> Double {
    let exponent = Foundation.floor(Foundation.log10(raw))
    let base = Foundation.pow(10, exponent)
    let fraction = raw / base
    let nice: Double = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10
    return nice * base
  }

  func ticks() -> [Double] {
    var out: [Double] = []
    var i = 0
    while true {
      let v = lower + Double(i) * step
      if v > upper + step * 1e-6 || i > 1000 { break }
      out.append(abs(v) < step * 1e-9 ? 0 : v)
      i += 1
    }
    return out
  }

  /// A tick's label with as many decimals as the step needs.
  func label(_ value: Double) -> String {
    let places = max(0, Int(Foundation.ceil(-Foundation.log10(step) - 1e-9)))
    return Markup.number(value, places: places)
  }
}
