import PenDriver
import PenSafety
import PenSimulator
import PenSimulatorTestKit
import PenWire
import Testing

/// A forehead RF session loaded and armed on a simulated pen, ready to start.
func armedRFPen(seed: UInt64 = 42, transcript: Bool = false) throws -> HostScript {
  let host = try HostScript.simulated(model: .rf200, seed: seed, recordTranscript: transcript)
  let envelope = try SessionEnvelope.build(
    model: .rf200, area: .forehead,
    preset: PresetLimits(
      depth: SoftRange(Millimetres(0.75), min: Millimetres(0.5), max: Millimetres(1.0)),
      speed: SoftRange(Hertz(2), min: Hertz(1), max: Hertz(3)),
      rfEnergyPerPin: SoftRange(Millijoules(20), min: Millijoules(10), max: Millijoules(25)),
      rfPulseDuration: Milliseconds(60)),
    skin: .typeII)
  host.pen!.with { $0.physics.skinContact = true }
  try host.command(.setSessionEnvelope(envelope.wireMessage(sessionID: 11)))
  try host.command(
    .setParameters(
      SetParameters(
        depth: Millimetres(0.75), speed: Hertz(2), rfEnergyPerPin: Millijoules(20),
        rfPulseDuration: Milliseconds(60))))
  try host.command(.arm(Arm()))
  return host
}

@Suite("Simulated pen")
struct SimulatorTests {
  @Test("handshake: the pen reports model, serial, versions and this build's catalogue hash")
  func handshake() throws {
    let host = try HostScript.simulated(model: .rf200, seed: 42)
    let info = try #require(host.device)
    #expect(info.model == .rf200)
    #expect(info.serial.description == "SIM-RF200-000042")
    #expect(info.catalogueHash == MessageCatalogue.hash)
    #expect(info.protocolVersion == 1)
    #expect(info.capabilities.contains(.rf) && info.capabilities.contains(.impedanceSensor))
    #expect(info.maxDepth == Millimetres(3.5) && info.pinCount == 24)
  }

  @Test("a host with another catalogue hash is refused, and told the pen's hash")
  func catalogueMismatch() throws {
    let host = try HostScript.simulated(model: .mn100, seed: 1)
    #expect {
      try host.hello(catalogueHash: 0xDEAD_BEEF)
    } throws: { error in
      guard case HostScript.Failure.refused(let nack) = error else { return false }
      return nack.code == .catalogueMismatch
        && UInt32(bitPattern: nack.detail) == MessageCatalogue.hash
    }
  }

  @Test("every command is acknowledged or answered, and the state follows the state machine")
  func commands() throws {
    let host = try armedRFPen()
    func state() throws -> PenState {
      guard case .status(let s) = try host.command(.getStatus(GetStatus())) else {
        throw HostScript.Failure.unexpected("no status")
      }
      return s.state
    }
    #expect(try state() == .armed)
    try host.command(.start(Start()))
    #expect(try state() == .treating)
    try host.command(.pause(Pause()))
    #expect(try state() == .paused)
    try host.command(.start(Start()))
    try host.command(.stop(Stop()))
    #expect(try state() == .armed)
    try host.command(.disarm(Disarm()))
    #expect(try state() == .ready)
    guard case .cartridgeInfo(let c) = try host.command(.getCartridgeInfo(GetCartridgeInfo()))
    else {
      Issue.record("no cartridge info")
      return
    }
    #expect(c.present && c.useCount == 1 && c.maxUses == 1)
    guard case .calibrationData(let cal) = try host.command(.readCalibration(ReadCalibration()))
    else {
      Issue.record("no calibration data")
      return
    }
    #expect(cal.present)
    #expect(try CalibrationRecord.decode(cal.record).source == .factory)
    try host.command(.emergencyStop(EmergencyStop()))
    #expect(try state() == .estop)
    try host.command(.emergencyStop(EmergencyStop()))  // never refused
    #expect(throws: HostScript.Failure.self) { try host.command(.start(Start())) }
  }

  @Test("SR-001: a depth beyond the loaded envelope is refused by the pen itself with the limit")
  func penRefusesDepth() throws {
    let host = try armedRFPen()
    #expect {
      try host.command(
        .setParameters(
          SetParameters(
            depth: Millimetres(1.5), speed: Hertz(2), rfEnergyPerPin: Millijoules(20),
            rfPulseDuration: Milliseconds(60))))
    } throws: { error in
      guard case HostScript.Failure.refused(let nack) = error else { return false }
      return nack.code == .outsideEnvelope && nack.detail == 1000
    }
  }

  @Test("telemetry arrives at 100 Hz on the interrupt endpoint while treating, and RF is delivered")
  func telemetryAndTreatment() throws {
    let host = try armedRFPen()
    try host.command(.start(Start()))
    try host.run(for: .seconds(2))
    let samples = host.telemetry.filter { $0.state == .treating }
    #expect(samples.count >= 195 && samples.count <= 201)
    let truth = host.pen!.with { $0.truth }
    #expect(truth.pulses >= 2, "at 2 Hz two seconds give about four strokes")
    #expect(truth.rfEnergy.value > 0)
    #expect(truth.maxPulseEnergyPerPin.value <= 20 * 1.001)
    #expect(truth.maxDepth.value <= 1.0 + 0.05)
    #expect(truth.rfEnergyWithoutContact == .zero)
    #expect(samples.last!.rfDelivered.value > 0)
  }

  @Test(
    "SR-015: host silence while treating puts the pen in its safe state within the bound (truth record)"
  )
  func heartbeatLoss() throws {
    let host = try armedRFPen()
    try host.command(.start(Start()))
    try host.run(for: .milliseconds(500))
    let silentFrom = host.pen!.with { $0.now }
    host.silence(for: .seconds(1))
    let (state, fault, truth) = host.pen!.with { ($0.core.state, $0.core.latchedFault, $0.truth) }
    #expect(state == .fault && fault == .heartbeatLost)
    let bound =
      silentFrom.rawValue + SafetyTiming.heartbeatTimeout.rawValue + 2
      * SafetyTiming.controlTick.rawValue
    #expect((truth.lastRFOn?.rawValue ?? 0) <= bound)
    #expect((truth.lastDriving?.rawValue ?? 0) <= bound + PenFirmware.bootTime.rawValue)
  }

  @Test("non-volatile memory survives a power cycle; volatile state does not (SR-032)")
  func nvmPersistence() throws {
    let host = try armedRFPen()
    try host.command(.emergencyStop(EmergencyStop()))
    let before = host.pen!.with { $0.nvm }
    host.pen!.with { $0.powerCycle() }
    host.pen!.advance(by: .milliseconds(60))
    let (after, state, envelope, estop) = host.pen!.with {
      ($0.nvm, $0.core.state, $0.core.envelope, $0.core.estopCount)
    }
    #expect(after.calibrationRecord == before.calibrationRecord)
    #expect(after.cartridgeUses == before.cartridgeUses && after.estopCount == 1 && estop == 1)
    #expect(after.eventLog.count >= before.eventLog.count)
    #expect(state == .idle && envelope == nil)
    // A pen restored from its NVM alone (a new process) keeps it too.
    let restored = PenFirmware(model: .rf200, serial: "SIM-RF200-000042", seed: 42, nvm: after)
    #expect(restored.nvm == after)
  }

  @Test("the event log reads back over the wire")
  func eventLog() throws {
    let host = try armedRFPen()
    try host.command(.start(Start()))
    try host.command(.stop(Stop()))
    _ = try host.command(.readEventLog(ReadEventLog(startIndex: 0, count: 64)))
    try host.run(for: .milliseconds(5))
    let entries = host.events.compactMap { if case .eventLogEntry(let e) = $0 { e } else { nil } }
    #expect(entries.map(\.kind).contains(.treatmentStarted))
  }

  @Test(
    "service mode: a wrong response is refused and counted; three lock it out; the right key opens it"
  )
  func serviceLockout() throws {
    let host = try HostScript.simulated(model: .rf200, seed: 7)
    let serial = SimulatedPen.serial(model: .rf200, seed: 7)
    let key = simulatedServiceKey(serial: serial)
    func challenge() throws -> ServiceChallenge {
      guard
        case .serviceChallenge(let c) = try host.command(
          .serviceChallengeRequest(ServiceChallengeRequest()))
      else {
        throw HostScript.Failure.unexpected("no challenge")
      }
      return c
    }
    var c = try challenge()
    #expect(c.attemptsRemaining == 3)
    let good = serviceResponse(key: key, nonce: c.nonce.bytes, serial: serial)
    let wrong = FixedBytes<32>(Array(repeating: 0x55, count: 32))!
    for expectedLeft: Int32 in [2, 1] {
      _ = try challenge()
      #expect { try host.command(.serviceResponse(ServiceResponse(mac: wrong))) } throws: { error in
        guard case HostScript.Failure.refused(let n) = error else { return false }
        return n.code == .serviceAuthFailed && n.detail == expectedLeft
      }
    }
    _ = try challenge()
    #expect { try host.command(.serviceResponse(ServiceResponse(mac: wrong))) } throws: { error in
      guard case HostScript.Failure.refused(let n) = error else { return false }
      return n.code == .serviceLocked && n.detail == 300
    }
    c = try challenge()
    #expect(c.attemptsRemaining == 0 && c.lockoutRemaining.value > 299)
    // Even the right key is refused while locked out.
    #expect(throws: HostScript.Failure.self) {
      try host.command(.serviceResponse(ServiceResponse(mac: FixedBytes<32>(good)!)))
    }
    host.pen!.advance(by: .seconds(301))
    _ = try host.hello()
    c = try challenge()
    #expect(c.attemptsRemaining == 3)
    try host.command(
      .serviceResponse(
        ServiceResponse(
          mac: FixedBytes<32>(serviceResponse(key: key, nonce: c.nonce.bytes, serial: serial))!)))
    let written = host.pen!.with { $0.nvm.eventLog.map(\.kind) }
    #expect(written.contains(.serviceLocked) && written.contains(.serviceGranted))
  }

  @Test("calibration writes need service mode; with it, a valid record is stored")
  func calibrationWrite() throws {
    let host = try HostScript.simulated(model: .mn100, seed: 9)
    guard case .calibrationData(let data) = try host.command(.readCalibration(ReadCalibration()))
    else { return }
    #expect(
      throws: HostScript.Failure.refused(
        Nack(
          ackedSequence: 2, ackedMessage: WriteCalibration.id, code: .notInServiceMode, detail: 0))
    ) {
      try host.command(.writeCalibration(WriteCalibration(record: data.record)))
    }
    let serial = SimulatedPen.serial(model: .mn100, seed: 9)
    guard
      case .serviceChallenge(let c) = try host.command(
        .serviceChallengeRequest(ServiceChallengeRequest()))
    else { return }
    try host.command(
      .serviceResponse(
        ServiceResponse(
          mac: FixedBytes<32>(
            serviceResponse(
              key: simulatedServiceKey(serial: serial), nonce: c.nonce.bytes, serial: serial))!)))
    var record = try CalibrationRecord.decode(data.record)
    record.source = .technician
    record.technician = 4711
    try host.command(.writeCalibration(WriteCalibration(record: try record.encode())))
    let stored = host.pen!.with { $0.nvm.calibrationRecord }
    #expect(try CalibrationRecord.decode(FixedBytes<64>(stored!)!).source == .technician)
  }

  @Test("an uncalibrated unit is out of tolerance: its imperfections exceed what the spec allows")
  func imperfectionsNeedCalibration() {
    for seed: UInt64 in 1...50 {
      let p = UnitProfile.drawn(seed: seed)
      // At 1 mm the depth error alone exceeds 0.05 mm; speed and RF gains exceed 5 % and 10 %.
      #expect(
        abs(p.depthGain * 1 + p.depthOffset.value - 1) > 0.05 || abs(p.depthOffset.value) > 0.05)
      #expect(abs(p.speedGain - 1) > 0.05 && abs(p.rfGain - 1) > 0.10)
      #expect(abs(1 / p.depthGain - 1) < 0.25 && abs(p.depthOffset.value) < 0.3)
    }
  }

  @Test("determinism: the same seed and script give a byte-identical transcript")
  func determinism() throws {
    func run() throws -> String {
      let host = try armedRFPen(seed: 5, transcript: true)
      try host.command(.start(Start()))
      try host.run(for: .milliseconds(800))
      try host.command(.stop(Stop()))
      return host.pen!.with { $0.transcript!.text }
    }
    let a = try run()
    let b = try run()
    #expect(a == b)
    #expect(a.split(separator: "\n").count > 80)
  }
}
