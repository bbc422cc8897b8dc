import PenSafety
import PenWire
import Testing

/// SR-033: a technician's service-mode session lifts the calibration guard of SR-019 for a
/// calibration sweep, and nothing else.
@Suite("Calibration sweep in service mode")
struct ServiceModeTests {
  /// Every calibration state that SR-019 refuses.
  static let notValid: [CalibrationStatus] = [
    .missing, .corrupt, .outOfTolerance, .markedBad, .wrongPen,
  ]

  /// A ready core (forehead envelope) that has seen one tick of `calibration`, in or out of
  /// service mode.
  static func ready(
    calibration: CalibrationStatus, serviceMode: Bool, cartridge: CartridgeStatus = .fresh
  ) throws -> SafetyCore {
    var core = try VettingTests.ready()
    _ = core.evaluate(
      TickInputs(
        now: Microseconds(200), skinContact: true, cartridge: cartridge, calibration: calibration,
        serviceMode: serviceMode))
    return core
  }

  /// Good readings on skin, with the given calibration and service mode.
  static func onSkin(
    _ now: Microseconds, _ core: SafetyCore, calibration: CalibrationStatus, serviceMode: Bool,
    rfPower: Watts = .zero
  ) -> TickInputs {
    var i = Fixture.onSkin(now, core, rfPower: rfPower)
    i.calibration = calibration
    i.serviceMode = serviceMode
    return i
  }

  @Test("SR-033: outside service mode a record that is not valid for arming still cannot arm")
  func outsideServiceModeStillRefused() throws {
    for status in Self.notValid {
      var core = try Self.ready(calibration: status, serviceMode: false)
      #expect(
        core.apply(.arm) == .refuse(Refusal(.calibrationInvalid, value: Double(status.rawValue))),
        "\(status)")
      #expect(core.state == .ready)
    }
  }

  @Test("SR-033: in service mode the pen arms without a record valid for arming")
  func serviceModeArms() throws {
    for status in Self.notValid {
      var core = try Self.ready(calibration: status, serviceMode: true)
      #expect(core.apply(.arm) == .accept, "\(status)")
      #expect(core.state == .armed)
    }
  }

  @Test("SR-033: in service mode the cartridge guards of arming stay in force")
  func serviceModeKeepsCartridgeGuards() throws {
    var absent = try Self.ready(calibration: .missing, serviceMode: true, cartridge: .absent)
    #expect(absent.apply(.arm) == .refuse(Refusal(.cartridgeInvalid)))
    var used = CartridgeStatus.fresh
    used.useCount = 1
    var core = try Self.ready(calibration: .missing, serviceMode: true, cartridge: used)
    #expect(core.apply(.arm) == .refuse(Refusal(.cartridgeUsed, value: 1, limit: 1)))
    #expect(core.state == .ready)
  }

  @Test("SR-033: the end of service mode applies to the next arming at once, before any tick")
  func endOfServiceModeAppliesAtOnce() throws {
    var core = try Self.ready(calibration: .outOfTolerance, serviceMode: true)
    core.serviceModeChanged(to: false)
    #expect(core.apply(.arm) == .refuse(Refusal(.calibrationInvalid, value: 3)))
    core.serviceModeChanged(to: true)
    #expect(core.apply(.arm) == .accept)
  }

  /// A core armed and treating in service mode on an unverified record, past the impedance
  /// re-entry time.
  static func sweeping() throws -> (SafetyCore, Microseconds) {
    var core = try Self.ready(calibration: .outOfTolerance, serviceMode: true)
    #expect(core.apply(.arm) == .accept && core.apply(.start) == .accept)
    var now = Microseconds(300)
    Fixture.run(&core, from: &now, ticks: 600) {
      Self.onSkin($0, $1, calibration: .outOfTolerance, serviceMode: true)
    }
    return (core, now)
  }

  @Test("SR-033: a sweep in service mode treats and fires RF on an unverified record, and says so")
  func sweepTreatsAndFires() throws {
    var (core, now) = try Self.sweeping()
    #expect(core.state == .treating && core.latchedFault == .none)
    now = Microseconds(now.rawValue + 100)
    var i = Self.onSkin(now, core, calibration: .outOfTolerance, serviceMode: true)
    i.pulseRequested = true
    let act = core.evaluate(i)
    #expect(act.rfOn, "RF is permitted by the calibration check in service mode")
    #expect(act.flags.contains(.serviceMode))
    #expect(!act.flags.contains(.calibrationValid), "the record is still reported not valid")
  }

  @Test("SR-033: hard limits stay in force in service mode (SR-002 depth trip)")
  func hardLimitsStayInForce() throws {
    var (core, now) = try Self.sweeping()
    let act = Fixture.run(&core, from: &now, ticks: 30) { t, c in
      var i = Self.onSkin(t, c, calibration: .outOfTolerance, serviceMode: true)
      i.depth = Millimetres(1.2)  // forehead max 1.0 mm + 0.05 mm tolerance
      return i
    }
    #expect(act.fault == .depthOverLimit && act.state == .fault)
    #expect(!act.rfOn && !act.driveNeedles)
  }

  @Test("SR-033: the RF interlocks stay in force in service mode (SR-012 contact)")
  func rfInterlocksStayInForce() throws {
    var (core, now) = try Self.sweeping()
    now = Microseconds(now.rawValue + 100)
    var i = Self.onSkin(now, core, calibration: .outOfTolerance, serviceMode: true)
    i.pulseRequested = true
    i.skinContact = false
    let act = core.evaluate(i)
    #expect(!act.rfOn && act.flags.contains(.rfInhibitContact))
  }

  @Test(
    "SR-033: service mode ending while treating on an unverified record trips calibration_invalid in 1 tick"
  )
  func endOfServiceModeWhileTreatingTrips() throws {
    var (core, now) = try Self.sweeping()
    now = Microseconds(now.rawValue + 100)
    let act = core.evaluate(
      Self.onSkin(now, core, calibration: .outOfTolerance, serviceMode: false))
    #expect(act.newFault == .calibrationInvalid && act.state == .fault)
    #expect(!act.rfOn && !act.driveNeedles)
  }

  @Test("SR-033: a valid record is unaffected when service mode ends while treating")
  func validRecordUnaffected() throws {
    var core = try Self.ready(calibration: .valid, serviceMode: true)
    #expect(core.apply(.arm) == .accept && core.apply(.start) == .accept)
    var now = Microseconds(300)
    let act = Fixture.run(&core, from: &now, ticks: 100) {
      Self.onSkin($0, $1, calibration: .valid, serviceMode: false)
    }
    #expect(act.state == .treating && act.fault == .none)
  }

  @Test("SR-033: in service mode a calibration_invalid fault can be acknowledged to sweep again")
  func acknowledgeInServiceMode() throws {
    var (core, now) = try Self.sweeping()
    Fixture.run(&core, from: &now, ticks: 1) {
      Self.onSkin($0, $1, calibration: .outOfTolerance, serviceMode: false)
    }
    #expect(core.latchedFault == .calibrationInvalid)
    // Needles retracted, RF off, still outside service mode: the cause persists (SR-021).
    Fixture.run(&core, from: &now, ticks: 1) {
      Self.onSkin($0, $1, calibration: .outOfTolerance, serviceMode: false)
    }
    #expect(!core.apply(.acknowledgeFault(.calibrationInvalid)).isAccepted)
    Fixture.run(&core, from: &now, ticks: 1) {
      Self.onSkin($0, $1, calibration: .outOfTolerance, serviceMode: true)
    }
    #expect(core.apply(.acknowledgeFault(.calibrationInvalid)) == .accept)
    #expect(core.state == .ready)
  }
}
