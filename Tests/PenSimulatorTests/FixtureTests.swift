import PenSafety
import PenSimulator
import PenSimulatorTestKit
import PenWire
import Testing

/// Grants service mode on a simulated pen, as a technician's tool would.
func enterServiceMode(_ host: HostScript, model: PenModelID, seed: UInt64) throws {
  let serial = SimulatedPen.serial(model: model, seed: seed)
  guard
    case .serviceChallenge(let c) = try host.command(
      .serviceChallengeRequest(ServiceChallengeRequest()))
  else {
    throw HostScript.Failure.unexpected("no challenge")
  }
  let mac = serviceResponse(
    key: simulatedServiceKey(serial: serial), nonce: c.nonce.bytes, serial: serial)
  try host.command(.serviceResponse(ServiceResponse(mac: FixedBytes<32>(mac)!)))
}

/// An RF pen on the body envelope (deep enough for a 0.5 and a 2.0 mm setpoint), treating.
func treatingOnBody(seed: UInt64, depth: Double, neutralCalibration: Bool = false) throws
  -> HostScript
{
  let host = try HostScript.simulated(model: .rf200, seed: seed)
  if neutralCalibration {
    // A record that claims to be verified but corrects nothing: the pen trusts it, the fixtures do not.
    try enterServiceMode(host, model: .rf200, seed: seed)
    let neutral = CalibrationRecord(
      source: .technician, markedBad: false, verified: true, model: .rf200,
      serial: FixedASCII<16>(string: SimulatedPen.serial(model: .rf200, seed: seed))!,
      timestamp: 1_767_225_600,
      depthGain: 1, depthOffset: .zero, speedGain: 1, rfGain: 1, depthError: .zero, speedError: 0,
      rfError: 0,
      technician: 7)
    try host.command(.writeCalibration(WriteCalibration(record: try neutral.encode())))
  }
  let envelope = try SessionEnvelope.build(
    model: .rf200, area: .body,
    preset: PresetLimits(
      depth: SoftRange(Millimetres(depth), min: Millimetres(0.5), max: Millimetres(2.0)),
      speed: SoftRange(Hertz(3), min: Hertz(1), max: Hertz(3)),
      rfEnergyPerPin: SoftRange(Millijoules(30), min: Millijoules(10), max: Millijoules(30)),
      rfPulseDuration: Milliseconds(100)),
    skin: .typeII)
  host.pen!.with { $0.attachRFLoad(true) }
  try host.command(.setSessionEnvelope(envelope.wireMessage(sessionID: 5)))
  try host.command(
    .setParameters(
      SetParameters(
        depth: Millimetres(depth), speed: Hertz(3), rfEnergyPerPin: Millijoules(30),
        rfPulseDuration: Milliseconds(100))))
  try host.command(.arm(Arm()))
  try host.command(.start(Start()))
  try host.run(for: .seconds(2))
  let (state, fault) = host.pen!.with { ($0.core.state, $0.core.latchedFault) }
  guard state == .treating else {
    throw HostScript.Failure.unexpected("pen left treatment: \(state) \(fault)")
  }
  return host
}

@Suite("Reference fixtures")
struct FixtureTests {
  @Test(
    "with its factory calibration, the fixtures find the pen within tolerance at every setpoint")
  func calibratedPenWithinTolerance() throws {
    for depth in [0.5, 2.0] {
      let host = try treatingOnBody(seed: 31, depth: depth)
      let (gauge, tach, meter) = host.pen!.with {
        ($0.measureDepthWithGauge(), $0.measureSpeedWithTachometer(), $0.readPowerMeter())
      }
      #expect(abs(gauge.value - depth) <= 0.05, "gauge \(gauge.value) mm at \(depth) mm")
      #expect(abs(tach.value / 3 - 1) <= 0.05, "tachometer \(tach.value) Hz at 3 Hz")
      #expect(abs(meter.value / 30 - 1) <= 0.10, "power meter \(meter.value) mJ/pin at 30")
    }
  }

  @Test("with a calibration that corrects nothing, the tachometer shows the unit's speed error")
  func uncalibratedPenOutOfTolerance() throws {
    let host = try treatingOnBody(seed: 31, depth: 2.0, neutralCalibration: true)
    let tach = host.pen!.with { $0.measureSpeedWithTachometer() }
    #expect(abs(tach.value / 3 - 1) > 0.05, "tachometer \(tach.value) Hz at 3 Hz")
    let profile = UnitProfile.drawn(seed: 31)
    let gauge = host.pen!.with { $0.measureDepthWithGauge() }
    let expected = profile.depthGain * 2.0 + profile.depthOffset.value
    #expect(abs(gauge.value - expected) <= 0.01, "the gauge sees the unit's true depth")
  }

  @Test("each fixture has its own small uncertainty")
  func fixtureUncertainty() throws {
    let host = try treatingOnBody(seed: 8, depth: 1.0)
    host.pen!.with { $0.physics.skinContact = true }
    let readings = (0..<200).map { _ in host.pen!.with { $0.measureDepthWithGauge().value } }
    let spread = readings.max()! - readings.min()!
    #expect(spread > 0 && spread <= 2 * ReferenceFixtures.depthUncertainty.value)
  }
}

@Suite("Faults and estop over the wire")
struct WireRecoveryTests {
  @Test("SR-021: a fault is acknowledged over the wire only once its cause is gone")
  func acknowledgeOverWire() throws {
    let host = try armedRFPen(seed: 12)
    try host.command(.start(Start()))
    host.pen!.with {
      $0.inject(ScheduledFault(.overTemperature, at: $0.now, duration: .milliseconds(10)))
    }
    try host.run(for: .milliseconds(20))
    #expect(host.pen!.with { $0.core.latchedFault } == .tissueOverTemperature)
    #expect {
      try host.command(.acknowledgeFault(AcknowledgeFault(fault: .tissueOverTemperature)))
    } throws: { error in
      guard case HostScript.Failure.refused(let n) = error else { return false }
      return n.code == .faultActive
    }
    try host.run(for: .seconds(5))  // the tissue cools below the cut-off and its hysteresis
    try host.command(.acknowledgeFault(AcknowledgeFault(fault: .tissueOverTemperature)))
    #expect(host.pen!.with { $0.core.state } == .ready)
    let faults = host.events.compactMap { if case .faultEvent(let f) = $0 { f.fault } else { nil } }
    #expect(faults == [.tissueOverTemperature])
  }

  @Test("SR-023: estop clears over the wire only with the current estop count")
  func resetEstopOverWire() throws {
    let host = try armedRFPen(seed: 13)
    try host.command(.emergencyStop(EmergencyStop()))
    try host.run(for: .milliseconds(100))
    guard case .status(let s) = try host.command(.getStatus(GetStatus())) else { return }
    #expect(s.state == .estop && s.estopCount == 1)
    #expect {
      try host.command(.resetEstop(ResetEstop(estopCount: 0)))
    } throws: { error in
      guard case HostScript.Failure.refused(let n) = error else { return false }
      return n.code == .estopActive && n.detail == 0
    }
    try host.command(.resetEstop(ResetEstop(estopCount: 1)))
    #expect(host.pen!.with { ($0.core.state, $0.core.envelope) } == (.idle, nil))
  }

  @Test("SR-022: the endpoint-0 emergency stop works when the bulk path is silent")
  func controlRequestEstop() throws {
    let host = try armedRFPen(seed: 14)
    try host.command(.start(Start()))
    try host.run(for: .milliseconds(300))
    host.pen!.with { $0.inject(ScheduledFault(.hostSilence, at: $0.now)) }
    try host.transport.emergencyStop()
    let (state, truth, now) = host.pen!.with { ($0.core.state, $0.truth, $0.now) }
    #expect(state == .estop)
    host.pen!.advance(by: .milliseconds(100))
    let after = host.pen!.with { $0.truth }
    #expect(
      (after.lastRFOn ?? .zero) <= now
        && (after.lastDriving ?? .zero) <= Microseconds(now.rawValue + 100))
    _ = truth
  }
}
