import PenSafety
import PenSimulator
import PenSimulatorTestKit
import PenWire
import Testing

/// SR-033 on the simulated pen, over the wire: a technician's service-mode session lets a pen
/// without a record valid for arming be swept, with the correction in force of calibration.md
/// section 2, and only while the session lasts.
@Suite("Calibration sweep in service mode (SR-033)")
struct ServiceModeSweepTests {
  static let seed: UInt64 = 21
  static let serial = SimulatedPen.serial(model: .rf200, seed: seed)

  /// A record for this pen (or `serial`) with the given flags and depth correction.
  static func record(
    markedBad: Bool = false, verified: Bool = false, depthGain: Double = 1,
    serial: String = serial
  ) -> CalibrationRecord {
    CalibrationRecord(
      source: .technician, markedBad: markedBad, verified: verified, model: .rf200,
      serial: FixedASCII<16>(string: serial)!, timestamp: 1_767_225_600, depthGain: depthGain,
      depthOffset: .zero, speedGain: 1, rfGain: 1, depthError: .zero, speedError: 0, rfError: 0,
      technician: 7)
  }

  /// A booted rf200 whose non-volatile memory holds `record` (or nothing), hand-shaken.
  static func pen(holding record: CalibrationRecord?) throws -> HostScript {
    var nvm = NonVolatileMemory(
      model: .rf200, serial: serial, serviceKey: simulatedServiceKey(serial: serial))
    nvm.calibrationRecord = try record?.encode().bytes
    let pen = SimulatedPen(PenFirmware(model: .rf200, serial: serial, seed: seed, nvm: nvm))
    pen.advance(by: PenFirmware.bootTime)
    let host = HostScript(transport: LoopbackTransport(pen: pen), pen: pen)
    try host.hello()
    return host
  }

  /// Loads the body envelope and sets a 2.0 mm, 2 Hz setpoint without RF.
  static func ready(_ host: HostScript) throws {
    let envelope = try SessionEnvelope.build(
      model: .rf200, area: .body,
      preset: PresetLimits(
        depth: SoftRange(Millimetres(0.5), min: Millimetres(0.5), max: Millimetres(3.5)),
        speed: SoftRange(Hertz(2), min: Hertz(0.5), max: Hertz(4))),
      skin: .typeI)
    try host.command(.setSessionEnvelope(envelope.wireMessage(sessionID: 33)))
    try host.command(
      .setParameters(
        SetParameters(
          depth: Millimetres(2.0), speed: Hertz(2), rfEnergyPerPin: .zero,
          rfPulseDuration: .zero)))
  }

  static func refusedArming(_ host: HostScript) -> NackCode? {
    do {
      try host.command(.arm(Arm()))
      return nil
    } catch HostScript.Failure.refused(let nack) {
      return nack.code
    } catch {
      return nil
    }
  }

  static func status(_ host: HostScript) throws -> Status {
    guard case .status(let s) = try host.command(.getStatus(GetStatus())) else {
      throw HostScript.Failure.unexpected("no status")
    }
    return s
  }

  @Test("SR-033: a marked-bad or missing record cannot arm outside service mode, and can inside")
  func armingOnlyInServiceMode() throws {
    for stored in [Self.record(markedBad: true, verified: true), nil] {
      let host = try Self.pen(holding: stored)
      try Self.ready(host)
      #expect(Self.refusedArming(host) == .calibrationInvalid)
      try enterServiceMode(host, model: .rf200, seed: Self.seed)
      try host.command(.arm(Arm()))
      try host.command(.start(Start()))
      try host.run(for: .milliseconds(200))
      let s = try Self.status(host)
      #expect(s.state == .treating && s.fault == .none)
      #expect(s.flags.contains(.serviceMode) && !s.flags.contains(.calibrationValid))
    }
  }

  @Test(
    "SR-033: exit_service_mode while treating on an unverified record trips calibration_invalid")
  func exitWhileTreatingTrips() throws {
    let host = try Self.pen(holding: Self.record())
    try Self.ready(host)
    try enterServiceMode(host, model: .rf200, seed: Self.seed)
    try host.command(.arm(Arm()))
    try host.command(.start(Start()))
    try host.run(for: .milliseconds(50))
    let exitAt = host.pen!.with { $0.now }
    try host.command(.exitServiceMode(ExitServiceMode()))
    try host.run(for: .milliseconds(1))
    let (state, fault) = host.pen!.with { ($0.core.state, $0.core.latchedFault) }
    #expect(state == .fault && fault == .calibrationInvalid)
    let trip = host.pen!.with { $0.truth.lastDriving } ?? .zero
    #expect(trip.rawValue <= exitAt.rawValue + 2_000, "needles stopped within the exchange")
    #expect(!(try Self.status(host)).flags.contains(.serviceMode))
  }

  @Test("SR-033: service mode ends on host loss (300 ms of silence) and on a power cycle")
  func serviceModeEnds() throws {
    let host = try Self.pen(holding: Self.record())
    try Self.ready(host)
    try enterServiceMode(host, model: .rf200, seed: Self.seed)
    host.pen!.advance(by: .milliseconds(350))  // no host frame: the session is over
    #expect(Self.refusedArming(host) == .calibrationInvalid)

    try enterServiceMode(host, model: .rf200, seed: Self.seed)
    host.pen!.with { $0.powerCycle() }
    host.pen!.advance(by: PenFirmware.bootTime)
    try host.hello()
    try Self.ready(host)
    #expect(Self.refusedArming(host) == .calibrationInvalid)
  }

  @Test("SR-033: the sweep runs with the correction in force: this pen's record, else neutral")
  func correctionInForce() throws {
    let profile = UnitProfile.drawn(seed: Self.seed)
    let unverified = Self.record(depthGain: 1.1)
    let otherPens = Self.record(depthGain: 1.1, serial: "SIM-RF200-999999")
    for (stored, gain) in [(unverified, 1.1), (otherPens, 1.0)] {
      let host = try Self.pen(holding: stored)
      try Self.ready(host)
      try enterServiceMode(host, model: .rf200, seed: Self.seed)
      try host.command(.arm(Arm()))
      try host.command(.start(Start()))
      try host.run(for: .milliseconds(100))
      let gauge = host.pen!.with { $0.measureDepthWithGauge() }
      let expected = profile.depthGain * (2.0 * gain) + profile.depthOffset.value
      #expect(abs(gauge.value - expected) <= 0.005, "gauge \(gauge.value) mm, expected \(expected)")
    }
  }
}
