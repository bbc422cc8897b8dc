import Foundation
import PenClinic
import PenSafety
import PenWire
import Testing

@Suite("Course rules")
struct CourseRulesTests {
  /// Noon UTC on the given day.
  static func day(_ year: Int, _ month: Int, _ day: Int, hour: Int = 12) -> Date {
    CourseRules.utcCalendar.date(
      from: DateComponents(year: year, month: month, day: day, hour: hour))!
  }

  static func session(
    _ date: Date, _ area: TreatmentAreaID = .forehead, rf: Bool = false, patch: Bool = false,
    _ outcome: PriorOutcome = .completed
  ) -> PriorSession {
    PriorSession(date: date, area: area, usesRF: rf, isTestPatch: patch, outcome: outcome)
  }

  static func check(
    _ history: [PriorSession], _ area: TreatmentAreaID = .forehead, at date: Date, rf: Bool = false,
    patch: Bool = false, skin: FitzpatrickType = .typeII, override: String? = nil
  ) -> CourseDecision {
    CourseRules.check(
      history: history, area: area, at: date, usesRF: rf, isTestPatch: patch, skin: skin,
      override: override.map { CourseOverride(reason: $0) })
  }

  @Test("a session 14 days after the last on the same area is refused, naming dates and interval")
  func tooSoonRefused() {
    let history = [Self.session(Self.day(2026, 11, 10))]
    let decision = Self.check(history, at: Self.day(2026, 11, 24))
    #expect(!decision.isAllowed)
    #expect(
      decision.reason
        == "last forehead session 2026-11-10, 14 days ago; sessions must be at least 28 days apart (next from 2026-12-08); pass --override-reason to proceed"
    )
    #expect(decision.recordedOverride == nil)
    // Day 28 is allowed, whatever the hour.
    #expect(Self.check(history, at: Self.day(2026, 12, 8, hour: 1)).isAllowed)
    #expect(!Self.check(history, at: Self.day(2026, 12, 7, hour: 23)).isAllowed)
  }

  @Test("with an override reason the early session is allowed and the reason recorded")
  func overrideAllows() {
    let history = [Self.session(Self.day(2026, 11, 10))]
    let decision = Self.check(
      history, at: Self.day(2026, 11, 24), override: " patient travels abroad for 3 months ")
    #expect(decision.isAllowed)
    #expect(decision.recordedOverride == "patient travels abroad for 3 months")
    #expect(decision.warnings.contains { $0.contains("override recorded") })
    // A blank reason is no reason.
    let blank = Self.check(history, at: Self.day(2026, 11, 24), override: "   ")
    #expect(!blank.isAllowed)
    #expect(blank.reason?.contains("the override reason given is empty") == true)
  }

  @Test("a session on a different area, a refused one, or a test patch does not start the interval")
  func otherAreasUnaffected() {
    let history = [
      Self.session(Self.day(2026, 11, 10), .cheeks),
      Self.session(Self.day(2026, 11, 12), .forehead, .refused),
      Self.session(Self.day(2026, 11, 20), .forehead, rf: true, patch: true),
    ]
    let decision = Self.check(history, .forehead, at: Self.day(2026, 11, 24))
    #expect(decision.isAllowed, "\(decision)")
    #expect(decision.sessionInCourse == 1)
    #expect(!Self.check(history, .cheeks, at: Self.day(2026, 11, 24)).isAllowed)
  }

  @Test("an aborted session counts: the skin may have been needled")
  func abortedCounts() {
    let history = [Self.session(Self.day(2026, 11, 10), .forehead, .aborted)]
    #expect(!Self.check(history, at: Self.day(2026, 11, 24)).isAllowed)
  }

  @Test("the 7th session in a course warns; a gap over 12 weeks starts a new course")
  func longCourseWarns() {
    let start = Self.day(2026, 1, 5)
    let six = (0..<6).map {
      Self.session(CourseRules.utcCalendar.date(byAdding: .day, value: 35 * $0, to: start)!)
    }
    let seventh = CourseRules.utcCalendar.date(byAdding: .day, value: 35 * 6, to: start)!
    let decision = Self.check(six, at: seventh)
    #expect(decision.isAllowed)
    #expect(decision.sessionInCourse == 7)
    #expect(
      decision.warnings == [
        "this is session 7 of the forehead course that began 2026-01-05; courses are typically 3-6 sessions (clinical.md): review the treatment plan"
      ])
    // The 6th raises no warning.
    let sixth = Self.check(Array(six.prefix(5)), at: six[5].date)
    #expect(sixth.sessionInCourse == 6 && sixth.warnings.isEmpty)
    // 85 days after the last, a new course begins.
    let later = CourseRules.utcCalendar.date(byAdding: .day, value: 85, to: six[5].date)!
    let fresh = Self.check(six, at: later)
    #expect(fresh.sessionInCourse == 1 && fresh.warnings.isEmpty)
  }

  @Test(
    "the first full RF session without a read RF test patch is refused, and cannot be overridden")
  func firstRFNeedsTestPatch() {
    let none = Self.check([], at: Self.day(2026, 11, 24), rf: true, override: "urgent")
    #expect(!none.isAllowed)
    #expect(none.reason?.contains("no completed RF test patch on forehead is recorded") == true)
    #expect(none.recordedOverride == nil)
    // A mechanical test patch, an aborted RF one, or one on another area does not count.
    let wrong = [
      Self.session(Self.day(2026, 11, 1), patch: true),
      Self.session(Self.day(2026, 11, 1), rf: true, patch: true, .aborted),
      Self.session(Self.day(2026, 11, 1), .cheeks, rf: true, patch: true),
    ]
    #expect(!Self.check(wrong, at: Self.day(2026, 11, 24), rf: true).isAllowed)
    // Mechanical sessions need none.
    #expect(Self.check([], at: Self.day(2026, 11, 24)).isAllowed)
    // After a full RF session on the area, later ones need no new patch.
    let treated = [Self.session(Self.day(2026, 10, 1), rf: true)]
    #expect(Self.check(treated, at: Self.day(2026, 11, 24), rf: true).isAllowed)
  }

  @Test("an RF test patch 2 days before is read in time for type II but not for type V")
  func testPatchReadingTime() {
    let history = [Self.session(Self.day(2026, 11, 22), rf: true, patch: true)]
    let typeII = Self.check(history, at: Self.day(2026, 11, 24), rf: true, skin: .typeII)
    #expect(typeII.isAllowed, "\(typeII)")
    let typeV = Self.check(history, at: Self.day(2026, 11, 24), rf: true, skin: .typeV)
    #expect(!typeV.isAllowed)
    #expect(
      typeV.reason
        == "the RF test patch on forehead at 2026-11-22 12:00 UTC was 2 days ago; for Fitzpatrick type V it must be read at least 5 days after (clinical.md): the first full RF session can start from 2026-11-27 12:00 UTC"
    )
    #expect(Self.check(history, at: Self.day(2026, 11, 27), rf: true, skin: .typeV).isAllowed)
    // Under 24 h is too soon even for type I.
    let early = Self.check(history, at: Self.day(2026, 11, 23, hour: 11), rf: true, skin: .typeI)
    #expect(!early.isAllowed)
  }

  @Test("a test patch is always allowed by the course rules")
  func testPatchAlwaysAllowed() {
    let history = [Self.session(Self.day(2026, 11, 20), rf: true)]
    let decision = Self.check(
      history, at: Self.day(2026, 11, 21), rf: true, patch: true, skin: .typeVI)
    #expect(decision.isAllowed && decision.refusals.isEmpty && decision.sessionInCourse == 0)
  }

  @Test("a session dated after this one is refused as a clock or records problem")
  func futureSession() {
    let history = [Self.session(Self.day(2026, 12, 20))]
    let decision = Self.check(history, at: Self.day(2026, 12, 8))
    #expect(!decision.isAllowed)
    #expect(decision.reason?.contains("after this one (2026-12-08)") == true)
  }
}
