public import PenDriver
public import PenSafety
public import PenWire

/// Why a calibration did not complete. Each case says what was wrong, with the value and the limit
/// where there is one, and what the technician can do.
public enum CalibrationError: Error, Sendable, Hashable, CustomStringConvertible {
  /// The pen refused the service key (wrong key): the attempts it has left before a lock-out.
  case serviceKeyRefused(serial: String, attemptsRemaining: Int32)
  /// Service mode is locked after repeated wrong keys.
  case serviceLocked(serial: String, secondsRemaining: Int32)
  /// The technician id must be non-zero (calibration.md section 1).
  case invalidTechnician
  /// A procedure option is out of its range.
  case invalidOption(name: String, value: String, requirement: String)
  /// The pen must be idle or ready to be calibrated.
  case penBusy(PenState)
  /// The quantity needs a fixture or capability this pen does not have (RF on a mechanical pen).
  case fixtureNotApplicable(quantity: CalibrationQuantity, model: PenModelID)
  /// Calibrating only some quantities keeps the others from the stored record, which must then be
  /// a verified record of this pen that is not marked bad.
  case subsetNeedsVerifiedRecord(scope: CalibrationScope, stored: String)
  /// A reference fixture could not measure.
  case fixtureFailed(FixtureError)
  /// The pen left treatment during a sweep: tripped (`fault`), stopped (`estop`), or otherwise.
  case penFault(
    FaultCode, state: PenState, quantity: CalibrationQuantity, setpoint: Double, verifying: Bool)
  /// The calibration envelope could not be built for this model (SR-009).
  case envelopeRefused(EnvelopeError)
  /// The pen refused or did not answer a command of the procedure.
  case penRefused(step: String, PenError)
  /// The pen refused to store a calibration record.
  case writeRefused(verified: Bool, PenError)
  /// The measurements could not be fitted.
  case fitFailed(CalibrationQuantity, FitError)

  public var description: String {
    switch self {
    case .serviceKeyRefused(let serial, let left):
      return
        "the pen \(serial) refused the service key (\(left) attempt\(left == 1 ? "" : "s") left before a 300 s lock-out): check that the key is this pen's; its record is unchanged"
    case .serviceLocked(let serial, let seconds):
      return
        "service mode on \(serial) is locked for another \(seconds) s after repeated wrong keys: wait, then use this pen's key"
    case .invalidTechnician:
      return "technician id 0 is reserved for factory records: give the operator's non-zero id"
    case .invalidOption(let name, let value, let requirement):
      return "calibration option \(name) = \(value): \(requirement)"
    case .penBusy(let state):
      return
        "the pen is \(state.catalogueName); it can be calibrated only when idle or ready: stop and disarm it first"
    case .fixtureNotApplicable(let quantity, let model):
      return
        "\(quantity.title) cannot be calibrated on a \(model.catalogueName): the pen has no RF output; calibrate depth and speed"
    case .subsetNeedsVerifiedRecord(let scope, let stored):
      return
        "calibrating \(scope.rawValue) alone keeps the other coefficients from the stored record, but it is \(stored): calibrate all"
    case .fixtureFailed(let error):
      return "fixture failed: \(error); the calibration was abandoned and service mode left"
    case .envelopeRefused(let error):
      return "the calibration envelope (area body, the model's whole range) was refused: \(error)"
    case .penFault(let fault, let state, let quantity, let setpoint, let verifying):
      let held =
        verifying
        ? "the pen keeps the fitted, unverified record and cannot treat until calibrated again"
        : "the stored record is unchanged"
      return
        "the pen went to \(state.catalogueName) (fault \(fault.catalogueName)) during the \(verifying ? "verification" : "first") \(quantity.rawValue) sweep at \(setpoint) \(quantity.unit): \(held); acknowledge the fault, check the pen and fixtures, and run the calibration again"
    case .penRefused(let step, let error):
      return "\(step): \(error)"
    case .writeRefused(let verified, let error):
      return
        "the pen refused the \(verified ? "final" : "fitted") calibration record: \(error); run the calibration again"
    case .fitFailed(let quantity, let error):
      return "\(quantity.title): \(error)"
    }
  }
}
