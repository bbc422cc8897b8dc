import PenClinic
import Testing

@Suite("Screening: contraindications")
struct ScreeningTests {
  @Test("no contraindication clears, with nothing recorded")
  func nothingPresent() {
    #expect(screen(ScreeningAnswers(), usesRF: true) == .cleared(recordedReasons: [:]))
  }

  @Test("an absolute contraindication refuses, even with a reason and other items present")
  func absoluteRefuses() {
    let answers = ScreeningAnswers(
      present: [.anticoagulants, .isotretinoin6Months, .pregnancy],
      reasons: [.anticoagulants: "prescriber approved", .isotretinoin6Months: "patient insists"])
    let outcome = screen(answers, usesRF: false)
    // Checklist order, absolute items only.
    #expect(outcome == .refused(absolute: [.pregnancy, .isotretinoin6Months]))
    #expect(!outcome.isCleared)
    #expect("\(outcome)".contains("isotretinoin within the last 6 months (isotretinoin_6_months)"))
  }

  @Test(
    "a relative contraindication without a reason needs one; an empty or blank one does not count")
  func relativeNeedsReason() {
    for reasons: [Contraindication: String] in [
      [:], [.anticoagulants: ""], [.anticoagulants: " \n\t"],
    ] {
      let answers = ScreeningAnswers(present: [.anticoagulants, .herpesHistory], reasons: reasons)
      #expect(screen(answers, usesRF: false) == .needsReason([.herpesHistory, .anticoagulants]))
    }
  }

  @Test("relative contraindications with reasons clear, and the trimmed reasons are recorded")
  func relativeWithReasonClears() {
    let answers = ScreeningAnswers(
      present: [.anticoagulants, .herpesHistory],
      reasons: [
        .anticoagulants: "  warfarin; Dr Lee approved 2026-11-01 ",
        .herpesHistory: "valaciclovir cover started",
        .pregnancy: "not present, so not recorded",
      ])
    #expect(
      screen(answers, usesRF: true)
        == .cleared(recordedReasons: [
          .anticoagulants: "warfarin; Dr Lee approved 2026-11-01",
          .herpesHistory: "valaciclovir cover started",
        ]))
  }

  @Test(
    "implanted electronics and a metal implant refuse RF but do not bear on mechanical needling")
  func rfOnlyContraindications() {
    let answers = ScreeningAnswers(present: [.implantedElectronics, .metalImplantInArea])
    #expect(
      screen(answers, usesRF: true)
        == .refused(absolute: [.implantedElectronics, .metalImplantInArea]))
    #expect(screen(answers, usesRF: false) == .cleared(recordedReasons: [:]))
    for item in [Contraindication.implantedElectronics, .metalImplantInArea] {
      #expect(item.severity(usesRF: true) == .absolute)
      #expect(item.severity(usesRF: false) == .notApplicable)
    }
  }

  @Test("raw values are stable snake_case, unique, and every item has a description")
  func rawValues() {
    let raw = Contraindication.allCases.map(\.rawValue)
    #expect(Set(raw).count == raw.count)
    #expect(Contraindication(rawValue: "isotretinoin_6_months") == .isotretinoin6Months)
    #expect(Contraindication(rawValue: "implanted_electronics") == .implantedElectronics)
    for item in Contraindication.allCases {
      #expect(item.rawValue.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" }, "\(item)")
      #expect(!item.summary.isEmpty)
      // Everything but the RF-only items bears on both kinds of treatment alike.
      if item != .implantedElectronics && item != .metalImplantInArea {
        #expect(item.severity(usesRF: true) == item.severity(usesRF: false), "\(item)")
        #expect(item.severity(usesRF: false) != .notApplicable)
      }
    }
  }
}
