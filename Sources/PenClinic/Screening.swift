import Foundation

/// How a contraindication bears on a treatment.
public enum ContraindicationSeverity: String, Sendable, Hashable, Codable {
  /// Treatment is refused.
  case absolute
  /// Treatment may go ahead only with a recorded reason (e.g. the prescriber's approval).
  case relative
  /// Does not bear on this kind of treatment (an RF-only item on a mechanical session).
  case notApplicable = "not_applicable"
}

/// A contraindication from the screening checklist (Firmware-Specs/presets.md "Screening";
/// source: clinical.md "Skin type, screening and courses"). Raw values are stable: the CLI and
/// the records store use them.
public enum Contraindication: String, CaseIterable, Sendable, Hashable, Codable {
  case activeSkinCancer = "active_skin_cancer"
  case openWoundOrIrritatedSkin = "open_wound_or_irritated_skin"
  case activeAcne = "active_acne"
  case activeEczema = "active_eczema"
  case activePsoriasis = "active_psoriasis"
  case activeRosacea = "active_rosacea"
  case activeHerpes = "active_herpes"
  case herpesHistory = "herpes_history"
  case skinInfection = "skin_infection"
  case keloidHistory = "keloid_history"
  case tanWithin2Weeks = "tan_within_2_weeks"
  case bleedingDisorder = "bleeding_disorder"
  case anticoagulants = "anticoagulants"
  case pregnancy = "pregnancy"
  case breastfeeding = "breastfeeding"
  case isotretinoin6Months = "isotretinoin_6_months"
  case isotretinoin6To12Months = "isotretinoin_6_to_12_months"
  case needleMetalAllergy = "needle_metal_allergy"
  case anaestheticAllergy = "anaesthetic_allergy"
  case recentRetinoidOrExfoliant = "recent_retinoid_or_exfoliant"
  case implantedElectronics = "implanted_electronics"
  case metalImplantInArea = "metal_implant_in_area"

  /// What the clinician is asked, in plain words.
  public var summary: String {
    switch self {
    case .activeSkinCancer: "active skin cancer"
    case .openWoundOrIrritatedSkin: "open wounds or irritated skin in the area"
    case .activeAcne: "active (inflamed) acne in the area"
    case .activeEczema: "active eczema in the area"
    case .activePsoriasis: "active psoriasis in the area"
    case .activeRosacea: "active rosacea in the area"
    case .activeHerpes: "an active herpes outbreak (cold sore)"
    case .herpesHistory: "a history of herpes outbreaks (needs antiviral cover)"
    case .skinInfection: "a skin infection"
    case .keloidHistory: "a history of keloid scarring"
    case .tanWithin2Weeks: "a tan or sunburn within the last 2 weeks"
    case .bleedingDisorder: "a bleeding disorder (needs the prescriber's approval)"
    case .anticoagulants: "anticoagulant medication (needs the prescriber's approval)"
    case .pregnancy: "pregnancy"
    case .breastfeeding: "breastfeeding (nursing)"
    case .isotretinoin6Months: "isotretinoin within the last 6 months"
    case .isotretinoin6To12Months: "isotretinoin 6 to 12 months ago"
    case .needleMetalAllergy: "allergy to stainless steel or gold (the needles)"
    case .anaestheticAllergy: "allergy to topical anaesthetic"
    case .recentRetinoidOrExfoliant: "retinol or exfoliating acids in the last few days"
    case .implantedElectronics: "a pacemaker, ICD or other implanted electronics"
    case .metalImplantInArea: "a metal implant in the treatment area"
    }
  }

  /// Whether this item refuses, needs a recorded reason, or does not bear on the treatment.
  public func severity(usesRF: Bool) -> ContraindicationSeverity {
    switch self {
    case .implantedElectronics, .metalImplantInArea:
      // RF current through the needles can upset implanted electronics and heat metal.
      return usesRF ? .absolute : .notApplicable
    case .herpesHistory, .bleedingDisorder, .anticoagulants, .isotretinoin6To12Months,
      .anaestheticAllergy, .recentRetinoidOrExfoliant:
      return .relative
    case .activeSkinCancer, .openWoundOrIrritatedSkin, .activeAcne, .activeEczema,
      .activePsoriasis, .activeRosacea, .activeHerpes, .skinInfection, .keloidHistory,
      .tanWithin2Weeks, .pregnancy, .breastfeeding, .isotretinoin6Months, .needleMetalAllergy:
      return .absolute
    }
  }
}

/// What screening found: the contraindications present and, for relative ones, the reason the
/// clinician records for going ahead.
public struct ScreeningAnswers: Sendable, Hashable {
  public var present: Set<Contraindication>
  public var reasons: [Contraindication: String]

  public init(present: Set<Contraindication> = [], reasons: [Contraindication: String] = [:]) {
    self.present = present
    self.reasons = reasons
  }
}

/// The result of screening.
public enum ScreeningOutcome: Sendable, Hashable, CustomStringConvertible {
  /// Treatment may go ahead; the reasons recorded for each relative contraindication present.
  case cleared(recordedReasons: [Contraindication: String])
  /// Treatment is refused: the absolute contraindications present, in checklist order.
  case refused(absolute: [Contraindication])
  /// Relative contraindications present without a reason, in checklist order.
  case needsReason([Contraindication])

  /// True when treatment may go ahead.
  public var isCleared: Bool {
    if case .cleared = self { return true }
    return false
  }

  public var description: String {
    switch self {
    case .cleared(let reasons) where reasons.isEmpty:
      return "screening cleared"
    case .cleared(let reasons):
      let list = Contraindication.allCases.compactMap { c in
        reasons[c].map { "\(c.rawValue): \($0)" }
      }
      return "screening cleared, with reasons recorded for \(list.joined(separator: "; "))"
    case .refused(let absolute):
      let list = absolute.map { "\($0.summary) (\($0.rawValue))" }
      return
        "treatment refused: absolute contraindication: \(list.joined(separator: ", ")); do not treat"
    case .needsReason(let items):
      let list = items.map { "\($0.summary) (\($0.rawValue))" }
      return
        "relative contraindication without a recorded reason: \(list.joined(separator: ", ")); record why treatment may go ahead (e.g. the prescriber's approval) or do not treat"
    }
  }
}

/// Screens `answers` for a treatment with or without RF: any absolute contraindication refuses;
/// otherwise every relative one needs a reason that is not empty or whitespace.
public func screen(_ answers: ScreeningAnswers, usesRF: Bool) -> ScreeningOutcome {
  let present = Contraindication.allCases.filter { answers.present.contains($0) }
  let absolute = present.filter { $0.severity(usesRF: usesRF) == .absolute }
  if !absolute.isEmpty { return .refused(absolute: absolute) }
  var recorded: [Contraindication: String] = [:]
  var missing: [Contraindication] = []
  for c in present where c.severity(usesRF: usesRF) == .relative {
    let reason = answers.reasons[c]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    if reason.isEmpty {
      missing.append(c)
    } else {
      recorded[c] = reason
    }
  }
  if !missing.isEmpty { return .needsReason(missing) }
  return .cleared(recordedReasons: recorded)
}
