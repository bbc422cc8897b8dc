import PenDriver
import PenSafety
import PenSimulator
import PenSimulatorTestKit
import PenWire
import Testing

/// Every fault the simulator offers, injected during treatment, judged on the truth record.
@Suite("Fault injection")
struct FaultInjectionTests {
  /// What the spec requires once a fault begins.
  enum Reaction: Equatable {
    /// RF off and needles stopped within the bound (a trip, a reset, or the link lost).
    case safeWithin(Microseconds)
    /// RF stops within the bound (an interlock, not a trip); needling may go on.
    case rfOffWithin(Microseconds)
    /// Nothing needs to stop; the treatment must simply stay inside its limits.
    case staysInsideLimits
  }

  static let tick = SafetyTiming.controlTick.rawValue
  /// Two cycles at the 2 Hz the RF test session runs at: the stuck and stall windows (SR-029, SR-030).
  static let twoCycles = Microseconds.seconds(1)

  static func reaction(_ kind: FaultKind) -> Reaction {
    switch kind {
    case .sensor(.contact, .off), .sensor(.contact, .wrong), .sensor(.contact, .intermittent):
      return .rfOffWithin(Microseconds(tick * 2))
    case .sensor(.contact, _):
      return .staysInsideLimits
    case .sensor(_, .off):
      return .safeWithin(Microseconds(tick * 2))  // SR-028: no reading is not a number
    case .sensor(_, .intermittent):
      return .safeWithin(Microseconds.milliseconds(3 + 1))  // SR-028, at the first gap (3 ms)
    case .sensor(.rfPower, .delayed), .sensor(.rfPower, .slow):
      // The reading lags the real power: RF looks stuck on once it stops, and trips (SR-031).
      return .staysInsideLimits
    case .sensor(_, .garbage):
      return .safeWithin(Microseconds.milliseconds(5))  // SR-028, at the first implausible value
    case .sensor(.speed, .stuck):
      return .safeWithin(Microseconds(twoCycles.rawValue + tick * 2))  // SR-029
    case .sensor:
      return .staysInsideLimits
    case .usbUnplug, .hostSilence:
      return .safeWithin(Microseconds(SafetyTiming.heartbeatTimeout.rawValue + tick * 2))  // SR-015
    case .rfStuckOn:
      // During a pulse, stuck-on RF looks like the pulse itself; once the pulse's budget or its
      // 60 ms end it, SR-031 trips within 1 ms and the relay opens.
      return .safeWithin(
        Microseconds(
          Microseconds.milliseconds(60).rawValue + SafetyTiming.rfStuckWindow.rawValue + tick * 2))
    case .motorStall:
      // SR-030: two cycles at the setpoint, plus the spin-down.
      return .safeWithin(Microseconds(twoCycles.rawValue + Microseconds.milliseconds(60).rawValue))
    case .overTemperature:
      return .safeWithin(Microseconds(tick * 2))  // SR-013
    case .impedanceOpen, .impedanceShort:
      return .rfOffWithin(Microseconds(tick * 2))  // SR-011
    case .cartridgeReuse:
      return .safeWithin(Microseconds(tick * 2))  // SR-017
    case .brownOut:
      return .safeWithin(Microseconds(tick * 2))  // SR-032
    }
  }

  @Test(
    "each fault, injected while treating, leaves the truth record inside the spec",
    arguments: FaultKind.all)
  func faultDuringTreatment(_ kind: FaultKind) throws {
    let host = try armedRFPen(seed: 21)
    try host.command(.start(Start()))
    try host.run(for: .milliseconds(1_300))  // a few strokes and pulses first
    // Inject in the middle of an RF pulse, so that "RF off within the bound" means something.
    let injectedAt = host.pen!.with { fw -> Microseconds in
      var ticks = 0
      while fw.truth.lastRFOn != fw.now && ticks < 20_000 {
        fw.tick()
        ticks += 1
      }
      fw.advance(by: .milliseconds(5))
      precondition(fw.truth.lastRFOn == fw.now, "no RF pulse to inject into")
      fw.inject(ScheduledFault(kind, at: fw.now))
      return fw.now
    }
    // The host keeps talking (it does not know); faults that cut the link make it silent anyway.
    try host.run(for: .seconds(2))
    let (truth, state, fault) = host.pen!.with { ($0.truth, $0.core.state, $0.core.latchedFault) }

    // Whatever the fault: never deeper, harder or hotter than the envelope, never RF without contact.
    #expect(
      truth.maxDepth.value <= 1.0 + SafetyTiming.depthTolerance.value,
      "\(kind.name): depth \(truth.maxDepth.value)")
    #expect(
      truth.maxPulseEnergyPerPin.value <= 30 * 1.1,
      "\(kind.name): pulse \(truth.maxPulseEnergyPerPin.value) mJ/pin")
    #expect(truth.rfEnergyWithoutContact == .zero, "\(kind.name)")
    #expect(truth.rfEnergy.value <= 80_000)
    #expect(truth.pulses > 0, "the session delivered RF before the fault")

    switch Self.reaction(kind) {
    case .safeWithin(let bound):
      let limit = injectedAt.rawValue + bound.rawValue
      #expect(
        (truth.lastRFOn?.rawValue ?? 0) <= limit,
        "\(kind.name): RF until \(truth.lastRFOn?.rawValue ?? 0), bound \(limit)")
      #expect(
        (truth.lastDriving?.rawValue ?? 0) <= limit + Microseconds.milliseconds(60).rawValue,
        "\(kind.name): needles")
      #expect(
        state == .fault || state == .idle || state == .boot, "\(kind.name): ended in \(state)")
      if kind != .brownOut { #expect(fault != .none || state != .fault) }
    case .rfOffWithin(let bound):
      let limit = injectedAt.rawValue + bound.rawValue
      #expect(
        (truth.lastRFOn?.rawValue ?? 0) <= limit,
        "\(kind.name): RF until \(truth.lastRFOn?.rawValue ?? 0), bound \(limit)")
    case .staysInsideLimits:
      break
    }
  }

  @Test("faults parse from their text form, and bad text is refused with a reason")
  func textForm() throws {
    let f = try ScheduledFault(parsing: "rf-stuck-on@12.5s")
    #expect(f.kind == .rfStuckOn && f.at == Microseconds(12_500_000) && f.duration == nil)
    let g = try ScheduledFault(parsing: "sensor-depth-stuck@300ms/1s")
    #expect(
      g.kind == .sensor(.depth, .stuck) && g.at == .milliseconds(300) && g.duration == .seconds(1))
    #expect(g.description == "sensor-depth-stuck@300ms/1s")
    #expect(throws: FaultTextError.unknownFault("rf-stuck")) {
      try ScheduledFault(parsing: "rf-stuck@1s")
    }
    #expect(throws: FaultTextError.missingTime("brown-out")) {
      try ScheduledFault(parsing: "brown-out")
    }
    #expect(throws: FaultTextError.badTime("-1s")) { try ScheduledFault(parsing: "brown-out@-1s") }
    #expect(throws: FaultTextError.badTime("12")) { try ScheduledFault(parsing: "brown-out@12") }
    for kind in FaultKind.all { #expect(FaultKind(name: kind.name) == kind) }
    #expect(FaultKind.all.count == 58)
  }

  @Test("a fault with a duration clears by itself")
  func faultClears() throws {
    let host = try armedRFPen(seed: 3)
    host.pen!.with {
      $0.inject(ScheduledFault(.impedanceOpen, at: $0.now, duration: .milliseconds(100)))
    }
    try host.run(for: .milliseconds(50))
    #expect(host.pen!.with { $0.activeFaultKinds } == [.impedanceOpen])
    try host.run(for: .milliseconds(100))
    #expect(host.pen!.with { $0.activeFaultKinds }.isEmpty)
  }
}
