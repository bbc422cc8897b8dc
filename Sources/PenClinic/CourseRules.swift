public import Foundation
public import PenSafety
public import PenWire

/// How a past session ended.
public enum PriorOutcome: String, Sendable, Hashable, Codable {
  /// Ran to the end.
  case completed
  /// Started and was stopped part-way: the skin may have been needled, so it counts.
  case aborted
  /// Refused before treating: never counts.
  case refused
}

/// A session from the patient's history, as the course rules need it.
public struct PriorSession: Sendable, Hashable {
  public var date: Date
  public var area: TreatmentAreaID
  public var usesRF: Bool
  public var isTestPatch: Bool
  public var outcome: PriorOutcome

  public init(
    date: Date, area: TreatmentAreaID, usesRF: Bool, isTestPatch: Bool, outcome: PriorOutcome
  ) {
    self.date = date
    self.area = area
    self.usesRF = usesRF
    self.isTestPatch = isTestPatch
    self.outcome = outcome
  }

  /// True when the session may have treated skin: completed, or aborted part-way.
  public var treated: Bool { outcome != .refused }
}

/// The clinician's reason for treating sooner than the minimum interval.
public struct CourseOverride: Sendable, Hashable {
  public var reason: String

  public init(reason: String) { self.reason = reason }
}

/// Whether a new session may go ahead under the course rules, and why.
public struct CourseDecision: Sendable, Hashable, CustomStringConvertible {
  public var isAllowed: Bool
  /// Why the session is refused, each naming dates, the interval and what to do; empty when allowed.
  public var refusals: [String]
  /// Allowed, but worth telling the clinician (a long course, an override used).
  public var warnings: [String]
  /// The override reason, when the override was needed and used; record it with the session.
  public var recordedOverride: String?
  /// This session's number in the area's current course (1 for a new course); 0 for a test patch.
  public var sessionInCourse: Int

  /// The refusals as one text, or nil when allowed.
  public var reason: String? { refusals.isEmpty ? nil : refusals.joined(separator: "; ") }

  public var description: String {
    var lines = [isAllowed ? "allowed" : "refused: \(refusals.joined(separator: "; "))"]
    lines += warnings.map { "warning: \($0)" }
    return lines.joined(separator: "\n")
  }
}

/// Course rules over a patient's history (Firmware-Specs/presets.md "Course rules"): pure
/// functions, no database.
public enum CourseRules {
  /// Sessions on one area at least this many days apart (clinical.md: 4-6 weeks; the low end).
  public static let minimumIntervalDays = 28
  /// A session within this many days of the previous one on the area continues its course
  /// (conservative choice: twice the upper end of 4-6 weeks).
  public static let courseGapDays = 84
  /// Courses are typically 3-6 sessions (clinical.md); more warns.
  public static let typicalCourseLength = 6

  /// How long after an RF test patch it must be read before the first full RF session
  /// (clinical.md: 24-48 h for types I-III, 5-7 days for IV-VI; the low ends).
  public static func testPatchReadingHours(for skin: FitzpatrickType) -> Int {
    skin.rawValue <= FitzpatrickType.typeIII.rawValue ? 24 : 5 * 24
  }

  /// Gregorian, UTC: days are counted in this calendar unless the clinic passes its own.
  public static let utcCalendar: Calendar = {
    var c = Calendar(identifier: .gregorian)
    c.timeZone = TimeZone(identifier: "UTC")!
    return c
  }()

  /// Whether a session on `area` at `date` may go ahead given `history`.
  ///
  /// - A test patch is always allowed (screening is checked separately).
  /// - Sessions on one area must be `minimumIntervalDays` calendar days apart, unless `override`
  ///   carries a reason that is not empty.
  /// - The `typicalCourseLength + 1`th session of a course warns.
  /// - The first full RF session on an area needs a completed RF test patch on that area, read
  ///   at least `testPatchReadingHours(for: skin)` before; no override.
  public static func check(
    history: [PriorSession], area: TreatmentAreaID, at date: Date, usesRF: Bool,
    isTestPatch: Bool, skin: FitzpatrickType, override: CourseOverride?,
    calendar: Calendar = utcCalendar
  ) -> CourseDecision {
    var decision = CourseDecision(
      isAllowed: true, refusals: [], warnings: [], recordedOverride: nil, sessionInCourse: 0)
    if isTestPatch { return decision }

    // Test patches and refused sessions do not count towards the interval or the course.
    let counted = history.filter { $0.area == area && $0.treated && !$0.isTestPatch }
      .sorted { $0.date < $1.date }
    let today = calendar.startOfDay(for: date)

    if let last = counted.last {
      let lastDay = calendar.startOfDay(for: last.date)
      let days = calendar.dateComponents([.day], from: lastDay, to: today).day ?? 0
      if days < minimumIntervalDays {
        let next = calendar.date(byAdding: .day, value: minimumIntervalDays, to: lastDay)!
        let text: String
        if days < 0 {
          text =
            "last \(area.spelling) session is dated \(day(last.date, calendar)), after this one (\(day(date, calendar))); check the clinic clock and the records, or pass --override-reason to proceed"
        } else {
          text =
            "last \(area.spelling) session \(day(last.date, calendar)), \(days) day\(days == 1 ? "" : "s") ago; sessions must be at least \(minimumIntervalDays) days apart (next from \(day(next, calendar))); pass --override-reason to proceed"
        }
        let reason = override?.reason.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if reason.isEmpty {
          decision.refusals.append(
            override == nil ? text : "\(text) (the override reason given is empty)")
        } else {
          decision.recordedOverride = reason
          decision.warnings.append(
            "\(area.spelling) session \(days) day\(days == 1 ? "" : "s") after the last (\(day(last.date, calendar))), under the \(minimumIntervalDays)-day minimum; override recorded: \(reason)"
          )
        }
      }
    }

    decision.sessionInCourse = courseNumber(counted, today: today, calendar: calendar)
    if decision.sessionInCourse > typicalCourseLength {
      let start = counted[counted.count - (decision.sessionInCourse - 1)].date
      decision.warnings.append(
        "this is session \(decision.sessionInCourse) of the \(area.spelling) course that began \(day(start, calendar)); courses are typically 3-\(typicalCourseLength) sessions (clinical.md): review the treatment plan"
      )
    }

    if usesRF {
      let hadFullRF = counted.contains { $0.usesRF && $0.date <= date }
      if !hadFullRF {
        if let refusal = testPatchRefusal(history, area: area, at: date, skin: skin, calendar) {
          decision.refusals.append(refusal)
        }
      }
    }

    decision.isAllowed = decision.refusals.isEmpty
    if !decision.isAllowed { decision.recordedOverride = nil }
    return decision
  }

  /// The number this session would have in the area's course: sessions each within
  /// `courseGapDays` of the one before, ending with this one.
  static func courseNumber(_ counted: [PriorSession], today: Date, calendar: Calendar) -> Int {
    var number = 1
    var later = today
    for session in counted.reversed() {
      let day = calendar.startOfDay(for: session.date)
      let gap = calendar.dateComponents([.day], from: day, to: later).day ?? 0
      guard gap <= courseGapDays else { break }
      number += 1
      later = day
    }
    return number
  }

  static func testPatchRefusal(
    _ history: [PriorSession], area: TreatmentAreaID, at date: Date, skin: FitzpatrickType,
    _ calendar: Calendar
  ) -> String? {
    let hours = testPatchReadingHours(for: skin)
    let wait = TimeInterval(hours) * 3600
    let waitText = hours >= 48 ? "\(hours / 24) days" : "\(hours) h"
    let patches = history.filter {
      $0.area == area && $0.usesRF && $0.isTestPatch && $0.outcome == .completed
        && $0.date <= date
    }.sorted { $0.date < $1.date }
    guard let latest = patches.last else {
      return
        "no completed RF test patch on \(area.spelling) is recorded; the first full RF session on an area needs one, read at least \(waitText) later for Fitzpatrick type \(skin.roman) (clinical.md): do a test patch first"
    }
    if patches.contains(where: { date.timeIntervalSince($0.date) >= wait }) { return nil }
    let elapsed = date.timeIntervalSince(latest.date)
    let ready = latest.date.addingTimeInterval(wait)
    return
      "the RF test patch on \(area.spelling) at \(minute(latest.date, calendar)) was \(elapsedText(elapsed)) ago; for Fitzpatrick type \(skin.roman) it must be read at least \(waitText) after (clinical.md): the first full RF session can start from \(minute(ready, calendar))"
  }

  static func elapsedText(_ seconds: TimeInterval) -> String {
    let hours = Int(seconds / 3600)
    if hours >= 48 { return "\(hours / 24) days" }
    return "\(hours) h"
  }

  static func day(_ date: Date, _ calendar: Calendar) -> String {
    let c = calendar.dateComponents([.year, .month, .day], from: date)
    return "\(c.year!)-\(pad(c.month!))-\(pad(c.day!))"
  }

  static func minute(_ date: Date, _ calendar: Calendar) -> String {
    let c = calendar.dateComponents([.hour, .minute], from: date)
    let zone = calendar.timeZone
    let name = zone.secondsFromGMT(for: date) == 0 ? "UTC" : zone.identifier
    return "\(day(date, calendar)) \(pad(c.hour!)):\(pad(c.minute!)) \(name)"
  }

  static func pad(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
}
