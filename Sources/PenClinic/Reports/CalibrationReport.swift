import Foundation

/// The technician's calibration report: verdict, correction, errors before and after against the
/// tolerances, and per quantity a chart of measured against setpoint with the ideal and fitted
/// lines. One self-contained HTML page.
public enum CalibrationReport {
  static let beforeColor = "#d62728"
  static let afterColor = "#1f77b4"
  static let idealColor = "#555555"
  static let fitColor = "#ff7f0e"

  /// The report for `outcome`.
  public static func html(_ outcome: CalibrationOutcome) -> String {
    var page = HTMLPage(title: "Calibration \(outcome.serial)")
    page.heading("Calibration of \(outcome.serial)", level: 1)
    let verdict =
      outcome.passed
      ? "<span class=\"verdict pass\">PASSED — valid for arming</span>"
      : "<span class=\"verdict fail\">\(outcome.markedBad ? "FAILED — marked bad" : "FAILED")</span>"
    page.raw("<p>\(verdict)</p>\n")
    page.table(
      header: ["", ""],
      rows: [
        ["Pen", "\(outcome.serial) (\(outcome.model.catalogueName))"],
        ["Made", Self.timestamp(outcome.time)],
        ["Source", "\(outcome.source.specName)"],
        ["Technician", "\(outcome.technician)"],
        ["Quantities", outcome.quantities.map(\.quantity.title).joined(separator: ", ")],
        ["Record flags", Self.flags(outcome)],
      ])
    if !outcome.findings.isEmpty {
      page.heading("Findings")
      page.list(outcome.findings)
    }

    page.heading("Correction")
    let before = outcome.previous
    let after = outcome.coefficients
    page.table(
      header: ["Coefficient", "In force before", "Stored now"],
      rows: [
        [
          "depth_gain", Markup.number(before.depthGain, places: 6),
          Markup.number(after.depthGain, places: 6),
        ],
        [
          "depth_offset (mm)", Markup.number(before.depthOffset.value, places: 3),
          Markup.number(after.depthOffset.value, places: 3),
        ],
        [
          "speed_gain", Markup.number(before.speedGain, places: 6),
          Markup.number(after.speedGain, places: 6),
        ],
        [
          "rf_gain", Markup.number(before.rfGain, places: 6),
          Markup.number(after.rfGain, places: 6),
        ],
      ])

    page.heading("Errors")
    page.table(
      header: ["Quantity", "Largest error before", "Largest error after", "Tolerance", "Result"],
      rows: outcome.quantities.map { q in
        [
          q.quantity.title, q.quantity.format(error: q.maxErrorBefore),
          q.maxErrorAfter.map { q.quantity.format(error: $0) } ?? "not verified",
          q.quantity.format(error: q.tolerance), q.withinTolerance ? "within" : "OUT",
        ]
      })
    page.paragraph(
      "Errors are the largest over the sweep's setpoints, rounded up to the record's step (1 µm; 0.1 %); depth absolute, speed and RF energy relative to the setpoint.",
      cssClass: "muted")

    for (index, q) in outcome.quantities.enumerated() {
      page.heading(q.quantity.title)
      page.raw("<div class=\"charts\">\n")
      page.raw(chart(q, id: "calibration-\(index)-\(q.quantity.rawValue)").svg())
      page.raw(errorChart(q, id: "calibration-\(index)-\(q.quantity.rawValue)-error").svg())
      page.raw("</div>\n")
      page.table(
        header: [
          "Setpoint (\(q.quantity.unit))", "Before (\(q.quantity.unit))", "Error before",
          "After (\(q.quantity.unit))", "Error after",
        ],
        rows: rows(q))
    }
    page.paragraph(
      "Record (64 bytes): " + outcome.recordBytes.map { String(format: "%02x", $0) }.joined(),
      cssClass: "muted")
    return page.html
  }

  /// Measured against setpoint: the first sweep, the verification sweep, the ideal line, and the
  /// line fitted to the first sweep.
  static func chart(_ q: QuantityCalibration, id: String) -> SVGChart {
    let setpoints = (q.before + q.after).map(\.setpoint)
    let lo = min(0, setpoints.min() ?? 0)
    let hi = setpoints.max() ?? 1
    var series: [SVGChart.Series] = [
      SVGChart.Series(
        name: "ideal (measured = setpoint)", x: [lo, hi], y: [lo, hi], style: .dashedLine,
        color: idealColor),
      SVGChart.Series(
        name: q.fit.throughOrigin
          ? "fit before: \(Markup.number(q.fit.slope, places: 4)) × setpoint"
          : "fit before: \(Markup.number(q.fit.slope, places: 4)) × setpoint \(q.fit.intercept < 0 ? "−" : "+") \(Markup.number(abs(q.fit.intercept), places: 3))",
        x: [lo, hi], y: [q.fit(lo), q.fit(hi)], style: .line, color: fitColor),
      SVGChart.Series(
        name: "before (correction in force)", x: q.before.map(\.setpoint),
        y: q.before.map(\.measured), style: .scatter, color: beforeColor),
    ]
    if !q.after.isEmpty {
      series.append(
        SVGChart.Series(
          name: "after (new correction)", x: q.after.map(\.setpoint), y: q.after.map(\.measured),
          style: .scatter, color: afterColor))
    }
    return SVGChart(
      id: id, title: "\(q.quantity.title): measured against setpoint",
      xLabel: "setpoint (\(q.quantity.unit))", yLabel: "measured (\(q.quantity.unit))",
      series: series)
  }

  /// The error at each setpoint, before and after, inside the tolerance band.
  static func errorChart(_ q: QuantityCalibration, id: String) -> SVGChart {
    // Relative errors in percent, depth errors in mm, as the tables show them.
    let scale = q.quantity.errorIsRelative ? 100.0 : 1.0
    let unit = q.quantity.errorIsRelative ? "%" : "mm"
    let setpoints = (q.before + q.after).map(\.setpoint)
    let lo = setpoints.min() ?? 0
    let hi = setpoints.max() ?? 1
    var series: [SVGChart.Series] = [
      SVGChart.Series(
        name: "tolerance ±\(q.quantity.format(error: q.tolerance))", x: [lo, hi],
        y: [q.tolerance * scale, q.tolerance * scale], style: .dashedLine, color: idealColor),
      SVGChart.Series(
        name: "−tolerance", x: [lo, hi], y: [-q.tolerance * scale, -q.tolerance * scale],
        style: .dashedLine, color: idealColor, inLegend: false),
      SVGChart.Series(
        name: "before", x: q.before.map(\.setpoint), y: q.before.map { $0.error * scale },
        style: .scatter, color: beforeColor),
    ]
    if !q.after.isEmpty {
      series.append(
        SVGChart.Series(
          name: "after", x: q.after.map(\.setpoint), y: q.after.map { $0.error * scale },
          style: .scatter, color: afterColor))
    }
    return SVGChart(
      id: id, title: "\(q.quantity.title): error at each setpoint",
      xLabel: "setpoint (\(q.quantity.unit))", yLabel: "error (\(unit))", series: series)
  }

  /// One row per setpoint of either sweep.
  static func rows(_ q: QuantityCalibration) -> [[String]] {
    let places = q.quantity == .depth ? 3 : 2
    let setpoints = Array(Set((q.before + q.after).map(\.setpoint))).sorted()
    return setpoints.map { s in
      let b = q.before.first { $0.setpoint == s }
      let a = q.after.first { $0.setpoint == s }
      return [
        Markup.number(s, places: places),
        b.map { Markup.number($0.measured, places: places) } ?? "–",
        b.map { q.quantity.format(error: $0.error) } ?? "–",
        a.map { Markup.number($0.measured, places: places) } ?? "–",
        a.map { q.quantity.format(error: $0.error) } ?? "–",
      ]
    }
  }

  static func flags(_ outcome: CalibrationOutcome) -> String {
    var flags: [String] = []
    if outcome.record.verified { flags.append("verified") }
    if outcome.record.markedBad { flags.append("marked_bad") }
    return flags.isEmpty ? "none" : flags.joined(separator: ", ")
  }

  static func timestamp(_ date: Date) -> String {
    let f = ISO8601DateFormatter()
    f.timeZone = TimeZone(identifier: "UTC")
    return f.string(from: date)
  }
}
