import Foundation
import PenDriver
import PenSafety
import PenSimulator
import PenWire
import Synchronization
import Testing

/// Random scenarios over the whole stack: random envelopes, random sequences of `Pen` API
/// commands (setpoints in and out of range, NaN among them), skin contact put on and lifted, and
/// single faults injected, against a simulated pen. The invariants are judged on the simulator's
/// truth record — what physically happened — never on what PenSafety believes.
///
/// PenClinicTests does not depend on swift-property-based, so the generator is a seeded
/// SplitMix64 and the scenarios a fixed list of seeds: each one gives the same scenario, and the
/// same bytes on the wire, every run (the clock is the test's: `SteppedPen`).
@Suite("Stack properties")
struct StackPropertyTests {
  /// SplitMix64: a short seed still gives a long, well-mixed stream.
  struct Stream {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 ^ 0x5EED_57AC }
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func chance(_ p: Double) -> Bool { unit() < p }
    mutating func pick<T>(_ options: [T]) -> T { options[below(options.count)] }
    mutating func between(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * unit() }
  }

  static let seeds: [UInt64] = Array(1...40).map { UInt64($0) &* 7_919 }
  static let areas: [TreatmentAreaID] = [
    .forehead, .periorbital, .nose, .perioral, .cheekbones, .cheeks, .jawlineChin, .neck,
    .decollete, .hands, .acneScars, .body,
  ]
  static let skins: [FitzpatrickType] = [.typeI, .typeII, .typeIII, .typeIV, .typeV, .typeVI]

  // MARK: Scenarios

  /// An envelope the clinic could build: a random area, skin and preset inside the hard limits;
  /// on an RF pen mostly an RF preset, sometimes with a small dose cap the session can reach.
  static func envelope(_ s: inout Stream, model: PenModelID) -> SessionEnvelope {
    let pen = PenCapability.of(model)
    while true {
      let area = s.pick(areas)
      let skin = s.pick(skins)
      guard let limits = TreatmentAreaLimits.of(area) else { continue }
      let rf = pen.hasRF && limits.rfAllowed && s.chance(0.95)
      let areaDepth = pen.hasRF && limits.rfAllowed ? limits.maxRFDepth : limits.maxDepth
      let maxDepth = min(pen.maxDepth.value, areaDepth.value)
      guard maxDepth >= pen.minDepth.value else { continue }
      let depthMax = s.between(pen.minDepth.value, maxDepth)
      let maxSpeed = min(pen.maxSpeed.value, limits.maxSpeed.value)
      let speedMax = s.between(max(pen.minSpeed.value, maxSpeed * 0.5), maxSpeed)
      var energy = SoftRange(Millijoules.zero, min: .zero, max: .zero)
      var pulse = Milliseconds.zero
      var cap: Millijoules? = nil
      if rf {
        var hardEnergy =
          min(pen.maxRFEnergyPerPin.value, limits.maxRFEnergyPerPin.value) * skin.rfEnergyFactor
        if skin.rawValue > FitzpatrickType.typeIV.rawValue {
          hardEnergy = min(hardEnergy, FitzpatrickType.maxEnergyPerPinAboveTypeIV.value)
        }
        let energyMax = hardEnergy * s.between(0.4, 1.0)
        energy = SoftRange(
          Millijoules(energyMax * s.between(0.5, 1.0)), min: .zero, max: Millijoules(energyMax))
        // The pulse must be deliverable at the pen's rated power (SR-005).
        let shortest = energyMax * Double(pen.pinCount) / pen.maxRFPower.value
        pulse = Milliseconds(
          (max(pen.minPulse.value, shortest * 1.2) + s.between(0, 60)).rounded(.up))
        if s.chance(0.5) {
          cap = Millijoules(min(limits.rfDoseCap.value, s.between(800, 3_500)))
        }
      }
      let preset = PresetLimits(
        depth: SoftRange(
          Millimetres(s.between(pen.minDepth.value, depthMax)), min: pen.minDepth,
          max: Millimetres(depthMax)),
        speed: SoftRange(
          Hertz(s.between(max(pen.minSpeed.value, speedMax * 0.6), speedMax)), min: pen.minSpeed,
          max: Hertz(speedMax)),
        rfEnergyPerPin: energy, rfPulseDuration: pulse, rfDoseCap: cap)
      if let e = try? SessionEnvelope.build(model: model, area: area, preset: preset, skin: skin) {
        return e
      }
    }
  }

  /// Setpoints: mostly inside the recommended ranges, sometimes above them (confirmed or not),
  /// beyond a hard limit, negative, infinite or not a number.
  static func setpoints(_ s: inout Stream, _ e: SessionEnvelope) -> (Setpoints, confirmed: Bool) {
    var p = Setpoints(
      depth: Millimetres(s.between(e.minDepth.value, e.recommendedDepth.max.value)),
      speed: Hertz(
        s.between(
          max(e.minSpeed.value, e.recommendedSpeed.max.value * 0.5), e.recommendedSpeed.max.value)),
      rfEnergyPerPin: Millijoules(s.between(0, e.recommendedRFEnergyPerPin.max.value)),
      rfPulseDuration: e.defaultPulse)
    let roll = s.unit()
    if roll < 0.15 {
      p.depth = Millimetres(s.between(e.recommendedDepth.max.value, e.maxDepth.value))
      p.speed = Hertz(s.between(e.recommendedSpeed.max.value, e.maxSpeed.value))
    } else if roll < 0.25 {
      switch s.below(3) {
      case 0: p.depth = Millimetres(e.maxDepth.value * s.between(1.01, 3))
      case 1: p.speed = Hertz(e.maxSpeed.value * s.between(1.01, 3))
      default:
        p.rfEnergyPerPin = Millijoules(max(1, e.maxRFEnergyPerPin.value) * s.between(1.01, 3))
      }
    } else if roll < 0.35 {
      let bad = s.pick([Double.nan, -Double.infinity, Double.infinity, -0.3])
      switch s.below(4) {
      case 0: p.depth = Millimetres(bad)
      case 1: p.speed = Hertz(bad)
      case 2: p.rfEnergyPerPin = Millijoules(bad)
      default: p.rfPulseDuration = Milliseconds(bad)
      }
    }
    return (p, s.chance(0.5))
  }

  /// A single fault: sensor faults as often as all the others together.
  static func fault(_ s: inout Stream) -> FaultKind {
    let all = FaultKind.all
    let sensors = all.filter { if case .sensor = $0 { true } else { false } }
    let others = all.filter { if case .sensor = $0 { false } else { true } }
    return s.chance(0.5) ? s.pick(sensors) : s.pick(others)
  }

  /// What one scenario did and what physically happened.
  struct Run: Sendable {
    var seed: UInt64
    var envelope: SessionEnvelope
    var truth: TruthRecord
    var sessionIDs: Set<UInt32>
    /// Contact lifted while RF could flow, and stuck RF stages: each may deliver RF without
    /// contact for as long as its requirement allows.
    var contactLosses: Int
    var stuckRF: Int
    var commands: Int
    var refused: Int
    var faults: [FaultKind]
    var trips: Int
    var emergencyStops: Int
    var capReached: Bool
  }

  static func scenario(seed: UInt64) throws -> Run {
    var s = Stream(seed: seed)
    let model: PenModelID = s.chance(0.8) ? .rf200 : .mn100
    let envelope = envelope(&s, model: model)
    let stepped = try SteppedPen(model: model, seed: seed, contact: s.chance(0.9))
    var sessionID: UInt32 = 1
    var sessionIDs: Set<UInt32> = [1]
    var resets = 0
    var contactLosses = 0
    var stuckRF = 0
    var commands = 0
    var refused = 0
    var faults: [FaultKind] = []
    var emergencyStops = 0
    var capReached = false

    func send(_ body: @escaping @Sendable (Pen) throws(PenError) -> Void) {
      commands += 1
      if case .failure(.refused) = stepped.command(body) { refused += 1 }
    }

    for _ in 0..<(30 + s.below(30)) {
      let state = stepped.sim.with { $0.core.state }
      // A pen that reset starts a new session: the host never resumes one (SR-016, SR-032).
      let booted = stepped.sim.with { fw in
        fw.nvm.eventLog.filter { $0.kind == .brownOut }.count
      }
      if booted > resets {
        resets = booted
        sessionID += 1
        sessionIDs.insert(sessionID)
      }
      // Half the time the next step along the treatment, otherwise anything at all.
      let roll = s.unit()
      if roll < 0.5 {
        switch state {
        case .idle:
          let id = sessionID
          send { pen throws(PenError) in try pen.load(envelope, sessionID: id) }
        case .ready: send { pen throws(PenError) in try pen.arm() }
        case .armed, .paused: send { pen throws(PenError) in try pen.start() }
        case .fault:
          let code = stepped.sim.with { $0.core.latchedFault }
          send { pen throws(PenError) in try pen.acknowledge(code) }
        case .estop: send { pen throws(PenError) in try pen.resetEmergencyStop() }
        default: break
        }
      } else if roll < 0.62 {
        let (p, confirmed) = setpoints(&s, envelope)
        send { pen throws(PenError) in _ = try pen.set(p, confirmed: confirmed) }
      } else if roll < 0.75 {
        switch s.below(9) {
        case 0:
          // Sometimes a new session, with a dose account of its own.
          if s.chance(0.3) {
            sessionID += 1
            sessionIDs.insert(sessionID)
          }
          let id = sessionID
          send { pen throws(PenError) in try pen.load(envelope, sessionID: id) }
        case 1: send { pen throws(PenError) in try pen.arm() }
        case 2: send { pen throws(PenError) in try pen.start() }
        case 3: send { pen throws(PenError) in try pen.pause() }
        case 4: send { pen throws(PenError) in try pen.stop() }
        case 5: send { pen throws(PenError) in try pen.disarm() }
        case 6:
          emergencyStops += 1
          send { pen throws(PenError) in try pen.emergencyStop() }
        case 7:
          let code = s.pick([FaultCode.depthOverLimit, .heartbeatLost, .sensorImplausible])
          send { pen throws(PenError) in try pen.acknowledge(code) }
        default: send { pen throws(PenError) in try pen.resetEmergencyStop() }
        }
      } else if roll < 0.87 {
        let on = s.chance(0.7)
        stepped.sim.with { fw in
          if fw.physics.skinContact && !on && fw.core.state == .treating { contactLosses += 1 }
          fw.physics.skinContact = on
        }
      } else if roll < 0.92 {
        // One fault at a time: safety is claimed under a single fault.
        let kind = fault(&s)
        let duration: Microseconds? =
          s.chance(0.3) ? nil : Microseconds.milliseconds(UInt64(20 + s.below(600)))
        let injected = stepped.sim.with { fw -> Bool in
          guard fw.activeFaultKinds.isEmpty else { return false }
          fw.inject(ScheduledFault(kind, at: fw.now, duration: duration))
          return true
        }
        if injected {
          faults.append(kind)
          if kind == .rfStuckOn { stuckRF += 1 }
        }
      }
      stepped.advance(by: .milliseconds(UInt64(s.pick([0, 10, 50, 100, 200, 400]))))
      // At the cap: the pen's own count leaves no room for another pulse at the limit.
      let delivered = stepped.sim.with { $0.core.rfDelivered.value }
      let pulse = envelope.maxRFEnergyPerPin.value * Double(envelope.pinCount)
      if envelope.rfAllowed && delivered > 0 && delivered + pulse > envelope.rfDoseCap.value {
        capReached = true
      }
    }
    stepped.advance(by: .milliseconds(300))
    let (truth, log) = stepped.sim.with { ($0.truth, $0.nvm.eventLog) }
    _ = stepped.end()
    stepped.pen.disconnect()
    return Run(
      seed: seed, envelope: envelope, truth: truth, sessionIDs: sessionIDs,
      contactLosses: contactLosses, stuckRF: stuckRF, commands: commands, refused: refused,
      faults: faults, trips: log.filter { $0.kind == .fault }.count,
      emergencyStops: emergencyStops, capReached: capReached)
  }

  // MARK: The invariants

  /// What the truth record shows against the envelope; empty when the scenario stayed inside.
  static func violations(_ r: Run) -> [String] {
    var found: [String] = []
    let e = r.envelope
    let t = r.truth
    // SR-002: never deeper than the limit plus its tolerance.
    if t.maxDepth.value > e.maxDepth.value + SafetyTiming.depthTolerance.value {
      found.append("depth \(t.maxDepth.value) mm beyond \(e.maxDepth.value) mm (SR-002)")
    }
    // SR-004: never faster than the limit plus its tolerance.
    if t.maxSpeed.value > e.maxSpeed.value * (1 + SafetyTiming.speedToleranceFraction) {
      found.append("speed \(t.maxSpeed.value) Hz beyond \(e.maxSpeed.value) Hz (SR-004)")
    }
    let tolerance = 1 + SafetyTiming.pulseEnergyToleranceFraction
    if e.rfAllowed {
      // SR-006: no pulse above the per-pin limit plus its tolerance.
      if t.maxPulseEnergyPerPin.value > e.maxRFEnergyPerPin.value * tolerance {
        found.append(
          "a pulse of \(t.maxPulseEnergyPerPin.value) mJ/pin beyond \(e.maxRFEnergyPerPin.value) (SR-006)"
        )
      }
      // SR-007: no session beyond its cap, give or take the pulse that met it.
      let pulse = e.maxRFEnergyPerPin.value * tolerance * Double(e.pinCount)
      for (id, energy) in t.rfEnergyBySession where id != 0 {
        if energy.value > e.rfDoseCap.value + pulse {
          found.append(
            "session \(id) delivered \(energy.value) mJ, cap \(e.rfDoseCap.value) mJ (SR-007)")
        }
      }
    } else if t.rfEnergy.value > 0 {
      found.append("\(t.rfEnergy.value) mJ of RF where RF is not allowed (SR-008)")
    }
    // SR-012: RF off within 20 ms of lost contact; SR-031: stuck RF cut 1 ms after RF is off (at
    // the latest when its pulse ends).
    let power = e.maxRFPower.value * tolerance
    let allowance =
      Double(r.contactLosses) * 20 * power
      + Double(r.stuckRF) * (e.maxPulse.value + 1.1) * power
    if t.rfEnergyWithoutContact.value > allowance + 1e-9 {
      found.append(
        "\(t.rfEnergyWithoutContact.value) mJ of RF without contact, allowance \(allowance) mJ (SR-012)"
      )
    }
    return found
  }

  // MARK: The test

  @Test(
    "SR-002 SR-004 SR-006 SR-007 SR-008 SR-012 SR-027: random commands, contact and single faults through the Pen API never take the pen outside its envelope"
  )
  func randomScenariosStayInsideTheEnvelope() async throws {
    let runs = try await withThrowingTaskGroup(of: Run.self) { group in
      for seed in Self.seeds {
        group.addTask {
          try await PenSlots.shared.run { try await onOwnThread { try Self.scenario(seed: seed) } }
        }
      }
      var runs: [Run] = []
      for try await run in group { runs.append(run) }
      return runs.sorted { $0.seed < $1.seed }
    }
    for run in runs {
      let found = Self.violations(run)
      #expect(
        found.isEmpty,
        "seed \(run.seed), \(run.envelope.model) \(run.envelope.area), faults \(run.faults.map(\.name)): \(found)"
      )
    }
    // Coverage: the property holds over scenarios that did the dangerous things.
    let treated = runs.filter { $0.truth.lastDriving != nil }.count
    let fired = runs.filter { $0.truth.pulses > 0 }.count
    let capped = runs.filter(\.capReached).count
    let refusedSome = runs.filter { $0.refused > 0 }.count
    let tripped = runs.filter { $0.trips > 0 }.count
    let faulted = runs.filter { !$0.faults.isEmpty }.count
    let lifted = runs.filter { $0.contactLosses > 0 }.count
    let stopped = runs.filter { $0.emergencyStops > 0 }.count
    #expect(runs.count == Self.seeds.count)
    #expect(treated >= 25, "\(treated) scenarios drove the needles")
    #expect(fired >= 12, "\(fired) scenarios fired RF")
    #expect(capped >= 3, "\(capped) scenarios reached their dose cap")
    #expect(refusedSome >= 25, "\(refusedSome) scenarios had commands refused")
    #expect(tripped >= 12, "\(tripped) scenarios tripped")
    #expect(faulted >= 25, "\(faulted) scenarios had faults injected")
    #expect(lifted >= 10, "\(lifted) scenarios lifted the tip while treating")
    #expect(stopped >= 10, "\(stopped) scenarios pressed emergency stop")
  }

  /// A known gap, not a pass: the pen counts the RF energy its power sensor measures, and so
  /// does the host (it reads the pen's count). A sensor that reads low — stuck at 0 W here, half
  /// the truth when `wrong` — lets the true dose run past the cap (SR-007), and a pulse whose
  /// measured energy never reaches its budget runs its full duration. No requirement yet checks
  /// the measured power against the power commanded (see the fault matrix report); when one does,
  /// this known issue stops being recorded and the test says so.
  @Test("SR-007: a low-reading RF power sensor does not let the true dose pass the cap")
  func lowReadingPowerSensorAndTheDoseCap() async throws {
    let (delivered, counted, cap, pulse) = try await onOwnThread {
      () throws -> (Double, Double, Double, Double) in
      var preset = FaultMatrixTests.preset
      preset.rfDoseCap = Millijoules(2_000)
      let e = try SessionEnvelope.build(
        model: .rf200, area: .forehead, preset: preset, skin: .typeII)
      let stepped = try SteppedPen(model: .rf200, seed: 7, contact: true)
      defer { _ = stepped.end() }
      try stepped.command { pen throws(PenError) in try pen.load(e, sessionID: 1) }.get()
      try stepped.command { pen throws(PenError) in try pen.arm() }.get()
      stepped.sim.with { $0.inject(ScheduledFault(.sensor(.rfPower, .stuck), at: $0.now)) }
      try stepped.command { pen throws(PenError) in try pen.start() }.get()
      stepped.advance(by: .seconds(6))
      let (truth, counted) = stepped.sim.with { ($0.truth, $0.core.rfDelivered.value) }
      let pulse =
        e.maxRFEnergyPerPin.value * (1 + SafetyTiming.pulseEnergyToleranceFraction)
        * Double(e.pinCount)
      return (truth.rfEnergyBySession[1]?.value ?? 0, counted, e.rfDoseCap.value, pulse)
    }
    // The scenario treats: the gap is not for want of RF.
    #expect(delivered > cap)
    #expect(counted == 0, "the pen counted \(counted) mJ")
    withKnownIssue("no requirement checks measured RF power against the power commanded") {
      #expect(delivered <= cap + pulse, "\(delivered) mJ delivered against a \(cap) mJ cap")
    }
  }
}
