import PenSafety
import PenWire
import Testing

@Suite("Session envelope")
struct EnvelopeTests {
  @Test("SR-009: the envelope is the intersection of pen, area and preset, never wider than any")
  func intersection() throws {
    let e = try Fixture.envelope()
    // rf200 reaches 3.5 mm but the forehead allows RF needling to 1.0 mm.
    #expect(e.maxDepth == Millimetres(1.0))
    // The pen's 4 Hz is below the area's 150 Hz.
    #expect(e.maxSpeed == Hertz(4))
    // The area's 30 mJ/pin is below the pen's 62.
    #expect(e.maxRFEnergyPerPin == Millijoules(30))
    #expect(e.rfDoseCap == Millijoules(80_000))
    #expect(e.recommendedDepth.max == Millimetres(1.0))
    #expect(e.minImpedance == Ohms(40) && e.maxImpedance == Ohms(600))
  }

  @Test("SR-009: a mechanical pen on the forehead gets the mechanical depth limit")
  func mechanicalDepth() throws {
    let e = try Fixture.envelope(.mn100, .forehead, Fixture.mechanicalForehead)
    #expect(e.maxDepth == Millimetres(0.75))
    #expect(!e.rfAllowed)
    #expect(e.maxRFEnergyPerPin == .zero)
  }

  @Test(
    "SR-009: a preset default deeper than the area allows is refused, naming value, limit and area")
  func presetDefaultOutsideArea() {
    var preset = Fixture.mechanicalForehead
    preset.depth = SoftRange(Millimetres(1.5), min: Millimetres(0.25), max: Millimetres(1.5))
    #expect(
      throws: EnvelopeError.aboveLimit(.depth, value: 1.5, limit: 0.5, source: .area(.periorbital))
    ) {
      _ = try SessionEnvelope.build(
        model: .mn100, area: .periorbital, preset: preset, skin: .typeII)
    }
  }

  @Test("SR-009: a preset speed above the pen's capability is refused, naming the pen")
  func presetBeyondPen() {
    var preset = Fixture.mechanicalForehead
    preset.speed = SoftRange(Hertz(160), min: Hertz(60), max: Hertz(160))
    #expect(
      throws: EnvelopeError.aboveLimit(.speed, value: 160, limit: 150, source: .penModel(.mn100))
    ) {
      _ = try SessionEnvelope.build(model: .mn100, area: .cheeks, preset: preset, skin: .typeII)
    }
  }

  @Test("SR-009: a recommended range that does not contain its default is refused")
  func inconsistentPreset() {
    var preset = Fixture.mechanicalForehead
    preset.depth = SoftRange(Millimetres(0.5), min: Millimetres(0.55), max: Millimetres(0.6))
    #expect(throws: EnvelopeError.inconsistentPreset(.depth, value: 0.5, min: 0.55, max: 0.6)) {
      _ = try SessionEnvelope.build(model: .mn100, area: .forehead, preset: preset, skin: .typeII)
    }
  }

  @Test("SR-009: a preset value that is not a number is refused")
  func notANumber() {
    var preset = Fixture.rfForehead
    preset.rfEnergyPerPin = SoftRange(Millijoules(.nan), min: .zero, max: Millijoules(20))
    #expect(throws: EnvelopeError.notANumber(.rfEnergyPerPin)) {
      _ = try Fixture.envelope(.rf200, .forehead, preset)
    }
  }

  @Test("SR-008: an RF preset for an area where RF is not allowed is refused")
  func rfPresetWhereNotAllowed() {
    #expect(throws: EnvelopeError.rfNotAllowed(area: .periorbital)) {
      _ = try Fixture.envelope(.rf200, .periorbital, Fixture.rfForehead)
    }
  }

  @Test("SR-008: an RF preset on a mechanical pen is refused")
  func rfPresetOnMechanicalPen() {
    #expect(throws: EnvelopeError.rfOnMechanicalPen(model: .mn100)) {
      _ = try Fixture.envelope(.mn100, .forehead, Fixture.rfForehead)
    }
  }

  @Test("SR-008: an RF pen in a no-RF area is limited to mechanical needling")
  func rfPenInNoRFArea() throws {
    var preset = Fixture.mechanicalForehead
    preset.depth = SoftRange(Millimetres(0.5), min: Millimetres(0.5), max: Millimetres(0.5))
    preset.speed = SoftRange(Hertz(2), min: Hertz(1), max: Hertz(2))
    let e = try Fixture.envelope(.rf200, .periorbital, preset)
    #expect(!e.rfAllowed)
    #expect(e.maxRFEnergyPerPin == .zero)
    #expect(e.rfDoseCap == .zero)
  }

  @Test(
    "SR-010: the RF energy limit per pin scales with skin type",
    arguments: [
      (FitzpatrickType.typeI, 62.0), (.typeIII, 62.0), (.typeIV, 49.6), (.typeV, 40.3),
      (.typeVI, 31.0),
    ])
  func fitzpatrickScaling(_ skin: FitzpatrickType, _ expected: Double) throws {
    var preset = Fixture.rfForehead
    preset.depth = SoftRange(Millimetres(1.5), min: Millimetres(1.0), max: Millimetres(2.0))
    preset.rfEnergyPerPin = SoftRange(Millijoules(20), min: Millijoules(10), max: Millijoules(25))
    let e = try SessionEnvelope.build(model: .rf200, area: .cheeks, preset: preset, skin: skin)
    #expect(abs(e.maxRFEnergyPerPin.value - expected) < 1e-9)
  }

  @Test(
    "SR-010: a preset within the type II limit is refused for type VI skin when above its limit")
  func fitzpatrickRefusesHighEnergy() {
    var preset = Fixture.rfForehead
    preset.depth = SoftRange(Millimetres(1.5), min: Millimetres(1.0), max: Millimetres(2.0))
    preset.rfEnergyPerPin = SoftRange(Millijoules(40), min: Millijoules(30), max: Millijoules(50))
    #expect(
      throws: EnvelopeError.aboveLimit(
        .rfEnergyPerPin, value: 40, limit: 31, source: .skinType(.typeVI))
    ) {
      _ = try SessionEnvelope.build(model: .rf200, area: .cheeks, preset: preset, skin: .typeVI)
    }
  }

  @Test("SR-027: a pen refuses a wire envelope beyond its own copy of the area limits")
  func wireEnvelopeCheckedByPen() throws {
    var message = try Fixture.envelope().wireMessage(sessionID: 1)
    #expect(try SessionEnvelope.fromWire(message, model: .rf200).maxDepth == Millimetres(1.0))
    message.maxDepth = Millimetres(2.0)
    #expect(
      throws: EnvelopeError.aboveLimit(.depth, value: 2.0, limit: 1.0, source: .area(.forehead))
    ) {
      _ = try SessionEnvelope.fromWire(message, model: .rf200)
    }
    message.maxDepth = Millimetres(1.0)
    message.rfDoseCap = Millijoules(1_000_000)
    #expect(throws: EnvelopeError.self) { _ = try SessionEnvelope.fromWire(message, model: .rf200) }
    #expect(throws: EnvelopeError.rfOnMechanicalPen(model: .mn100)) {
      _ = try SessionEnvelope.fromWire(
        try Fixture.envelope().wireMessage(sessionID: 1), model: .mn100)
    }
  }
}
