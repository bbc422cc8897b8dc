import Foundation
import PenClinic
import PenWire
import Testing

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// Parses `text` as XML and returns the parser's error, or nil when it is well-formed; counts the
/// elements by name.
final class XMLCheck: NSObject, XMLParserDelegate {
  var elements: [String: Int] = [:]
  var text = ""

  static func parse(_ document: String) -> (error: (any Error)?, check: XMLCheck) {
    let check = XMLCheck()
    let parser = XMLParser(data: Data(document.utf8))
    parser.delegate = check
    return (parser.parse() ? nil : parser.parserError ?? CocoaError(.coderReadCorrupt), check)
  }

  func parser(
    _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]
  ) {
    elements[elementName, default: 0] += 1
  }

  func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
}

@Suite("Reports")
struct ReportTests {
  static let hostile = "<script>alert('x')</script> & \"quoted\""

  /// An outcome with known points and a hostile serial and finding, made by hand.
  static func outcome(passed: Bool = true) -> CalibrationOutcome {
    func points(_ q: CalibrationQuantity, gain: Double, offset: Double) -> [CalibrationPoint] {
      [0.5, 1, 1.5, 2, 2.5].map { CalibrationPoint(q, setpoint: $0, measured: gain * $0 + offset) }
    }
    let depthBefore = points(.depth, gain: 1.06, offset: 0.08)
    let depthAfter = points(.depth, gain: 1.0, offset: 0.004)
    let speedBefore = points(.speed, gain: 0.92, offset: 0)
    let speedAfter = points(.speed, gain: 1.003, offset: 0)
    let record = CalibrationRecord(
      source: .technician, markedBad: !passed, verified: true, model: .mn100,
      serial: FixedASCII<16>(string: "SIM-MN100-000003")!, timestamp: 1_780_000_000,
      depthGain: 0.943396, depthOffset: Millimetres(-0.075), speedGain: 1.086957, rfGain: 1,
      depthError: Millimetres(0.004), speedError: 0.003, rfError: 0, technician: 4711)
    return CalibrationOutcome(
      serial: hostile, model: .mn100, source: .technician,
      time: Date(timeIntervalSince1970: 1_780_000_000), technician: 4711, previous: .neutral,
      previousRecord: nil, coefficients: CalibrationCoefficients(record),
      quantities: [
        QuantityCalibration(
          quantity: .depth, before: depthBefore, after: depthAfter,
          fit: try! LinearFit.line(x: depthBefore.map(\.setpoint), y: depthBefore.map(\.measured)),
          maxErrorBefore: 0.23, maxErrorAfter: 0.004, tolerance: 0.05),
        QuantityCalibration(
          quantity: .speed, before: speedBefore, after: speedAfter,
          fit: try! LinearFit.throughOrigin(
            x: speedBefore.map(\.setpoint), y: speedBefore.map(\.measured)),
          maxErrorBefore: 0.08, maxErrorAfter: 0.003, tolerance: 0.05),
      ],
      passed: passed, markedBad: !passed, findings: passed ? [] : ["finding " + hostile],
      record: record, recordBytes: try! record.encodedBytes())
  }

  @Test("the calibration report is one well-formed page with a chart per quantity")
  func calibrationReport() throws {
    let html = CalibrationReport.html(Self.outcome())
    let (error, check) = XMLCheck.parse(html)
    #expect(error == nil, "\(String(describing: error))")
    #expect(check.elements["svg"] == 4, "measured and error charts for each quantity")
    #expect(check.elements["circle"] ?? 0 >= 20, "before and after points, and legend markers")
    #expect(html.contains("Needle depth: measured against setpoint"))
    #expect(html.contains("ideal (measured = setpoint)") && html.contains("fit before: 1.0600"))
    #expect(html.contains("PASSED"))
    #expect(html.contains("0.230 mm") && html.contains("0.004 mm") && html.contains("0.3 %"))
    // Self-contained: no script, no external resource.
    #expect(!html.contains("<script") && !html.contains("src=") && !html.contains("href="))
  }

  @Test("text in a report is escaped: a hostile serial or finding stays text")
  func escaping() throws {
    let html = CalibrationReport.html(Self.outcome(passed: false))
    #expect(!html.contains("<script>"))
    #expect(
      html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"))
    let (error, check) = XMLCheck.parse(html)
    #expect(error == nil)
    #expect(check.elements["script"] == nil)
    #expect(check.text.contains("finding " + Self.hostile), "the parser reads the text back")
    #expect(html.contains("FAILED — marked bad"))
  }

  @Test("escaping covers the XML specials and control characters")
  func markupEscape() {
    #expect(Markup.escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;")
    #expect(Markup.escape("bell\u{07}") == "bell\u{FFFD}")
    #expect(Markup.escape("tab\tok") == "tab\tok")
    #expect(Markup.number(-0.0001, places: 2) == "0.00")
    #expect(Markup.number(.nan, places: 2) == "–")
  }

  @Test("the session report charts depth, speed and energy; a long session keeps its peaks")
  func sessionReport() throws {
    let n = 20_000
    let times = (0..<n).map { Double($0) * 0.01 }
    var depth = [Double](repeating: 1.0, count: n)
    depth[12_345] = 1.9  // one spike among 20,000 samples
    let speed = [Double](repeating: 2.0, count: n)
    let energy = (0..<n).map { Double($0) * 5 }  // mJ
    let html = SessionReport.html(
      summary: [(label: "Area", value: "forehead"), (label: "Note", value: Self.hostile)],
      series: SessionSeries(times: times, depth: depth, speed: speed, deliveredEnergy: energy))
    let (error, check) = XMLCheck.parse(html)
    #expect(error == nil, "\(String(describing: error))")
    #expect(check.elements["svg"] == 3 && check.elements["polyline"] ?? 0 >= 3)
    #expect(!html.contains("<script>") && html.contains("&lt;script&gt;"))
    #expect(html.contains("Delivered RF energy") && html.contains("energy (J)"))
    #expect(html.utf8.count < 400_000, "decimated: \(html.utf8.count) bytes")
    // The depth axis reaches the spike: it was kept through decimation.
    let depthChart = try #require(html.components(separatedBy: "session-speed").first)
    #expect(depthChart.contains(">2.0<") || depthChart.contains(">1.9<"))
    let decimated = SVGChart.Series(name: "d", x: times, y: depth, style: .line, color: "#000")
    let svg = SVGChart(id: "d", title: "d", xLabel: "t", yLabel: "d", series: [decimated]).svg()
    let ys = try #require(
      svg.components(separatedBy: "points=\"").last?.components(separatedBy: "\"").first
    )
    .split(separator: " ").compactMap { Double($0.split(separator: ",").last ?? "") }
    #expect(ys.count < 2 * 1_500 && ys.count > 100)
    #expect(Set(ys).count == 2, "the flat line and its one spike")
  }

  @Test("chart axes take nice ticks and a colour cannot break out of its attribute")
  func chartDetails() throws {
    let chart = SVGChart(
      id: "x\" onload=\"1", title: "T", xLabel: "setpoint (mm)", yLabel: "measured (mm)",
      series: [
        SVGChart.Series(
          name: "points", x: [0.5, 3.5], y: [0.57, 3.43], style: .scatter,
          color: "red\" onload=\"alert(1)")
      ])
    let svg = chart.svg()
    let (error, check) = XMLCheck.parse(svg)
    #expect(error == nil)
    #expect(!svg.contains("onload=") && !svg.contains("\"1\""))
    #expect(check.elements["circle"] == 3, "two points and the legend's marker")
    for tick in ["0.5", "1.0", "2.0", "3.0", "3.5"] {
      #expect(svg.contains(">\(tick)</text>"), "\(tick)")
    }
    #expect(svg.contains(">setpoint (mm)</text>") && svg.contains(">measured (mm)</text>"))
  }
}
