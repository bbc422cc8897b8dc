/// What a treatment session did over time, as the records store keeps it: one sample per entry.
public struct SessionSeries: Sendable, Hashable {
  /// Seconds since the session started.
  public var times: [Double]
  /// Measured needle depth, mm.
  public var depth: [Double]
  /// Measured needle speed, Hz.
  public var speed: [Double]
  /// RF energy delivered so far in the session, mJ (as telemetry's `rf_delivered`).
  public var deliveredEnergy: [Double]

  public init(times: [Double], depth: [Double], speed: [Double], deliveredEnergy: [Double]) {
    self.times = times
    self.depth = depth
    self.speed = speed
    self.deliveredEnergy = deliveredEnergy
  }
}

/// A treatment session's report: a summary table and charts of depth, speed and delivered RF
/// energy over time. One self-contained HTML page.
public enum SessionReport {
  /// The report: `summary` rows (area, preset, outcome, …) as given, then the charts.
  public static func html(
    title: String = "Treatment session", summary: [(label: String, value: String)],
    series: SessionSeries
  ) -> String {
    var page = HTMLPage(title: title)
    page.heading(title, level: 1)
    page.table(header: ["", ""], rows: summary.map { [$0.label, $0.value] })
    page.raw("<div class=\"charts\">\n")
    page.raw(
      chart(
        id: "session-depth", title: "Needle depth", yLabel: "depth (mm)", times: series.times,
        values: series.depth, color: "#1f77b4"
      ).svg())
    page.raw(
      chart(
        id: "session-speed", title: "Needle speed", yLabel: "speed (Hz)", times: series.times,
        values: series.speed, color: "#2ca02c"
      ).svg())
    page.raw(
      chart(
        id: "session-energy", title: "Delivered RF energy", yLabel: "energy (J)",
        times: series.times, values: series.deliveredEnergy.map { $0 / 1000 }, color: "#d62728"
      ).svg())
    page.raw("</div>\n")
    let n = [
      series.times.count, series.depth.count, series.speed.count, series.deliveredEnergy.count,
    ]
    if Set(n).count > 1 {
      page.paragraph(
        "The series have different lengths (times \(n[0]), depth \(n[1]), speed \(n[2]), energy \(n[3])); each chart shows the samples that have a time.",
        cssClass: "muted")
    }
    return page.html
  }

  static func chart(
    id: String, title: String, yLabel: String, times: [Double], values: [Double], color: String
  ) -> SVGChart {
    SVGChart(
      id: id, title: title, xLabel: "time (s)", yLabel: yLabel,
      series: [SVGChart.Series(name: title, x: times, y: values, style: .line, color: color)],
      height: 300)
  }
}
