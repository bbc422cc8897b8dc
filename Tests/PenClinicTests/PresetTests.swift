import Foundation
import PenClinic
import PenSafety
import PenWire
import Testing

/// Writes preset files into a fresh temporary directory.
struct PresetScratch {
  let directory: URL

  init() throws {
    directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "presets-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  }

  @discardableResult
  func write(_ name: String, _ text: String) throws -> URL {
    let url = directory.appendingPathComponent(name)
    try Data(text.utf8).write(to: url)
    return url
  }

  /// The 1-based line of the first line of `text` that contains `needle`.
  static func line(of needle: String, in text: String) -> Int {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    return (lines.firstIndex { $0.contains(needle) } ?? -1) + 1
  }
}

/// Loads `url` into the shipped library and returns the refusal, or nil when it loaded.
func refusal(loading url: URL) throws -> PresetFileError? {
  let library = try PresetLibrary.shipped()
  do {
    _ = try library.adding(contentsOf: url)
    return nil
  } catch {
    return error
  }
}

let allSkinTypes: [FitzpatrickType] = [.typeI, .typeII, .typeIII, .typeIV, .typeV, .typeVI]
let allAreas: [TreatmentAreaID] = (1...12).map { TreatmentAreaID(rawValue: UInt8($0))! }

@Suite("Presets: shipped library and session envelopes")
struct PresetTests {
  @Test("every area has a mechanical preset, and an RF preset exactly where the area allows RF")
  func shippedCoverage() throws {
    let library = try PresetLibrary.shipped()
    for area in allAreas {
      let limits = try #require(TreatmentAreaLimits.of(area))
      let presets = library.presets(for: area)
      let name = "\(area.catalogueName)"
      #expect(presets.map(\.id).contains("\(name)-mechanical"), "\(name)")
      #expect(presets.map(\.id).contains("\(name)-rf") == limits.rfAllowed, "\(name)")
      for preset in presets {
        // The refusal messages suggest `<area>-mechanical` / `<area>-rf`: the ids must match.
        #expect(preset.id == "\(name)-\(preset.kind.rawValue)")
        #expect(preset.origin == .shipped)
        #expect(!preset.isTestPatch)
      }
    }
    #expect(library.presets.count == 22)
  }

  @Test(
    "SR-009, SR-010: every shipped preset builds an envelope on its pen model for skin types I-VI")
  func everyShippedPresetBuilds() throws {
    let library = try PresetLibrary.shipped()
    for preset in library.presets {
      let model: PenModelID = preset.kind == .rf ? .rf200 : .mn100
      let pen = PenCapability.of(model)
      let area = try #require(TreatmentAreaLimits.of(preset.area))
      for skin in allSkinTypes {
        let envelope = try preset.envelope(model: model, skin: skin)
        #expect(envelope.recommendedDepth == preset.limits.depth, "\(preset.id)")
        #expect(envelope.maxDepth <= (preset.kind == .rf ? area.maxRFDepth : area.maxDepth))
        #expect(envelope.rfAllowed == (preset.kind == .rf))
        if preset.kind == .rf {
          // The preset layer scales the written (type I-III) energies by the skin factor.
          let factor = skin.rfEnergyFactor
          #expect(
            envelope.recommendedRFEnergyPerPin.value.value
              == preset.limits.rfEnergyPerPin.value.value * factor, "\(preset.id) \(skin)")
          #expect(envelope.recommendedRFEnergyPerPin.max <= envelope.maxRFEnergyPerPin)
          #expect(envelope.maxRFEnergyPerPin <= area.maxRFEnergyPerPin * factor)
        }
      }
      // Defaults sit on the pen's depth steps, so the pen sets exactly what the preset says.
      let steps = preset.limits.depth.value.value / pen.depthStep.value
      #expect(abs(steps - steps.rounded()) < 1e-9, "\(preset.id) depth not on a step")
    }
  }

  @Test("SR-009: a periorbital depth override beyond the area's limit is refused with the limit")
  func periorbitalTooDeep() throws {
    let preset = try #require(try PresetLibrary.shipped().preset(id: "periorbital-mechanical"))
    for confirmed in [false, true] {
      let overrides = PresetOverrides(depth: Millimetres(0.6), confirmed: confirmed)
      #expect(
        throws: PresetRefusal.aboveLimit(
          .depth, value: 0.6, limit: 0.5, source: .area(.periorbital), area: .periorbital)
      ) {
        _ = try preset.envelope(model: .mn100, skin: .typeII, overrides: overrides)
      }
    }
    let refusal = PresetRefusal.aboveLimit(
      .depth, value: 1.2, limit: 0.5, source: .area(.periorbital), area: .periorbital)
    #expect(
      refusal.description
        == "depth 1.2 mm for periorbital is above the area's hard limit 0.5 mm (treatment-areas.json); choose at most 0.5 mm"
    )
  }

  @Test("SR-008: an RF preset on the mechanical mn100 is refused, naming the preset and the pen")
  func rfPresetOnMechanicalPen() throws {
    let preset = try #require(try PresetLibrary.shipped().preset(id: "forehead-rf"))
    do {
      _ = try preset.envelope(model: .mn100, skin: .typeII)
      Issue.record("an RF preset built an envelope on mn100")
    } catch {
      #expect(error == .rfOnMechanicalPen(preset: "forehead-rf", area: .forehead, model: .mn100))
      #expect(
        error.description
          == "preset forehead-rf uses RF, but pen model mn100 has no RF generator: load forehead-mechanical, or use an RF pen"
      )
    }
  }

  @Test("a mechanical preset on the RF handpiece is refused, naming both and the alternative")
  func mechanicalPresetOnRFPen() throws {
    let library = try PresetLibrary.shipped()
    let forehead = try #require(library.preset(id: "forehead-mechanical"))
    #expect {
      _ = try forehead.envelope(model: .rf200, skin: .typeII)
    } throws: { error in
      let text = "\(error)"
      return text.contains("forehead-mechanical") && text.contains("rf200")
        && text.contains("load forehead-rf")
    }
    let periorbital = try #require(library.preset(id: "periorbital-mechanical"))
    #expect {
      _ = try periorbital.envelope(model: .rf200, skin: .typeII)
    } throws: { error in
      "\(error)".contains("periorbital allows no RF, so use a mechanical pen")
    }
  }

  @Test("an override inside the recommended range becomes the default, range unchanged")
  func overrideInsideRecommended() throws {
    let preset = try #require(try PresetLibrary.shipped().preset(id: "forehead-mechanical"))
    let envelope = try preset.envelope(
      model: .mn100, skin: .typeIII,
      overrides: PresetOverrides(depth: Millimetres(0.6), speed: Hertz(110)))
    #expect(
      envelope.recommendedDepth
        == SoftRange(Millimetres(0.6), min: Millimetres(0.25), max: Millimetres(0.75)))
    #expect(envelope.recommendedSpeed == SoftRange(Hertz(110), min: Hertz(80), max: Hertz(120)))
  }

  @Test("an override outside the recommended range but inside the hard limits needs confirmation")
  func overrideNeedsConfirmation() throws {
    let preset = try #require(try PresetLibrary.shipped().preset(id: "periorbital-mechanical"))
    let unconfirmed = PresetOverrides(depth: Millimetres(0.45))
    #expect(
      throws: PresetRefusal.outsideRecommended(
        .depth, value: 0.45, min: 0.2, max: 0.3, preset: "periorbital-mechanical")
    ) {
      _ = try preset.envelope(model: .mn100, skin: .typeII, overrides: unconfirmed)
    }
    var confirmed = unconfirmed
    confirmed.confirmed = true
    let envelope = try preset.envelope(model: .mn100, skin: .typeII, overrides: confirmed)
    #expect(envelope.recommendedDepth.value == Millimetres(0.45))
    #expect(envelope.recommendedDepth.max == Millimetres(0.45))
    #expect(envelope.maxDepth == Millimetres(0.5))
  }

  @Test("SR-009: a depth beyond the pen model's reach is refused, naming the pen")
  func overrideBeyondPen() throws {
    let preset = try #require(try PresetLibrary.shipped().preset(id: "body-mechanical"))
    let overrides = PresetOverrides(depth: Millimetres(3.0), confirmed: true)
    do {
      _ = try preset.envelope(model: .mn100, skin: .typeII, overrides: overrides)
      Issue.record("3.0 mm built an envelope on mn100")
    } catch {
      #expect(
        error.description
          == "depth 3.0 mm is beyond pen model mn100's maximum 2.5 mm (pen-models.json); choose at most 2.5 mm"
      )
    }
  }

  @Test(
    "SR-010: RF energy is scaled for skin type V, and an override above the scaled limit is refused"
  )
  func rfEnergyForDarkerSkin() throws {
    let preset = try #require(try PresetLibrary.shipped().preset(id: "cheeks-rf"))
    let typeV = try preset.envelope(model: .rf200, skin: .typeV)
    #expect(typeV.recommendedRFEnergyPerPin.value == Millijoules(30 * 0.65))
    #expect(typeV.recommendedRFEnergyPerPin.max == Millijoules(45 * 0.65))
    #expect(typeV.maxRFEnergyPerPin == Millijoules(62 * 0.65))
    // Type VI: the cheeks' 62 mJ/pin halves to 31; 35 is refused even when confirmed.
    let overrides = PresetOverrides(rfEnergy: Millijoules(35), confirmed: true)
    do {
      _ = try preset.envelope(model: .rf200, skin: .typeVI, overrides: overrides)
      Issue.record("35 mJ/pin built for type VI")
    } catch {
      #expect(
        error
          == .aboveLimit(
            .rfEnergyPerPin, value: 35, limit: 31, source: .skinType(.typeVI), area: .cheeks))
      #expect(error.description.contains("Fitzpatrick type VI"))
    }
    // The same value is fine for type II (inside the hard limit, outside the soft range).
    let typeII = try preset.envelope(model: .rf200, skin: .typeII, overrides: overrides)
    #expect(typeII.recommendedRFEnergyPerPin.value == Millijoules(35))
  }

  @Test("overrides that are not positive numbers, or that do not apply, are refused")
  func invalidOverrides() throws {
    let library = try PresetLibrary.shipped()
    let mechanical = try #require(library.preset(id: "cheeks-mechanical"))
    #expect(throws: PresetRefusal.invalidOverride(.depth, value: -1)) {
      _ = try mechanical.envelope(
        model: .mn100, skin: .typeI, overrides: PresetOverrides(depth: Millimetres(-1)))
    }
    #expect {
      _ = try mechanical.envelope(
        model: .mn100, skin: .typeI, overrides: PresetOverrides(speed: Hertz(.nan)))
    } throws: { error in
      if case .invalidOverride(.speed, _) = error as? PresetRefusal { return true }
      return false
    }
    #expect(
      throws: PresetRefusal.overrideNotApplicable(.rfEnergyPerPin, preset: "cheeks-mechanical")
    ) {
      _ = try mechanical.envelope(
        model: .mn100, skin: .typeI, overrides: PresetOverrides(rfEnergy: Millijoules(10)))
    }
  }

  @Test("an RF energy whose power on the pen's pins exceeds the pen's 60 W is refused")
  func rfPowerLimit() throws {
    let preset = Preset(
      id: "short-pulse", name: "Short pulse", area: .forehead, kind: .rf,
      limits: PresetLimits(
        depth: SoftRange(Millimetres(0.75), min: Millimetres(0.5), max: Millimetres(1.0)),
        speed: SoftRange(Hertz(1), min: Hertz(0.5), max: Hertz(2)),
        rfEnergyPerPin: SoftRange(Millijoules(10), min: Millijoules(10), max: Millijoules(20)),
        rfPulseDuration: Milliseconds(10)),
      origin: .file("test"))
    // 20 mJ x 24 pins / 10 ms = 48 W: fine. 30 mJ: 72 W.
    _ = try preset.envelope(model: .rf200, skin: .typeI)
    #expect(
      throws: PresetRefusal.aboveLimit(
        .rfPower, value: 72, limit: 60, source: .penModel(.rf200), area: .forehead)
    ) {
      _ = try preset.envelope(
        model: .rf200, skin: .typeI,
        overrides: PresetOverrides(rfEnergy: Millijoules(30), confirmed: true))
    }
  }

  @Test("a test patch uses the minimum depth and scaled minimum energy with a small dose cap")
  func testPatch() throws {
    let preset = try #require(try PresetLibrary.shipped().preset(id: "forehead-rf"))
    let patch = preset.testPatch(model: .rf200, skin: .typeV)
    #expect(patch.isTestPatch)
    #expect(patch.id == "forehead-rf-test-patch")
    #expect(patch.limits.depth == .exactly(Millimetres(0.5)))
    #expect(patch.limits.speed == .exactly(Hertz(0.5)))
    #expect(patch.limits.rfEnergyPerPin == .exactly(Millijoules(10 * 0.65)))
    let envelope = try patch.envelope(model: .rf200, skin: .typeV)
    // 10 stamps x 24 pins x 6.5 mJ = 1.56 J, far under the preset's 60 J.
    #expect(envelope.rfDoseCap == Millijoules(10 * 24 * 6.5))
    #expect(envelope.recommendedRFEnergyPerPin.value == Millijoules(6.5))
    // Not scaled twice, and not usable for another skin type.
    #expect(
      throws: PresetRefusal.testPatchForOtherSkin(
        preset: "forehead-rf-test-patch", preparedFor: .typeV, requested: .typeII)
    ) {
      _ = try patch.envelope(model: .rf200, skin: .typeII)
    }
    let mechanical = try #require(try PresetLibrary.shipped().preset(id: "neck-mechanical"))
    let mechanicalPatch = mechanical.testPatch(model: .mn100, skin: .typeII)
    let e = try mechanicalPatch.envelope(model: .mn100, skin: .typeII)
    #expect(e.recommendedDepth == .exactly(Millimetres(0.5)))
    #expect(!e.rfAllowed)
  }

  @Test(
    "the default preset follows the pen: RF where the area allows it, else mechanical, else none")
  func defaultPreset() throws {
    let library = try PresetLibrary.shipped()
    #expect(library.defaultPreset(area: .forehead, model: .mn100)?.id == "forehead-mechanical")
    #expect(library.defaultPreset(area: .forehead, model: .rf200)?.id == "forehead-rf")
    #expect(
      library.defaultPreset(area: .periorbital, model: .mn100)?.id == "periorbital-mechanical")
    #expect(library.defaultPreset(area: .periorbital, model: .rf200) == nil)
    #expect(library.preset(id: "no-such-preset") == nil)
  }
}

@Suite("Presets: file format and refusals")
struct PresetFileTests {
  static let good = """
    # A clinic's forehead presets.
    area: forehead
    presets:
      - id: clinic-forehead-gentle
        name: "Forehead, gentle & slow"   # quoted text may hold '&' and '*'
        kind: mechanical
        depth_mm: {default: 0.3, min: 0.25, max: 0.5}
        speed_hz: {default: 90, min: 80, max: 100}
      - id: clinic-forehead-rf
        name: Forehead, RF, low energy
        kind: rf
        depth_mm:
          default: 0.75
          min: 0.5
          max: 1.0
        speed_hz: {default: 1, min: 0.5, max: 2}
        rf_energy_per_pin_mj: {default: 12, min: 10, max: 20}
        rf_pulse_ms: 70
        rf_dose_cap_j: 40
        tissue_temperature_cutoff_c: 41
    """

  /// The issue of `kind` in `error`, which must exist.
  func issue(
    _ error: PresetFileError?, _ matches: (PresetFileIssue.Kind) -> Bool,
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws -> PresetFileIssue {
    let error = try #require(error, "the file loaded", sourceLocation: sourceLocation)
    return try #require(
      error.issues.first { matches($0.kind) }, "\(error)", sourceLocation: sourceLocation)
  }

  @Test("a clinic's file loads beside the shipped presets, with its path as origin")
  func clinicFileLoads() throws {
    let scratch = try PresetScratch()
    let url = try scratch.write("clinic.yaml", Self.good)
    let library = try PresetLibrary.shipped().adding(contentsOf: url)
    let rf = try #require(library.preset(id: "clinic-forehead-rf"))
    #expect(rf.origin == .file(url.path))
    #expect(rf.limits.rfDoseCap == Millijoules(40_000))
    #expect(rf.limits.tissueTemperatureCutoff == Celsius(41))
    #expect(library.preset(id: "clinic-forehead-gentle")?.name == "Forehead, gentle & slow")
    #expect(library.presets(for: .forehead).count == 4)
    // The shipped preset still starts an RF pen on the forehead.
    #expect(library.defaultPreset(area: .forehead, model: .rf200)?.id == "forehead-rf")
    let envelope = try rf.envelope(model: .rf200, skin: .typeIV)
    #expect(envelope.tissueTemperatureCutoff == Celsius(41))
    #expect(envelope.rfDoseCap == Millijoules(40_000))
    // A directory loads every .yaml file in it.
    let fromDirectory = try PresetLibrary.shipped().adding(contentsOf: scratch.directory)
    #expect(fromDirectory.presets.count == 24)
  }

  @Test("a YAML syntax error names the file and line, and loads nothing")
  func syntaxError() throws {
    let text = "area: forehead\npresets:\n  - id: x\n    name: [unclosed\n    kind: rf\n"
    let url = try PresetScratch().write("broken.yaml", text)
    let error = try #require(try refusal(loading: url))
    #expect(error.file == url.path)
    guard case .syntax = error.kind else {
      Issue.record("expected a syntax error, got \(error)")
      return
    }
    #expect(error.line >= 4)
    #expect(error.field == "(file)")
    #expect(error.description.hasPrefix("\(url.path):\(error.line): (file): not valid YAML"))
  }

  @Test("an unknown field is refused with a suggestion, never ignored")
  func unknownField() throws {
    let text = Self.good.replacingOccurrences(
      of: "    speed_hz: {default: 90", with: "    sped_hz: {default: 90")
    let url = try PresetScratch().write("typo.yaml", text)
    let error = try refusal(loading: url)
    let typo = try issue(error) {
      if case .unknownField("sped_hz", "speed_hz") = $0 { true } else { false }
    }
    #expect(typo.line == PresetScratch.line(of: "sped_hz", in: text))
    #expect(typo.field == "presets[0].sped_hz")
    #expect(typo.description.contains("did you mean 'speed_hz'?"))
    // The real field is then missing, and that is reported too.
    let missing = try issue(error) { $0 == .missingField }
    #expect(missing.field == "presets[0].speed_hz")
  }

  @Test("SR-009: a depth above the area's hard limit names file, line, field, value and limit")
  func depthAboveHardLimit() throws {
    let text = Self.good.replacingOccurrences(
      of: "{default: 0.3, min: 0.25, max: 0.5}", with: "{default: 0.3, min: 0.25, max: 1.0}")
    let url = try PresetScratch().write("forehead.yaml", text)
    let error = try refusal(loading: url)
    let deep = try issue(error) {
      $0 == .aboveHardLimit(value: 1.0, limit: 0.75, unit: "mm", source: .area(.forehead))
    }
    let line = PresetScratch.line(of: "max: 1.0}", in: text)
    #expect(
      deep.description
        == "\(url.path):\(line): presets[0].depth_mm.max: 1.0 mm is above the forehead's hard limit 0.75 mm (treatment-areas.json); lower it"
    )
  }

  @Test("a recommended range with min above max is refused at the min")
  func minAboveMax() throws {
    let text = Self.good.replacingOccurrences(
      of: "{default: 90, min: 80, max: 100}", with: "{default: 90, min: 110, max: 100}")
    let url = try PresetScratch().write("range.yaml", text)
    let bad = try issue(try refusal(loading: url)) {
      $0 == .inconsistentRange(default: 90, min: 110, max: 100, unit: "Hz")
    }
    #expect(bad.field == "presets[0].speed_hz.min")
    #expect(bad.line == PresetScratch.line(of: "min: 110", in: text))
    #expect(bad.description.contains("min 110.0 Hz is above max 100.0 Hz"))
  }

  @Test("SR-008: an RF preset in the periorbital area is refused at its kind")
  func rfInPeriorbital() throws {
    let text = Self.good.replacingOccurrences(of: "area: forehead", with: "area: periorbital")
    let url = try PresetScratch().write("periorbital.yaml", text)
    let error = try refusal(loading: url)
    let rf = try issue(error) { $0 == .rfNotAllowed(area: .periorbital) }
    #expect(rf.field == "presets[1].kind")
    #expect(rf.line == PresetScratch.line(of: "kind: rf", in: text))
    #expect(rf.description.contains("periorbital does not allow RF"))
    // The mechanical preset in the same file is refused with it: all or nothing.
    #expect(error?.issues.allSatisfy { $0.field.hasPrefix("presets[1]") } == true)
  }

  @Test("a duplicate id in one file, or one that collides with a shipped id, is refused")
  func duplicateID() throws {
    let text = Self.good.replacingOccurrences(
      of: "id: clinic-forehead-rf", with: "id: clinic-forehead-gentle")
    let scratch = try PresetScratch()
    let url = try scratch.write("dup.yaml", text)
    let dup = try issue(try refusal(loading: url)) {
      if case .duplicateID("clinic-forehead-gentle", _, 4) = $0 { true } else { false }
    }
    #expect(dup.field == "presets[1].id")
    #expect(dup.line == 9)

    let shadow = Self.good.replacingOccurrences(
      of: "id: clinic-forehead-rf", with: "id: forehead-rf")
    let shadowURL = try scratch.write("shadow.yaml", shadow)
    let collision = try issue(try refusal(loading: shadowURL)) {
      if case .duplicateID("forehead-rf", "Presets/forehead.yaml", _) = $0 { true } else { false }
    }
    #expect(collision.line == 9)
    #expect(collision.field == "presets[1].id")
  }

  @Test("every problem in a file is reported, in one refusal, and nothing loads")
  func allProblemsReported() throws {
    let text = """
      area: forehead
      presets:
        - id: a
          name: A
          kind: mechanical
          depth_mm: {default: .nan, min: 0.25, max: 0.5}
          speed_hz: {default: "100", min: -5, max: 200}
          rf_pulse_ms: 60
        - id: B!
          name: ""
          kind: laser
          depth_mm: 0.5
          speed_hz: {default: 100, min: 80}
      """
    let url = try PresetScratch().write("many.yaml", text)
    let error = try #require(try refusal(loading: url))
    let found = error.issues.map { "\($0.line) \($0.field)" }
    #expect(
      found == [
        "6 presets[0].depth_mm.default", "7 presets[0].speed_hz.default",
        "7 presets[0].speed_hz.min", "8 presets[0].rf_pulse_ms", "9 presets[1].id",
        "10 presets[1].name", "11 presets[1].kind", "12 presets[1].depth_mm",
        "13 presets[1].speed_hz.max",
      ], "\(error)")
    #expect(error.issues[0].kind == .notFinite(".nan"))
    #expect(
      error.issues[1].kind
        == .wrongType(expected: "a number in Hz", found: "the quoted text \"100\""))
    #expect(error.issues[2].kind == .notPositive(-5, unit: "Hz"))
    #expect(error.issues[3].kind == .rfFieldOnMechanical)
    #expect(error.issues[4].kind == .invalidIdentifier("B!"))
    #expect(error.issues[6].kind == .unknownKind("laser"))
    #expect(error.issues[8].kind == .missingField)
    #expect(error.description.split(separator: "\n").count == error.issues.count)
  }

  @Test("an unknown area, a missing presets list and an empty file are refused")
  func structuralProblems() throws {
    let scratch = try PresetScratch()
    let area = try issue(
      try refusal(loading: scratch.write("a.yaml", "area: elbows\npresets: []\n"))
    ) { $0 == .unknownArea("elbows") }
    #expect(area.line == 1 && area.field == "area")
    _ = try issue(try refusal(loading: scratch.write("b.yaml", "area: neck\n"))) {
      $0 == .missingField
    }
    _ = try issue(try refusal(loading: scratch.write("c.yaml", "# nothing\n"))) {
      if case .syntax = $0 { true } else { false }
    }
    _ = try issue(try refusal(loading: scratch.write("d.yaml", "- a\n- b\n"))) {
      $0 == .wrongType(expected: "a mapping of fields", found: "a list")
    }
    _ = try issue(try refusal(loading: scratch.write("e.yaml", "area: neck\n---\narea: nose\n"))) {
      if case .syntax = $0 { true } else { false }
    }
  }

  @Test("an anchor-and-alias bomb is refused before it is expanded")
  func aliasBomb() throws {
    var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i in 1...12 {
      text +=
        "a\(i): &a\(i) [\(Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", "))]\n"
    }
    text += "? *a12\n: 1\narea: forehead\npresets: *a12\n"
    let bad = try issue(try refusal(loading: PresetScratch().write("bomb.yaml", text))) {
      if case .anchorsNotAllowed("&a0") = $0 { true } else { false }
    }
    #expect(bad.line == 1)
    // Even a single harmless anchor is refused: preset files are written out in full.
    let simple = Self.good.replacingOccurrences(
      of: "speed_hz: {default: 1, min: 0.5, max: 2}", with: "speed_hz: *speed"
    )
    .replacingOccurrences(
      of: "speed_hz: {default: 90, min: 80, max: 100}",
      with: "speed_hz: &speed {default: 1, min: 0.5, max: 2}")
    _ = try issue(try refusal(loading: PresetScratch().write("anchor.yaml", simple))) {
      if case .anchorsNotAllowed("&speed") = $0 { true } else { false }
    }
  }

  @Test("files over 1 MiB, and deeply nested ones, are refused without crashing")
  func hostileSizes() throws {
    let scratch = try PresetScratch()
    let big = Self.good + "\n" + String(repeating: "# padding\n", count: 110_000)
    let large = try issue(try refusal(loading: scratch.write("big.yaml", big))) {
      if case .tooLarge(_, 1_048_576) = $0 { true } else { false }
    }
    #expect(large.line == 1)
    let deep = "area: neck\npresets: " + String(repeating: "[", count: 5_000)
    _ = try issue(try refusal(loading: scratch.write("deep.yaml", deep))) {
      if case .syntax = $0 { true } else { false }
    }
    let many = "area: neck\npresets:\n" + String(repeating: "  - {}\n", count: 300)
    _ = try issue(try refusal(loading: scratch.write("many.yaml", many))) {
      if case .tooComplex = $0 { true } else { false }
    }
    let binary = Data([0xFF, 0xFE, 0x00, 0x41])
    let url = scratch.directory.appendingPathComponent("binary.yaml")
    try binary.write(to: url)
    _ = try issue(try refusal(loading: url)) { if case .syntax = $0 { true } else { false } }
  }

  @Test("infinite, negative and hexadecimal numbers are refused")
  func hostileNumbers() throws {
    let scratch = try PresetScratch()
    for (value, expected) in [
      (".inf", PresetFileIssue.Kind.notFinite(".inf")),
      ("1e400", .notFinite("1e400")),
      ("0", .notPositive(0, unit: "ms")),
      ("0x46", .wrongType(expected: "a number in ms", found: "'0x46'")),
      ("", .wrongType(expected: "a number in ms", found: "nothing")),
    ] {
      let text = Self.good.replacingOccurrences(
        of: "rf_pulse_ms: 70", with: "rf_pulse_ms: \(value)")
      let found = try issue(try refusal(loading: scratch.write("n.yaml", text))) { $0 == expected }
      #expect(found.field == "presets[1].rf_pulse_ms")
    }
  }

  @Test("RF energy above the pen's power at the preset's pulse is refused at the energy")
  func rfPowerInFile() throws {
    let text = Self.good.replacingOccurrences(of: "rf_pulse_ms: 70", with: "rf_pulse_ms: 10")
      .replacingOccurrences(of: "max: 20}", with: "max: 30}")
    let found = try issue(try refusal(loading: PresetScratch().write("p.yaml", text))) {
      $0 == .rfPowerAboveLimit(watts: 72, limit: 60, model: .rf200)
    }
    #expect(found.field == "presets[1].rf_energy_per_pin_mj.max")
  }

  @Test("a dose cap above the area's and a pen-model minimum are refused with their sources")
  func doseCapAndPenMinimum() throws {
    let text = Self.good.replacingOccurrences(of: "rf_dose_cap_j: 40", with: "rf_dose_cap_j: 90")
      .replacingOccurrences(
        of: "speed_hz: {default: 90, min: 80", with: "speed_hz: {default: 90, min: 20")
    let error = try refusal(loading: PresetScratch().write("cap.yaml", text))
    let cap = try issue(error) {
      $0 == .aboveHardLimit(value: 90, limit: 80, unit: "J", source: .area(.forehead))
    }
    #expect(cap.field == "presets[1].rf_dose_cap_j")
    let slow = try issue(error) {
      $0 == .belowHardLimit(value: 20, limit: 30, unit: "Hz", source: .penModel(.mn100))
    }
    #expect(slow.description.contains("below pen model mn100's minimum 30.0 Hz (pen-models.json)"))
  }
}
