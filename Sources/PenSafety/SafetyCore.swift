public import PenWire

/// What the safety core reads on each control tick.
@frozen public struct TickInputs: Sendable, Hashable {
  /// The pen's clock at this tick.
  public var now: Microseconds
  public var depth: Millimetres
  public var speed: Hertz
  /// RF power measured over the interval since the previous tick.
  public var rfPower: Watts
  public var impedance: Ohms
  public var tissueTemperature: Celsius
  public var handpieceTemperature: Celsius
  public var skinContact: Bool
  /// Time since the last valid frame from the host.
  public var heartbeatAge: Microseconds
  public var cartridge: CartridgeStatus
  public var calibration: CalibrationStatus
  /// The needle drive wants to start an RF pulse at this tick (the needles are in the skin).
  public var pulseRequested: Bool
  /// An authenticated service-mode session is active: arming does not need a calibration record
  /// valid for arming, so a technician can sweep the pen against the reference fixtures (SR-033).
  public var serviceMode: Bool

  @inlinable public init(
    now: Microseconds, depth: Millimetres = .zero, speed: Hertz = .zero, rfPower: Watts = .zero,
    impedance: Ohms = Ohms(65535), tissueTemperature: Celsius = Celsius(32),
    handpieceTemperature: Celsius = Celsius(25), skinContact: Bool = false,
    heartbeatAge: Microseconds = .zero, cartridge: CartridgeStatus = .fresh,
    calibration: CalibrationStatus = .valid, pulseRequested: Bool = false,
    serviceMode: Bool = false
  ) {
    self.now = now
    self.depth = depth
    self.speed = speed
    self.rfPower = rfPower
    self.impedance = impedance
    self.tissueTemperature = tissueTemperature
    self.handpieceTemperature = handpieceTemperature
    self.skinContact = skinContact
    self.heartbeatAge = heartbeatAge
    self.cartridge = cartridge
    self.calibration = calibration
    self.pulseRequested = pulseRequested
    self.serviceMode = serviceMode
  }

  /// Whether the calibration lets the pen arm and treat: a record valid for arming (SR-019), or
  /// any record — or none, with the neutral correction — in a service-mode session (SR-033).
  @inlinable public var calibrationPermitsTreatment: Bool { calibration == .valid || serviceMode }
}

/// What the safety core permits until the next tick.
@frozen public struct Actuation: Sendable, Hashable {
  public var state: PenState
  /// The latched fault, or `.none`.
  public var fault: FaultCode
  /// A fault that latched at this tick (report it once), or `.none`.
  public var newFault: FaultCode
  public var driveNeedles: Bool
  /// Depth and speed to drive to; zero when retracted.
  public var depth: Millimetres
  public var speed: Hertz
  /// RF output on for the coming tick.
  public var rfOn: Bool
  /// The energy budget per pin of the pulse in progress, zero when none.
  public var pulseEnergyPerPin: Millijoules
  /// Interlock and condition bits for status and telemetry.
  public var flags: PenFlags
  public var rfDelivered: Millijoules
  public var rfRemaining: Millijoules

  /// Everything off: the safe state.
  public static func safe(_ state: PenState, fault: FaultCode) -> Actuation {
    Actuation(
      state: state, fault: fault, newFault: .none, driveNeedles: false, depth: .zero, speed: .zero,
      rfOn: false, pulseEnergyPerPin: .zero, flags: .empty, rfDelivered: .zero, rfRemaining: .zero)
  }
}

/// The hard limits the control tick reads, copied out of the envelope once per use: a few scalars
/// instead of the whole envelope with its soft ranges.
struct Limits {
  let maxDepth: Millimetres
  let maxSpeed: Hertz
  let rfAllowed: Bool
  let maxRFEnergyPerPin: Millijoules
  let maxRFPower: Watts
  let rfDoseCap: Millijoules
  let minImpedance: Ohms
  let maxImpedance: Ohms
  let tissueTemperatureCutoff: Celsius
  let pinCount: Int

  @inline(__always) init(_ e: borrowing SessionEnvelope) {
    maxDepth = e.maxDepth
    maxSpeed = e.maxSpeed
    rfAllowed = e.rfAllowed
    maxRFEnergyPerPin = e.maxRFEnergyPerPin
    maxRFPower = e.maxRFPower
    rfDoseCap = e.rfDoseCap
    minImpedance = e.minImpedance
    maxImpedance = e.maxImpedance
    tissueTemperatureCutoff = e.tissueTemperatureCutoff
    pinCount = e.pinCount
  }
}

/// One bit per `FaultCode`: the causes present at the latest tick, latched or not.
@frozen public struct FaultConditions: FlagSet {
  public var rawValue: UInt32
  @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
  @inlinable public init(_ code: FaultCode) { rawValue = 1 &<< UInt32(code.rawValue) }
  @inlinable public func contains(_ code: FaultCode) -> Bool { contains(FaultConditions(code)) }
  @inlinable public mutating func insert(_ code: FaultCode) { insert(FaultConditions(code)) }
}

/// The real-time safety core: one per pen, on the pen (every control tick) and on the host
/// (every command and telemetry sample). Pure value type, no allocation, no Foundation.
///
/// It owns the pen's state machine, the latched fault, the session envelope, the setpoints and
/// the RF dose account; `apply` vets and applies commands, `evaluate` turns sensor readings into
/// the permitted actuation.
@frozen public struct SafetyCore: Sendable {
  public let capability: PenCapability
  public private(set) var state: PenState = .boot
  public private(set) var latchedFault: FaultCode = .none
  /// The session envelope, when one is loaded.
  public var envelope: SessionEnvelope? { hasEnvelope ? loaded : nil }
  // Stored unwrapped: reading an optional struct this size copies it, and the tick reads it often.
  var loaded: SessionEnvelope = .placeholder
  var hasEnvelope = false
  public private(set) var sessionID: UInt32 = 0
  public private(set) var setpoints: Setpoints = .retracted
  public private(set) var estopCount: UInt16 = 0
  /// RF energy delivered in this session (all pins).
  public private(set) var rfDelivered: Millijoules = .zero
  /// Causes present at the latest tick.
  public private(set) var conditions: FaultConditions = .empty
  /// The latest readings, for guards that depend on them (arming, estop reset).
  public private(set) var observed: TickInputs = TickInputs(now: .zero)

  var lastTick: Microseconds? = nil
  var depthOverSince: Microseconds? = nil
  var speedOverSince: Microseconds? = nil
  var rfStuckSince: Microseconds? = nil
  var stallSince: Microseconds? = nil
  var impedanceInWindowSince: Microseconds? = nil
  var depthWindow: (value: Double, since: Microseconds) = (0, .zero)
  var speedWindow: (value: Double, since: Microseconds) = (0, .zero)
  var rfOnLastTick = false
  var pulseActive = false
  var pulseStart: Microseconds = .zero
  var pulseEnergy: Millijoules = .zero
  var pulseBudget: Millijoules = .zero

  public init(model: PenModelID) { capability = PenCapability.of(model) }

  /// A core for a pen whose non-volatile memory holds `estopCount` (SR-023 counts survive power).
  public init(model: PenModelID, estopCount: UInt16) {
    capability = PenCapability.of(model)
    self.estopCount = estopCount
  }

  /// The cumulative RF energy this session may still deliver.
  public var rfRemaining: Millijoules {
    guard hasEnvelope else { return .zero }
    return loaded.rfDoseCap > rfDelivered ? loaded.rfDoseCap - rfDelivered : .zero
  }

  // MARK: Boot and power

  /// Ends the power-on self test (boot → idle, or boot → fault).
  public mutating func finishSelfTest(passed: Bool) {
    guard state == .boot else { return }
    if passed {
      state = .idle
    } else {
      state = .fault
      latchedFault = .internalError
    }
  }

  /// Host side only: follow the state and fault the pen reports, since the pen is the authority on
  /// its own state (a trip, a brown-out). Boot and idle hold no envelope.
  public mutating func follow(
    state newState: PenState, fault: FaultCode, estopCount count: UInt16? = nil
  ) {
    state = newState
    latchedFault = fault
    if let count { estopCount = count }
    if newState == .boot || newState == .idle { hasEnvelope = false }
  }

  /// Host side only: take the readings the pen reports (telemetry, status flags) as the latest
  /// observation, so that the guards that depend on readings — arming, acknowledgement, estop
  /// reset — are vetted on what the pen says rather than on defaults. Runs no tick logic.
  public mutating func observe(_ readings: TickInputs) { observed = readings }

  /// A brown-out or power cycle: back to boot with nothing loaded (SR-032). Only the estop count,
  /// which the firmware keeps in non-volatile memory, survives.
  public mutating func powerLoss() {
    let count = estopCount
    self = SafetyCore(model: capability.model)
    estopCount = count
  }

  /// Service mode began or ended between ticks (granted, `exit_service_mode`, `hello`, host
  /// loss): the next command is judged with it at once, not at the next tick (SR-033).
  public mutating func serviceModeChanged(to active: Bool) {
    observed.serviceMode = active
  }

  // MARK: Commands (SR-001, SR-003, SR-005, SR-008, SR-017 to SR-025, SR-033)

  /// The verdict on a command in the current state, without applying it.
  public func vet(_ command: Command) -> Verdict {
    if case .emergencyStop = command { return .accept }  // never refused, even when already stopped
    guard
      let target = PenStateMachine.target(
        from: state, on: command.event, envelopeLoaded: hasEnvelope)
    else {
      if state == .estop { return .refuse(Refusal(.estopActive)) }
      return .refuse(Refusal(.illegalTransition, value: Double(Int(state.rawValue))))
    }
    _ = target
    switch command {
    case .loadEnvelope(let candidate, let id):
      if id == 0 { return .refuse(Refusal(.fieldOutOfRange, value: 0, limit: 1)) }
      if candidate.model != capability.model {
        return .refuse(
          Refusal(
            .outsideEnvelope, value: Double(Int(candidate.model.rawValue)),
            limit: Double(Int(capability.model.rawValue))))
      }
      return .accept
    case .setParameters(let requested, let confirmed):
      guard hasEnvelope else { return .refuse(Refusal(.noEnvelope)) }
      return Self.vetSetpoints(requested, confirmed: confirmed, envelope: loaded)
    case .arm:
      return vetArming()
    case .acknowledgeFault(let code):
      if code != latchedFault {
        return .refuse(
          Refusal(
            .faultActive, value: Double(Int(code.rawValue)),
            limit: Double(Int(latchedFault.rawValue))))
      }
      if !causeGone(latchedFault) {
        return .refuse(Refusal(.faultActive, value: Double(Int(latchedFault.rawValue))))
      }
      return .accept
    case .resetEstop(let count):
      if count != estopCount {
        return .refuse(
          Refusal(.estopActive, value: Double(Int(count)), limit: Double(Int(estopCount))))
      }
      if !(observed.depth <= SafetyTiming.retractedDepth) {
        return .refuse(
          Refusal(
            .estopActive, .depth, value: observed.depth.value,
            limit: SafetyTiming.retractedDepth.value))
      }
      if !(observed.rfPower < SafetyTiming.rfStuckPower) {
        return .refuse(
          Refusal(
            .estopActive, .rfPower, value: observed.rfPower.value,
            limit: SafetyTiming.rfStuckPower.value))
      }
      return .accept
    case .start, .pause, .stop, .disarm, .emergencyStop:
      return .accept
    }
  }

  /// Vets a command and, when it is accepted, applies it.
  @discardableResult
  public mutating func apply(_ command: Command) -> Verdict {
    let verdict = vet(command)
    guard verdict.isAccepted else { return verdict }
    switch command {
    case .emergencyStop:
      if state != .estop {
        state = .estop
        estopCount &+= 1
        endPulse()
      }
      return verdict
    case .loadEnvelope(let newEnvelope, let id):
      if id != sessionID { rfDelivered = .zero }
      sessionID = id
      loaded = newEnvelope
      hasEnvelope = true
      setpoints = Setpoints(
        depth: newEnvelope.recommendedDepth.value, speed: newEnvelope.recommendedSpeed.value,
        rfEnergyPerPin: newEnvelope.recommendedRFEnergyPerPin.value,
        rfPulseDuration: newEnvelope.defaultPulse)
    case .setParameters(let requested, _):
      if case .clamped(let clampedSetpoints, _) = verdict {
        setpoints = clampedSetpoints
      } else {
        setpoints = requested
      }
    case .acknowledgeFault:
      latchedFault = .none
    case .resetEstop:
      hasEnvelope = false
      setpoints = .retracted
    case .arm, .start, .pause, .stop, .disarm:
      break
    }
    if let target = PenStateMachine.target(
      from: state, on: command.event, envelopeLoaded: hasEnvelope)
    {
      state = target
    }
    if state != .treating { endPulse() }
    return verdict
  }

  /// Whether a latched fault's cause is gone (SR-021): its own condition clear, the needles
  /// retracted and RF off; for cartridge and calibration faults, a valid cartridge and record
  /// again. An internal error (a failed self test) clears only by a power cycle.
  func causeGone(_ fault: FaultCode) -> Bool {
    if fault == .internalError { return false }
    if conditions.contains(fault) { return false }
    guard
      observed.depth <= SafetyTiming.retractedDepth && observed.rfPower < SafetyTiming.rfStuckPower
    else {
      return false
    }
    switch fault {
    case .cartridgeInvalid, .cartridgeReused:
      return observed.cartridge.present && observed.cartridge.valid
    case .calibrationInvalid:
      return observed.calibrationPermitsTreatment
    default:
      return true
    }
  }

  static func vetSetpoints(_ s: Setpoints, confirmed: Bool, envelope e: SessionEnvelope) -> Verdict
  {
    // Hard limits are refused, never clamped (SR-001, SR-003, SR-005, SR-008).
    if !(s.depth >= e.minDepth && s.depth <= e.maxDepth) {
      let limit = s.depth > e.maxDepth ? e.maxDepth : e.minDepth
      return .refuse(Refusal(.outsideEnvelope, .depth, value: s.depth.value, limit: limit.value))
    }
    if !(s.speed >= e.minSpeed && s.speed <= e.maxSpeed) {
      let limit = s.speed > e.maxSpeed ? e.maxSpeed : e.minSpeed
      return .refuse(Refusal(.outsideEnvelope, .speed, value: s.speed.value, limit: limit.value))
    }
    if !(s.rfEnergyPerPin.value >= 0) {
      return .refuse(
        Refusal(.outsideEnvelope, .rfEnergyPerPin, value: s.rfEnergyPerPin.value, limit: 0))
    }
    if s.rfEnergyPerPin.value > 0 {
      if !e.rfAllowed {
        return .refuse(
          Refusal(.rfNotAllowed, .rfEnergyPerPin, value: s.rfEnergyPerPin.value, limit: 0))
      }
      if s.rfEnergyPerPin > e.maxRFEnergyPerPin {
        return .refuse(
          Refusal(
            .outsideEnvelope, .rfEnergyPerPin, value: s.rfEnergyPerPin.value,
            limit: e.maxRFEnergyPerPin.value))
      }
      if !(s.rfPulseDuration >= e.minPulse && s.rfPulseDuration <= e.maxPulse) {
        let limit = s.rfPulseDuration > e.maxPulse ? e.maxPulse : e.minPulse
        return .refuse(
          Refusal(
            .outsideEnvelope, .rfPulseDuration, value: s.rfPulseDuration.value, limit: limit.value))
      }
      // The pulse must be deliverable at the pen's maximum power: mJ per ms is W (SR-005).
      let power = s.rfEnergyPerPin.value * Double(e.pinCount) / s.rfPulseDuration.value
      if !(power <= e.maxRFPower.value) {
        return .refuse(Refusal(.outsideEnvelope, .rfPower, value: power, limit: e.maxRFPower.value))
      }
    }
    // Soft limits: above the recommended maximum, clamp with a warning unless confirmed.
    var clamped = s
    var warning: SoftLimitWarning? = nil
    if s.depth > e.recommendedDepth.max {
      warning = SoftLimitWarning(
        quantity: .depth, requested: s.depth.value, recommendedMax: e.recommendedDepth.max.value)
      clamped.depth = e.recommendedDepth.max
    }
    if s.speed > e.recommendedSpeed.max {
      warning =
        warning
        ?? SoftLimitWarning(
          quantity: .speed, requested: s.speed.value, recommendedMax: e.recommendedSpeed.max.value)
      clamped.speed = e.recommendedSpeed.max
    }
    if s.rfEnergyPerPin > e.recommendedRFEnergyPerPin.max {
      warning =
        warning
        ?? SoftLimitWarning(
          quantity: .rfEnergyPerPin, requested: s.rfEnergyPerPin.value,
          recommendedMax: e.recommendedRFEnergyPerPin.max.value)
      clamped.rfEnergyPerPin = e.recommendedRFEnergyPerPin.max
    }
    guard let warning else { return .accept }
    return confirmed ? .acceptedAboveRecommended(warning) : .clamped(clamped, warning)
  }

  func vetArming() -> Verdict {
    // SR-019, lifted only in an authenticated service-mode session (SR-033).
    if !observed.calibrationPermitsTreatment {
      return .refuse(
        Refusal(.calibrationInvalid, value: Double(Int(observed.calibration.rawValue))))
    }
    let c = observed.cartridge
    if !(c.present && c.valid) { return .refuse(Refusal(.cartridgeInvalid)) }
    if c.isUsedUp {
      return .refuse(Refusal(.cartridgeUsed, value: Double(c.useCount), limit: Double(c.maxUses)))
    }
    guard hasEnvelope else { return .refuse(Refusal(.noEnvelope)) }
    return .accept
  }

  // MARK: The control tick (SR-002 to SR-031)

  /// Evaluates one control tick: accounts the RF energy delivered since the last tick, detects
  /// every fault condition, latches trips, and returns what may be actuated until the next tick.
  public mutating func evaluate(_ i: TickInputs) -> Actuation {
    let dt = lastTick.map { Self.elapsed(from: $0, to: i.now) } ?? 0
    // A clock that runs backwards cannot time a pulse: end it, RF stays off this tick.
    let clockWentBack = lastTick.map { i.now < $0 } ?? false
    if clockWentBack { endPulse() }
    let interval = dt > 1_000_000 ? 1_000_000 : dt
    lastTick = i.now
    observed = i

    // Energy accounting, always, whatever the state: stuck-on RF delivers energy too (SR-007).
    if i.rfPower.value > 0 && i.rfPower.isFinite {
      let energy = Millijoules(i.rfPower.value * Double(Int(truncatingIfNeeded: interval)) / 1000)
      rfDelivered += energy
      if pulseActive { pulseEnergy += energy }
    }

    let present = detectConditions(i)
    let active = state == .armed || state == .treating || state == .paused
    var newFault = FaultCode.none
    if let trip = Self.firstTrip(present, active: active),
      state == .idle || state == .ready || active
    {
      state = .fault
      latchedFault = trip
      newFault = trip
      endPulse()
    }
    conditions = present

    var act = Actuation.safe(state, fault: latchedFault)
    act.newFault = newFault
    act.rfDelivered = rfDelivered
    act.rfRemaining = rfRemaining
    var flags = PenFlags.empty
    flags.set(.skinContact, i.skinContact)
    flags.set(.calibrationValid, i.calibration == .valid)
    flags.set(.cartridgeValid, i.cartridge.present && i.cartridge.valid)
    flags.set(.envelopeLoaded, envelope != nil)
    flags.set(.serviceMode, i.serviceMode)

    if state == .treating, let e = envelope {
      act.driveNeedles = true
      act.depth = setpoints.depth
      act.speed = setpoints.speed
      let rfOn = gateRF(i, envelope: e, flags: &flags)
      act.rfOn = rfOn
      act.pulseEnergyPerPin =
        pulseActive ? Millijoules(pulseBudget.value / Double(e.pinCount)) : .zero
    } else {
      endPulse()
      impedanceInWindowSince = nil
    }
    flags.set(.rfEnabled, act.rfOn)
    flags.set(.needlesDriving, act.driveNeedles)
    act.flags = flags
    rfOnLastTick = act.rfOn
    return act
  }

  /// RF for the coming tick: contact, impedance window, dose cap and per-pulse budget, with a
  /// worst-case look-ahead of one tick at the pen's maximum power so that no limit can be crossed
  /// before the next decision (SR-006, SR-007, SR-008, SR-011, SR-012).
  mutating func gateRF(_ i: TickInputs, envelope e: SessionEnvelope, flags: inout PenFlags) -> Bool
  {
    let inWindow = i.impedance >= e.minImpedance && i.impedance <= e.maxImpedance
    if inWindow && i.skinContact {
      if impedanceInWindowSince == nil { impedanceInWindowSince = i.now }
    } else {
      impedanceInWindowSince = nil
    }
    let settled =
      impedanceInWindowSince.map {
        Self.elapsed(from: $0, to: i.now) >= SafetyTiming.impedanceReentry.rawValue
      } ?? false
    flags.set(.rfInhibitContact, !i.skinContact)
    flags.set(.rfInhibitImpedance, i.skinContact && !settled)
    // SR-006: a pulse planned above the per-pin limit is not fired at all (never quietly reduced).
    let withinPulseLimit = setpoints.rfEnergyPerPin <= e.maxRFEnergyPerPin
    flags.set(.rfInhibitPulseLimit, !withinPulseLimit)
    let energyPerPin = withinPulseLimit ? setpoints.rfEnergyPerPin : .zero
    let permitted =
      e.rfAllowed && i.skinContact && settled && i.calibrationPermitsTreatment
      && energyPerPin.value > 0
    // The most one tick can deliver without tripping: rated power plus the SR-006 tolerance.
    let worstTick = Millijoules(
      e.maxRFPower.value * (1 + SafetyTiming.pulseEnergyToleranceFraction)
        * Double(Int(truncatingIfNeeded: SafetyTiming.controlTick.rawValue)) / 1000)
    let budget = Millijoules(energyPerPin.value * Double(e.pinCount))
    // The pulse that would cross the cap is not fired; the flag says so before one is asked for.
    let capReached = energyPerPin.value > 0 && rfDelivered + budget > e.rfDoseCap
    if capReached { flags.insert(.rfInhibitDoseCap) }
    if !pulseActive && i.pulseRequested && permitted {
      if !capReached {
        pulseActive = true
        pulseStart = i.now
        pulseEnergy = .zero
        pulseBudget = budget
      }
    }
    guard pulseActive else { return false }
    let elapsed = Double(Int(truncatingIfNeeded: Self.elapsed(from: pulseStart, to: i.now))) / 1000
    if !permitted || pulseEnergy + worstTick > pulseBudget || rfDelivered + worstTick > e.rfDoseCap
      || elapsed >= setpoints.rfPulseDuration.value
    {
      if rfDelivered + worstTick > e.rfDoseCap { flags.insert(.rfInhibitDoseCap) }
      endPulse()
      return false
    }
    return true
  }

  mutating func endPulse() {
    pulseActive = false
    pulseEnergy = .zero
    pulseBudget = .zero
  }

  /// Every fault cause present at this tick, with the persistence each one needs.
  mutating func detectConditions(_ i: TickInputs) -> FaultConditions {
    var c = FaultConditions.empty
    // SR-028: readings outside their physical range (the telemetry ranges) or not a number.
    if !(i.depth.value >= 0 && i.depth.value <= 6) || !(i.speed.value >= 0 && i.speed.value <= 400)
      || !(i.rfPower.value >= 0 && i.rfPower.value <= 400)
      || !(i.impedance.value >= 0 && i.impedance.value <= 65535)
      || !(i.tissueTemperature.value >= -40 && i.tissueTemperature.value <= 150)
      || !(i.handpieceTemperature.value >= -40 && i.handpieceTemperature.value <= 150)
    {
      c.insert(.sensorImplausible)
    }
    let active = state == .armed || state == .treating || state == .paused
    // SR-015: host silence while anything is active.
    if active && i.heartbeatAge > SafetyTiming.heartbeatTimeout { c.insert(.heartbeatLost) }
    // SR-014: handpiece temperature, in every state (with hysteresis once latched).
    let handpieceLimit =
      latchedFault == .handpieceOverTemperature
      ? capability.handpieceTemperatureCutoff - SafetyTiming.temperatureHysteresis
      : capability.handpieceTemperatureCutoff
    if i.handpieceTemperature >= handpieceLimit { c.insert(.handpieceOverTemperature) }
    if hasEnvelope {
      let e = Limits(loaded)
      // SR-002: measured depth beyond the limit for longer than 2 ms.
      if i.depth > e.maxDepth + SafetyTiming.depthTolerance {
        if persisted(&depthOverSince, now: i.now, for: SafetyTiming.depthPersistence) {
          c.insert(.depthOverLimit)
        }
      } else {
        depthOverSince = nil
      }
      // SR-004: measured speed beyond the limit for longer than 10 ms.
      if i.speed > e.maxSpeed * (1 + SafetyTiming.speedToleranceFraction) {
        if persisted(&speedOverSince, now: i.now, for: SafetyTiming.speedPersistence) {
          c.insert(.speedOverLimit)
        }
      } else {
        speedOverSince = nil
      }
      // SR-013: tissue temperature cut-off (RF pens), with hysteresis once latched.
      if capability.hasRF {
        let limit =
          latchedFault == .tissueOverTemperature
          ? e.tissueTemperatureCutoff - SafetyTiming.temperatureHysteresis
          : e.tissueTemperatureCutoff
        if i.tissueTemperature >= limit { c.insert(.tissueOverTemperature) }
      }
      // SR-006: a pulse measured above its per-pin limit, or power above the pen's maximum.
      let perPin = pulseEnergy.value / Double(e.pinCount)
      if perPin > e.maxRFEnergyPerPin.value * (1 + SafetyTiming.pulseEnergyToleranceFraction)
        || i.rfPower.value > e.maxRFPower.value * (1 + SafetyTiming.pulseEnergyToleranceFraction)
      {
        c.insert(.rfPulseOverLimit)
      }
    } else {
      depthOverSince = nil
      speedOverSince = nil
    }
    // SR-017: the cartridge must stay present and valid while anything is active.
    if active && !(i.cartridge.present && i.cartridge.valid) { c.insert(.cartridgeInvalid) }
    // SR-019: calibration lost while active (a corrupted record after a brown-out), or service mode
    // ended while active on a record that is not valid for arming (SR-033).
    if active && !i.calibrationPermitsTreatment { c.insert(.calibrationInvalid) }
    // SR-031: RF power while RF is disabled, for longer than 1 ms.
    if i.rfPower >= SafetyTiming.rfStuckPower && !rfOnLastTick {
      if persisted(&rfStuckSince, now: i.now, for: SafetyTiming.rfStuckWindow) {
        c.insert(.rfStuckOn)
      }
    } else {
      rfStuckSince = nil
    }
    let driving = state == .treating
    // SR-029: a reading unchanged by a wire step for 50 ms while its actuator is told to move.
    let depthMoving =
      driving && abs(setpoints.depth.value - i.depth.value) > SafetyTiming.depthTolerance.value
    if stuck(
      &depthWindow, reading: i.depth.value, lsb: SafetyTiming.depthLSB.value, moving: depthMoving,
      now: i.now,
      span: SafetyTiming.stuckWindow)
    {
      c.insert(.sensorStuck)
    }
    // A slow stamping pen updates its speed reading once a cycle: give it two cycles.
    let speedWindowSpan = SafetyTiming.window(SafetyTiming.stuckWindow, cyclesAt: setpoints.speed)
    let speedMoving = driving && setpoints.speed.value > 0
    if stuck(
      &speedWindow, reading: i.speed.value, lsb: SafetyTiming.speedLSB.value, moving: speedMoving,
      now: i.now, span: speedWindowSpan)
    {
      c.insert(.sensorStuck)
    }
    // SR-030: the motor below 20 % of its setpoint for 50 ms (or two cycles) while treating.
    if driving && setpoints.speed.value > 0
      && i.speed.value < setpoints.speed.value * SafetyTiming.stallFraction
    {
      let span = SafetyTiming.window(SafetyTiming.stallWindow, cyclesAt: setpoints.speed)
      if persisted(&stallSince, now: i.now, for: span) { c.insert(.motorStall) }
    } else {
      stallSince = nil
    }
    return c
  }

  /// Starts or continues a persistence timer; true once the condition has lasted `span`.
  /// Microseconds from `start` to `end`, zero when the clock went backwards (never a trap).
  static func elapsed(from start: Microseconds, to end: Microseconds) -> UInt64 {
    end.rawValue >= start.rawValue ? end.rawValue - start.rawValue : 0
  }

  func persisted(_ since: inout Microseconds?, now: Microseconds, for span: Microseconds) -> Bool {
    guard let start = since else {
      since = now
      return span.rawValue == 0
    }
    return now.rawValue >= start.rawValue && now.rawValue - start.rawValue >= span.rawValue
  }

  func stuck(
    _ window: inout (value: Double, since: Microseconds), reading: Double, lsb: Double,
    moving: Bool,
    now: Microseconds, span: Microseconds
  ) -> Bool {
    if !moving || !(abs(reading - window.value) < lsb) {
      window = (reading, now)
      return false
    }
    return Self.elapsed(from: window.since, to: now) >= span.rawValue
  }

  /// The cause that trips first, by severity, among those present. Heartbeat loss trips only while
  /// active; RF inhibits (contact, impedance, dose cap) never trip.
  static func firstTrip(_ c: FaultConditions, active: Bool) -> FaultCode? {
    if c.isEmpty { return nil }
    if c.contains(.rfStuckOn) { return .rfStuckOn }
    if c.contains(.sensorImplausible) { return .sensorImplausible }
    if c.contains(.tissueOverTemperature) { return .tissueOverTemperature }
    if c.contains(.rfPulseOverLimit) { return .rfPulseOverLimit }
    if c.contains(.depthOverLimit) { return .depthOverLimit }
    if c.contains(.speedOverLimit) { return .speedOverLimit }
    if c.contains(.handpieceOverTemperature) { return .handpieceOverTemperature }
    if c.contains(.cartridgeInvalid) { return .cartridgeInvalid }
    if c.contains(.calibrationInvalid) { return .calibrationInvalid }
    if c.contains(.sensorStuck) { return .sensorStuck }
    if c.contains(.motorStall) { return .motorStall }
    if active && c.contains(.heartbeatLost) { return .heartbeatLost }
    return nil
  }
}
