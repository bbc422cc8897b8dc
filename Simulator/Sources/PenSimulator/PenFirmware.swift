import Foundation
public import PenSafety
public import PenWire

/// A cartridge as its chip reports it.
public struct SimulatedCartridge: Sendable, Hashable, Codable {
  public var id: UInt64
  public var needleCount: UInt8
  public var maxUses: Int
  public var present: Bool
  public var valid: Bool

  public init(
    id: UInt64, needleCount: UInt8, maxUses: Int = 1, present: Bool = true, valid: Bool = true
  ) {
    self.id = id
    self.needleCount = needleCount
    self.maxUses = maxUses
    self.present = present
    self.valid = valid
  }
}

/// The simulated pen's firmware: it speaks PenWire exactly as Firmware-Specs says, runs the state
/// machine, and runs PenSafety on every 10 kHz control tick on its own sensor readings,
/// independently of the host (SR-027). Everything advances in virtual time; the same seed and the
/// same inputs give the same bytes.
public struct PenFirmware: Sendable {
  public static let firmwareVersion: (major: UInt8, minor: UInt8, patch: UInt8) = (1, 0, 0)
  /// How long the power-on self test takes.
  public static let bootTime = Microseconds.milliseconds(50)
  public static let telemetryPeriod = Microseconds.milliseconds(10)
  public static let heartbeatPeriod = Microseconds.milliseconds(100)

  public let model: PenModelID
  public let capability: PenCapability
  public let serial: FixedASCII<16>
  public let seed: UInt64
  public private(set) var nvm: NonVolatileMemory
  public private(set) var core: SafetyCore
  public var physics: PenPhysics
  public private(set) var truth: TruthRecord
  public private(set) var now = Microseconds.zero
  public var cartridge: SimulatedCartridge {
    didSet { cartridgeUseCount = nvm.cartridgeUses[cartridge.id] ?? 0 }
  }
  /// Frames waiting for the host on bulk IN 0x81 and interrupt IN 0x82.
  public private(set) var bulkIn: [[UInt8]] = []
  public private(set) var interruptIn: [[UInt8]] = []
  /// Every frame in and out with its virtual time, when recording.
  public var transcript: Transcript?
  /// Frames the pen dropped as corrupt (bad magic, length or CRC).
  public private(set) var droppedFrames = 0
  /// Whether the USB cable is connected.
  public private(set) var plugged = true
  /// The catalogue hash this firmware was built with; change it to simulate a pen built from
  /// another Firmware-Specs.
  public var catalogueHash = MessageCatalogue.hash

  var sensors: SensorBank
  var fixtures: ReferenceFixtures
  var rng: SeededGenerator
  var decoder = StreamDecoder()
  var penSequence: UInt16 = 0
  var lastHostFrame = Microseconds.zero
  var lastAnswered: (sequence: UInt16, frames: [[UInt8]])? = nil
  var nextTelemetry = Microseconds.zero
  var nextHeartbeat = Microseconds.zero
  var heartbeatCounter: UInt32 = 0
  var lastReportedState = PenState.boot
  var actuation = Actuation.safe(.boot, fault: .none)
  var bootUntil = Microseconds.zero
  var pulseCount: UInt32 = 0
  var pulseSensedEnergy = Millijoules.zero
  var lastPulseEnergyPerPin = Millijoules.zero
  var rfWasOn = false
  var boundCartridge: UInt64? = nil
  var boundSession: UInt32 = 0
  var service = ServiceAuth()
  var hostSilenced = false
  var schedule: [ScheduledFault] = []
  var activeFaults: [(kind: FaultKind, until: Microseconds?)] = []
  var nextFaultCheck = Microseconds(UInt64.max)
  var calibration: CalibrationRecord? = nil
  var calibrationStatus = CalibrationStatus.missing
  /// The fitted cartridge's use count, cached: the tick reads it 10,000 times a second.
  var cartridgeUseCount = 0

  /// A new pen from the factory: imperfections drawn from `seed`, a factory calibration record
  /// that corrects them, a fresh single-use cartridge, powered on.
  public static func factoryNew(model: PenModelID, serial: String, seed: UInt64) -> PenFirmware {
    var pen = PenFirmware(model: model, serial: serial, seed: seed, nvm: nil)
    pen.writeFactoryCalibration()
    return pen
  }

  /// A pen restored from its non-volatile memory (a pen that was switched off), powered on.
  public init(model: PenModelID, serial: String, seed: UInt64, nvm: NonVolatileMemory?) {
    self.model = model
    capability = PenCapability.of(model)
    self.serial = FixedASCII<16>(string: serial) ?? FixedASCII()
    self.seed = seed
    self.nvm =
      nvm
      ?? NonVolatileMemory(
        model: model, serial: serial, serviceKey: simulatedServiceKey(serial: serial))
    core = SafetyCore(model: model, estopCount: self.nvm.estopCount)
    physics = PenPhysics(capability: capability, profile: .drawn(seed: seed))
    truth = TruthRecord(pinCount: capability.pinCount)
    sensors = SensorBank(seed: seed)
    fixtures = ReferenceFixtures(seed: seed)
    rng = SeededGenerator(seed: seed ^ 0xF12E_3A7E)
    cartridge = SimulatedCartridge(
      id: seed &* 0x9E37_79B9 &+ 1, needleCount: UInt8(capability.pinCount))
    loadCalibration()
    powerOn()
  }

  // MARK: Time

  /// Runs control ticks until `span` of virtual time has passed.
  public mutating func advance(by span: Microseconds) {
    let end = now.rawValue + span.rawValue
    while now.rawValue + SafetyTiming.controlTick.rawValue <= end { tick() }
  }

  /// One 100 µs control tick: physics under the last actuation, sensors, the safety core, and
  /// whatever frames are due.
  public mutating func tick() {
    let dt = SafetyTiming.controlTick
    now = Microseconds(now.rawValue + dt.rawValue)
    if now >= nextFaultCheck { updateFaults() }
    if now < bootUntil { return }
    if core.state == .boot {
      core.finishSelfTest(passed: true)
      log(.powerOn, value: 0)
    }
    // Service mode ends when the host falls silent, as a session does (SR-033).
    let silence = Microseconds(now.rawValue - min(now.rawValue, lastHostFrame.rawValue))
    if service.active && silence > SafetyTiming.heartbeatTimeout { setServiceMode(false) }
    // Actuator commands, corrected by the calibration record in force (calibration.md section 2).
    let a = actuation
    var depthCommand = a.depth
    var speedCommand = a.speed
    var rfCommand = Watts.zero
    if a.rfOn {
      let duration = max(core.setpoints.rfPulseDuration.value, 1)
      rfCommand = Watts(a.pulseEnergyPerPin.value * Double(capability.pinCount) / duration)
    }
    if let c = calibration {
      depthCommand = c.depthCommand(for: depthCommand)
      speedCommand = c.speedCommand(for: speedCommand)
      rfCommand = Watts(rfCommand.value * c.rfGain)
    }
    let stroke = physics.step(
      dt: dt, driveNeedles: a.driveNeedles, depthCommand: depthCommand, speedCommand: speedCommand,
      rfCommand: rfCommand, rfRelayClosed: a.state == .treating)
    truth.record(
      now: now, depth: physics.depth, speed: physics.speed, rfPower: physics.rfPower,
      contact: physics.skinContact, driving: a.driveNeedles && physics.speed.value > 0.05,
      tissue: physics.tissueTemperature, handpiece: physics.handpieceTemperature, interval: dt,
      session: core.sessionID)
    // The pen's own readings.
    let contactReading = sensors.read(.contact, physics.skinContact ? 1 : 0, noise: 0, now: now)
    let inputs = TickInputs(
      now: now,
      depth: Millimetres(sensors.read(.depth, physics.depth.value, noise: 0.002, now: now)),
      speed: Hertz(
        sensors.read(
          .speed, physics.speed.value, noise: 0.005 * physics.speed.value + 0.12, now: now)),
      rfPower: Watts(sensors.read(.rfPower, physics.rfPower.value, noise: 0, now: now)),
      impedance: Ohms(sensors.read(.impedance, physics.impedance.value, noise: 0, now: now)),
      tissueTemperature: Celsius(
        sensors.read(.tissueTemperature, physics.tissueTemperature.value, noise: 0.02, now: now)),
      handpieceTemperature: Celsius(
        sensors.read(
          .handpieceTemperature, physics.handpieceTemperature.value, noise: 0.02, now: now)),
      skinContact: contactReading > 0.5,
      heartbeatAge: silence, cartridge: cartridgeStatus(), calibration: calibrationStatus,
      pulseRequested: stroke && capability.hasRF, serviceMode: service.active)
    let act = core.evaluate(inputs)
    // Pulse energy as the pen measures it, for telemetry.
    if physics.rfPower.value > 0 && inputs.rfPower.isFinite {
      pulseSensedEnergy += Millijoules(inputs.rfPower.value * Double(dt.rawValue) / 1000)
    }
    if rfWasOn && !act.rfOn {
      pulseCount &+= 1
      lastPulseEnergyPerPin = Millijoules(pulseSensedEnergy.value / Double(capability.pinCount))
      pulseSensedEnergy = .zero
    }
    rfWasOn = act.rfOn
    actuation = act
    if act.newFault != .none {
      log(.fault, value: Int32(act.newFault.rawValue))
      emit(
        .faultEvent(
          FaultEvent(
            timestamp: now, fault: act.newFault, stateBefore: lastReportedState, measured: 0,
            limit: 0)))
    }
    if core.state != lastReportedState { reportStateChange() }
    if now >= nextTelemetry {
      nextTelemetry = Microseconds(nextTelemetry.rawValue + Self.telemetryPeriod.rawValue)
      emitTelemetry(inputs, act)
    }
    if now >= nextHeartbeat {
      nextHeartbeat = Microseconds(nextHeartbeat.rawValue + Self.heartbeatPeriod.rawValue)
      heartbeatCounter &+= 1
      emit(.penHeartbeat(PenHeartbeat(counter: heartbeatCounter, uptime: now)))
    }
  }

  // MARK: Power

  mutating func powerOn() {
    core = SafetyCore(model: model, estopCount: nvm.estopCount)
    actuation = .safe(.boot, fault: .none)
    lastReportedState = .boot
    bootUntil = Microseconds(now.rawValue + Self.bootTime.rawValue)
    nextTelemetry = Microseconds(bootUntil.rawValue + Self.telemetryPeriod.rawValue)
    nextHeartbeat = Microseconds(bootUntil.rawValue + Self.heartbeatPeriod.rawValue)
    lastHostFrame = now
    decoder.reset()
    service = ServiceAuth()
    boundCartridge = nil
    pulseSensedEnergy = .zero
    rfWasOn = false
    physics.reset()
    loadCalibration()
    cartridgeUseCount = nvm.cartridgeUses[cartridge.id] ?? 0
  }

  /// A simulated power cycle: volatile state is lost, non-volatile memory survives (SR-032).
  public mutating func powerCycle() {
    truth.note(.reset, at: now)
    powerOn()
  }

  // MARK: The link

  /// Bytes from the host on bulk OUT 0x01.
  public mutating func receive(_ bytes: [UInt8]) {
    guard plugged, !hostSilenced, now >= bootUntil else { return }
    transcript?.record(now, .hostToPen, bytes)
    let events = decoder.feed(bytes)
    for event in events {
      switch event {
      case .frame(let frame):
        lastHostFrame = now
        handle(frame)
      case .rejected(let header, let error):
        lastHostFrame = now
        let (code, detail) = Self.nack(for: error)
        answer(header.sequence, [nackFrame(header.sequence, header.messageID, code, detail)])
      case .discarded:
        droppedFrames += 1
      }
    }
  }

  /// The vendor control request EMERGENCY_STOP on endpoint 0: works even when bulk is stuck.
  public mutating func controlEmergencyStop() {
    guard plugged else { return }
    emergencyStop()
  }

  /// Takes the frames waiting on an IN endpoint.
  public mutating func takeBulkIn() -> [[UInt8]] {
    defer { bulkIn.removeAll(keepingCapacity: true) }
    return bulkIn
  }

  public mutating func takeInterruptIn() -> [[UInt8]] {
    defer { interruptIn.removeAll(keepingCapacity: true) }
    return interruptIn
  }

  mutating func handle(_ frame: Frame) {
    let seq = frame.header.sequence
    if frame.header.flags.contains(.retransmission), let last = lastAnswered, last.sequence == seq {
      // Idempotent: answer again, do not act again.
      for f in last.frames { send(f, interrupt: false) }
      return
    }
    if MessageCatalogue.direction(id: frame.message.id) != .hostToPen {
      answer(seq, [nackFrame(seq, frame.message.id, .wrongDirection, 0)])
      return
    }
    switch frame.message {
    case .hello(let hello):
      if hello.protocolVersion != FrameLayout.protocolVersion {
        answer(
          seq, [nackFrame(seq, Hello.id, .unsupportedVersion, Int32(FrameLayout.protocolVersion))])
      } else if hello.catalogueHash != MessageCatalogue.hash {
        answer(
          seq,
          [nackFrame(seq, Hello.id, .catalogueMismatch, Int32(bitPattern: MessageCatalogue.hash))])
      } else {
        setServiceMode(false)
        penSequence = 0
        answer(seq, [responseFrame(.deviceInfo(deviceInfo()), seq)])
      }
    case .getStatus:
      answer(seq, [responseFrame(.status(status()), seq)])
    case .setSessionEnvelope(let m):
      do {
        let envelope = try SessionEnvelope.fromWire(m, model: model)
        if m.sessionId != boundSession {
          boundCartridge = nil
          boundSession = m.sessionId
        }
        reply(
          seq, SetSessionEnvelope.id, core.apply(.loadEnvelope(envelope, sessionID: m.sessionId)))
        if core.envelope != nil { log(.envelopeLoaded, value: Int32(m.area.rawValue)) }
      } catch {
        let (code, detail) = Self.nack(for: error)
        answer(seq, [nackFrame(seq, SetSessionEnvelope.id, code, detail)])
      }
    case .setParameters(let m):
      let setpoints = Setpoints(
        depth: m.depth, speed: m.speed, rfEnergyPerPin: m.rfEnergyPerPin,
        rfPulseDuration: m.rfPulseDuration)
      // The host has dealt with soft limits; the pen enforces the hard ones.
      reply(seq, SetParameters.id, core.apply(.setParameters(setpoints, confirmed: true)))
    case .arm:
      let verdict = core.apply(.arm)
      if verdict.isAccepted && boundCartridge != cartridge.id {
        nvm.cartridgeUses[cartridge.id, default: 0] += 1
        boundCartridge = cartridge.id
      }
      cartridgeUseCount = nvm.cartridgeUses[cartridge.id] ?? 0
      reply(seq, Arm.id, verdict)
    case .start:
      let verdict = core.apply(.start)
      if verdict.isAccepted { log(.treatmentStarted, value: 0) }
      reply(seq, Start.id, verdict)
    case .pause:
      reply(seq, Pause.id, core.apply(.pause))
    case .stop:
      let verdict = core.apply(.stop)
      if verdict.isAccepted { log(.treatmentStopped, value: 0) }
      reply(seq, Stop.id, verdict)
    case .disarm:
      reply(seq, Disarm.id, core.apply(.disarm))
    case .emergencyStop:
      emergencyStop()
      answer(
        seq, [responseFrame(.ack(Ack(ackedSequence: seq, ackedMessage: EmergencyStop.id)), seq)])
    case .acknowledgeFault(let m):
      let verdict = core.apply(.acknowledgeFault(m.fault))
      if verdict.isAccepted { log(.faultAcknowledged, value: Int32(m.fault.rawValue)) }
      reply(seq, AcknowledgeFault.id, verdict)
    case .resetEstop(let m):
      let verdict = core.apply(.resetEstop(estopCount: m.estopCount))
      if verdict.isAccepted { log(.estopReset, value: Int32(m.estopCount)) }
      reply(seq, ResetEstop.id, verdict)
    case .hostHeartbeat:
      break  // it has already reset the watchdog
    case .getCartridgeInfo:
      let status = cartridgeStatus()
      answer(
        seq,
        [
          responseFrame(
            .cartridgeInfo(
              CartridgeInfo(
                present: cartridge.present, valid: status.valid, cartridgeId: cartridge.id,
                needleCount: cartridge.needleCount, useCount: UInt16(clamping: status.useCount),
                maxUses: UInt16(clamping: cartridge.maxUses))), seq)
        ])
    case .readCalibration:
      var record = FixedBytes<64>()
      if let stored = nvm.calibrationRecord, let bytes = FixedBytes<64>(stored) { record = bytes }
      answer(
        seq,
        [
          responseFrame(
            .calibrationData(
              CalibrationData(present: nvm.calibrationRecord != nil, record: record)), seq)
        ])
    case .writeCalibration(let m):
      writeCalibration(m.record, sequence: seq)
    case .serviceChallengeRequest:
      service.expire(at: now)
      let locked = service.isLocked(at: now)
      let nonce = locked ? [UInt8](repeating: 0, count: 16) : service.challenge(using: &rng)
      let remaining = locked ? 0 : ServiceAuth.maxAttempts - service.failures
      let lockout = locked ? Double((service.lockedUntil!.rawValue - now.rawValue) / 1_000_000) : 0
      answer(
        seq,
        [
          responseFrame(
            .serviceChallenge(
              ServiceChallenge(
                nonce: FixedBytes<16>(nonce)!, attemptsRemaining: UInt8(remaining),
                lockoutRemaining: Seconds(lockout))), seq)
        ])
    case .serviceResponse(let m):
      switch service.verify(m.mac.bytes, key: nvm.serviceKey, serial: serial, now: now) {
      case .granted:
        setServiceMode(true)
        log(.serviceGranted, value: 0)
        answer(
          seq, [responseFrame(.ack(Ack(ackedSequence: seq, ackedMessage: ServiceResponse.id)), seq)]
        )
      case .refused:
        log(.serviceAuthFailed, value: Int32(service.failures))
        answer(
          seq,
          [
            nackFrame(
              seq, ServiceResponse.id, .serviceAuthFailed,
              Int32(ServiceAuth.maxAttempts - service.failures))
          ])
      case .locked:
        log(.serviceLocked, value: Int32(ServiceAuth.lockout.rawValue / 1_000_000))
        answer(
          seq,
          [
            nackFrame(
              seq, ServiceResponse.id, .serviceLocked,
              Int32((service.lockedUntil!.rawValue - now.rawValue) / 1_000_000))
          ])
      }
    case .readEventLog(let m):
      let total = UInt32(nvm.eventLog.count)
      let start = Int(min(m.startIndex, total))
      let end = min(start + Int(m.count), nvm.eventLog.count)
      let frames = (start..<end).map { i -> [UInt8] in
        let e = nvm.eventLog[i]
        return responseFrame(
          .eventLogEntry(
            EventLogEntry(
              index: UInt32(i), total: total, timestamp: e.timestamp, kind: e.kind, state: e.state,
              fault: e.fault,
              value: e.value)), seq)
      }
      answer(
        seq,
        frames.isEmpty
          ? [nackFrame(seq, ReadEventLog.id, .fieldOutOfRange, Int32(clamping: total))] : frames)
    case .exitServiceMode:
      setServiceMode(false)
      answer(
        seq, [responseFrame(.ack(Ack(ackedSequence: seq, ackedMessage: ExitServiceMode.id)), seq)])
    default:
      answer(seq, [nackFrame(seq, frame.message.id, .wrongDirection, 0)])
    }
  }

  mutating func emergencyStop() {
    let wasStopped = core.state == .estop
    core.apply(.emergencyStop)
    if !wasStopped {
      nvm.estopCount = core.estopCount
      log(.emergencyStop, value: Int32(core.estopCount))
    }
    // The actuators stop now, not at the next tick.
    actuation = .safe(core.state, fault: core.latchedFault)
  }

  /// Starts or ends a service-mode session; the safety core judges the next command with it at
  /// once (SR-033).
  mutating func setServiceMode(_ active: Bool) {
    service.active = active
    core.serviceModeChanged(to: active)
  }

  mutating func writeCalibration(_ bytes: FixedBytes<64>, sequence seq: UInt16) {
    guard service.active else {
      answer(seq, [nackFrame(seq, WriteCalibration.id, .notInServiceMode, 0)])
      return
    }
    guard core.state == .idle || core.state == .ready else {
      answer(
        seq, [nackFrame(seq, WriteCalibration.id, .illegalTransition, Int32(core.state.rawValue))])
      return
    }
    do {
      let record = try CalibrationRecord.decode(bytes)
      // calibration.md: the detail is the offset of the field that does not match this pen.
      if record.model != model {
        answer(seq, [nackFrame(seq, WriteCalibration.id, .badCalibrationRecord, 6)])
        return
      }
      if record.serial != serial {
        answer(seq, [nackFrame(seq, WriteCalibration.id, .badCalibrationRecord, 8)])
        return
      }
      nvm.calibrationRecord = bytes.bytes
      loadCalibration()
      log(.calibrationWritten, value: Int32(record.source.rawValue))
      answer(
        seq, [responseFrame(.ack(Ack(ackedSequence: seq, ackedMessage: WriteCalibration.id)), seq)])
    } catch {
      answer(
        seq, [nackFrame(seq, WriteCalibration.id, .badCalibrationRecord, error.nackDetail ?? 0)])
    }
  }

  // MARK: Frames out

  mutating func emit(_ message: Message) {
    let frame = (try? FrameCodec.encode(message, sequence: penSequence)) ?? []
    penSequence &+= 1
    send(frame, interrupt: false)
  }

  mutating func send(_ frame: [UInt8], interrupt: Bool) {
    guard plugged, !frame.isEmpty else { return }
    transcript?.record(now, interrupt ? .penToHostInterrupt : .penToHost, frame)
    if interrupt { interruptIn.append(frame) } else { bulkIn.append(frame) }
  }

  func responseFrame(_ message: Message, _ seq: UInt16) -> [UInt8] {
    (try? FrameCodec.encode(message, sequence: seq, flags: .response)) ?? []
  }

  func nackFrame(_ seq: UInt16, _ id: UInt16, _ code: NackCode, _ detail: Int32) -> [UInt8] {
    responseFrame(
      .nack(Nack(ackedSequence: seq, ackedMessage: id, code: code, detail: detail)), seq)
  }

  mutating func answer(_ seq: UInt16, _ frames: [[UInt8]]) {
    lastAnswered = (seq, frames)
    for f in frames { send(f, interrupt: false) }
  }

  mutating func reply(_ seq: UInt16, _ id: UInt16, _ verdict: Verdict) {
    switch verdict {
    case .refuse(let r):
      answer(seq, [nackFrame(seq, id, r.code, r.nackDetail)])
    default:
      answer(seq, [responseFrame(.ack(Ack(ackedSequence: seq, ackedMessage: id)), seq)])
    }
    if core.state != lastReportedState { reportStateChange() }
  }

  mutating func reportStateChange() {
    log(.stateChange, value: Int32(lastReportedState.rawValue))
    lastReportedState = core.state
    emit(.status(status()))
  }

  mutating func emitTelemetry(_ i: TickInputs, _ a: Actuation) {
    let t = Telemetry(
      timestamp: now, state: core.state, fault: core.latchedFault, flags: a.flags,
      depth: Millimetres(Self.clamp(i.depth.value, 0, 6)),
      speed: Hertz(Self.clamp(i.speed.value, 0, 400)),
      rfPower: Watts(Self.clamp(i.rfPower.value, 0, 400)),
      pulseEnergyPerPin: Millijoules(Self.clamp(lastPulseEnergyPerPin.value, 0, 400)),
      impedance: Ohms(Self.clamp(i.impedance.value, 0, 65535)),
      tissueTemperature: Celsius(Self.clamp(i.tissueTemperature.value, -40, 150)),
      handpieceTemperature: Celsius(Self.clamp(i.handpieceTemperature.value, -40, 150)),
      rfDelivered: Millijoules(Self.clamp(core.rfDelivered.value.rounded(), 0, 4_000_000)),
      rfRemaining: Millijoules(Self.clamp(core.rfRemaining.value.rounded(.down), 0, 4_000_000)),
      pulseCount: pulseCount)
    let frame = (try? FrameCodec.encode(.telemetry(t), sequence: penSequence)) ?? []
    penSequence &+= 1
    send(frame, interrupt: true)
  }

  /// A reading outside what the wire can carry is sent as the nearest bound; NaN as the upper one
  /// (a host reading it sees a violation, and the fault field says why).
  static func clamp(_ v: Double, _ lo: Double, _ hi: Double) -> Double {
    v.isNaN ? hi : min(hi, max(lo, v))
  }

  func deviceInfo() -> DeviceInfo {
    var capabilities = Capabilities.empty
    capabilities.insert(.needling)
    capabilities.insert(.depthEncoder)
    capabilities.insert(.tachometer)
    capabilities.insert(.handpieceTemperatureSensor)
    capabilities.insert(.skinContactSensor)
    capabilities.insert(.cartridgeChip)
    if capability.hasRF {
      capabilities.insert(.rf)
      capabilities.insert(.impedanceSensor)
      capabilities.insert(.tissueTemperatureSensor)
    }
    return DeviceInfo(
      model: model, serial: serial, firmwareMajor: Self.firmwareVersion.major,
      firmwareMinor: Self.firmwareVersion.minor, firmwarePatch: Self.firmwareVersion.patch,
      protocolVersion: FrameLayout.protocolVersion, catalogueHash: catalogueHash,
      capabilities: capabilities, minDepth: capability.minDepth, maxDepth: capability.maxDepth,
      depthStep: capability.depthStep, minSpeed: capability.minSpeed, maxSpeed: capability.maxSpeed,
      pinCount: UInt8(capability.pinCount),
      rfFrequency: Hertz(capability.hasRF ? 2_000_000 : 0), maxRfPower: capability.maxRFPower,
      maxRfEnergyPerPin: capability.maxRFEnergyPerPin)
  }

  func status() -> Status {
    // The interlock bits as they stand now, not as the last tick saw them: a status asked for
    // right after a command (service granted, a record written) must already show its effect.
    var flags = actuation.flags
    let cartridge = cartridgeStatus()
    flags.set(.calibrationValid, calibrationStatus == .valid)
    flags.set(.cartridgeValid, cartridge.present && cartridge.valid)
    flags.set(.envelopeLoaded, core.envelope != nil)
    flags.set(.serviceMode, service.active)
    return Status(
      state: core.state, fault: core.latchedFault, flags: flags,
      sessionId: core.sessionID,
      area: core.envelope?.area ?? .none,
      rfDelivered: Millijoules(Self.clamp(core.rfDelivered.value.rounded(), 0, 4_000_000)),
      rfRemaining: Millijoules(Self.clamp(core.rfRemaining.value.rounded(.down), 0, 4_000_000)),
      estopCount: core.estopCount, uptime: now)
  }

  mutating func log(_ kind: EventKind, value: Int32) {
    nvm.log(
      LoggedEvent(
        timestamp: now, kind: kind, state: core.state, fault: core.latchedFault, value: value))
  }

  // MARK: Cartridge and calibration

  func cartridgeStatus() -> CartridgeStatus {
    let active = core.state == .armed || core.state == .treating || core.state == .paused
    // A cartridge other than the one armed for this session is a swap: invalid while active.
    let swapped = active && boundCartridge != nil && boundCartridge != cartridge.id
    return CartridgeStatus(
      present: cartridge.present, valid: cartridge.valid && !swapped,
      useCount: cartridgeUseCount, maxUses: cartridge.maxUses,
      boundToSession: boundCartridge == cartridge.id)
  }

  /// Decodes the stored record: its status for arming (SR-019), and the correction in force — the
  /// record's whenever it decodes and belongs to this pen (model and serial), verified or not,
  /// marked bad or not; otherwise none, which is the neutral correction (calibration.md section 2).
  mutating func loadCalibration() {
    guard let stored = nvm.calibrationRecord, let bytes = FixedBytes<64>(stored) else {
      calibration = nil
      calibrationStatus = .missing
      return
    }
    guard let record = try? CalibrationRecord.decode(bytes) else {
      calibration = nil
      calibrationStatus = .corrupt
      return
    }
    // Another pen's record corrects nothing on this one, whatever its flags say.
    guard record.model == model && record.serial == serial else {
      calibration = nil
      calibrationStatus = .wrongPen
      return
    }
    calibration = record
    calibrationStatus = CalibrationStatus(record.validity(forModel: model, serial: serial))
  }

  /// The factory's calibration: it measured this unit's imperfections on its own fixtures (with
  /// their small uncertainty) and wrote the inverse correction.
  mutating func writeFactoryCalibration() {
    let p = physics.profile
    var g = SeededGenerator(seed: seed ^ 0xFAC7_0123)
    let depthGain = 1 / p.depthGain * (1 + g.uniform(-0.002...0.002))
    let record = CalibrationRecord(
      source: .factory, markedBad: false, verified: true, model: model, serial: serial,
      timestamp: 1_767_225_600, depthGain: depthGain,
      depthOffset: Millimetres(-p.depthOffset.value * depthGain),
      speedGain: 1 / p.speedGain * (1 + g.uniform(-0.003...0.003)),
      rfGain: capability.hasRF ? 1 / p.rfGain * (1 + g.uniform(-0.005...0.005)) : 1,
      depthError: Millimetres(0.008), speedError: 0.006, rfError: capability.hasRF ? 0.012 : 0,
      technician: 0)
    if let bytes = try? record.encode() {
      nvm.calibrationRecord = bytes.bytes
    }
    loadCalibration()
  }

  // MARK: Faults

  /// Schedules a fault at a point of virtual time (now or later).
  public mutating func inject(_ fault: ScheduledFault) {
    schedule.append(fault)
    schedule.sort { $0.at < $1.at }
    nextFaultCheck = min(nextFaultCheck, fault.at)
    if fault.at <= now { updateFaults() }
  }

  /// The faults in force now.
  public var activeFaultKinds: [FaultKind] { activeFaults.map(\.kind) }

  mutating func updateFaults() {
    while let first = schedule.first, first.at <= now {
      schedule.removeFirst()
      let until = first.duration.map { Microseconds(first.at.rawValue + $0.rawValue) }
      truth.note(.faultInjected(first.kind), at: now)
      start(first.kind)
      if first.kind != .brownOut { activeFaults.append((first.kind, until)) }
    }
    let ending = activeFaults.filter { $0.until.map { $0 <= now } ?? false }
    activeFaults.removeAll { $0.until.map { $0 <= now } ?? false }
    for fault in ending {
      truth.note(.faultCleared(fault.kind), at: now)
      stop(fault.kind)
    }
    let ends = activeFaults.compactMap(\.until)
    nextFaultCheck =
      ([schedule.first?.at].compactMap { $0 } + ends).min() ?? Microseconds(UInt64.max)
  }

  mutating func start(_ kind: FaultKind) {
    switch kind {
    case .sensor(let id, let fault): sensors.set(id, fault)
    case .usbUnplug:
      plugged = false
      bulkIn.removeAll()
      interruptIn.removeAll()
    case .hostSilence: hostSilenced = true
    case .rfStuckOn: physics.rfStuck = true
    case .motorStall: physics.stalled = true
    case .overTemperature: physics.overheating = true
    case .impedanceOpen: physics.impedanceOverride = Ohms(65535)
    case .impedanceShort: physics.impedanceOverride = Ohms(5)
    case .cartridgeReuse:
      let used = cartridge.id &+ 0x1000
      nvm.cartridgeUses[used] = cartridge.maxUses
      cartridge = SimulatedCartridge(
        id: used, needleCount: cartridge.needleCount, maxUses: cartridge.maxUses)
      cartridgeUseCount = cartridge.maxUses
    case .brownOut:
      log(.brownOut, value: 0)
      powerCycle()
    }
  }

  mutating func stop(_ kind: FaultKind) {
    switch kind {
    case .sensor(let id, _): sensors.set(id, nil)
    case .usbUnplug:
      plugged = true
      decoder.reset()
    case .hostSilence: hostSilenced = false
    case .rfStuckOn: physics.rfStuck = false
    case .motorStall: physics.stalled = false
    case .overTemperature: physics.overheating = false
    case .impedanceOpen, .impedanceShort: physics.impedanceOverride = nil
    case .cartridgeReuse, .brownOut: break
    }
  }

  // MARK: Refusals on the wire

  static func nack(for error: WireError) -> (NackCode, Int32) {
    switch error {
    case .unsupportedVersion(let v): (.unsupportedVersion, Int32(v))
    case .unknownMessage(let id): (.unknownMessage, Int32(id))
    case .badLength(let declared, _): (.badLength, Int32(clamping: declared))
    case .fieldOutOfRange(_, let raw): (.fieldOutOfRange, Int32(clamping: raw))
    case .reservedFlags(let f): (.fieldOutOfRange, Int32(f))
    default: (.fieldOutOfRange, 0)
    }
  }

  static func nack(for error: EnvelopeError) -> (NackCode, Int32) {
    switch error {
    case .rfNotAllowed, .rfOnMechanicalPen: (.rfNotAllowed, 0)
    case .aboveLimit(let q, _, let limit, _), .belowLimit(let q, _, let limit, _):
      (.outsideEnvelope, Refusal(.outsideEnvelope, q, value: 0, limit: limit).nackDetail)
    default: (.outsideEnvelope, 0)
    }
  }
}

/// Every frame that crossed the link, with its virtual time: the golden-transcript format.
public struct Transcript: Sendable, Hashable {
  public enum Direction: String, Sendable, Hashable {
    case hostToPen = "H>P"
    case penToHost = "P>H"
    case penToHostInterrupt = "P>H*"
  }

  public private(set) var lines: [String] = []

  public init() {}

  mutating func record(_ t: Microseconds, _ direction: Direction, _ bytes: [UInt8]) {
    let ms = String(format: "%10.1f", Double(t.rawValue) / 1000)
    let hex = bytes.map { String(format: "%02x", $0) }.joined()
    var name = "?"
    if let frame = try? FrameCodec.decode(bytes),
      let n = MessageCatalogue.name(id: frame.message.id)
    {
      name = "\(n)"
    }
    lines.append("\(ms) ms \(direction.rawValue) \(name) \(hex)")
  }

  /// The transcript as text, one frame a line.
  public var text: String { lines.joined(separator: "\n") + "\n" }
}
