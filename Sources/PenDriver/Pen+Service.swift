import Crypto
public import PenWire

extension Pen {
  /// Clears an emergency stop: needs the pen's current estop count, a deliberate confirmation
  /// (SR-023). The pen then waits in idle for a new envelope.
  public func resetEmergencyStop() throws(PenError) {
    let count = try status().estopCount
    _ = try perform(.resetEstop(estopCount: count), .resetEstop(ResetEstop(estopCount: count)))
  }

  /// The fitted cartridge as its chip reports it.
  public func cartridge() throws(PenError) -> CartridgeInfo {
    let answer = try perform(nil, .getCartridgeInfo(GetCartridgeInfo()))
    guard case .cartridgeInfo(let info) = answer else {
      throw .unexpectedAnswer(message: GetCartridgeInfo.id, got: answer.id)
    }
    return info
  }

  /// The calibration record stored on the pen, or nil when it has none.
  public func readCalibration() throws(PenError) -> CalibrationRecord? {
    let answer = try perform(nil, .readCalibration(ReadCalibration()))
    guard case .calibrationData(let data) = answer else {
      throw .unexpectedAnswer(message: ReadCalibration.id, got: answer.id)
    }
    guard data.present else { return nil }
    do {
      return try CalibrationRecord.decode(data.record)
    } catch {
      throw .badCalibrationRecord(error)
    }
  }

  /// Enters service mode with the pen's key (challenge–response, HMAC-SHA256 over the nonce and
  /// the serial), writes the record, and leaves service mode again.
  public func writeCalibration(_ record: CalibrationRecord, serviceKey: [UInt8]) throws(PenError) {
    try enterServiceMode(key: serviceKey)
    defer { try? exitServiceMode() }
    try storeCalibration(record)
  }

  /// Writes a record while service mode is already entered (the steps of a calibration).
  public func storeCalibration(_ record: CalibrationRecord) throws(PenError) {
    let bytes: FixedBytes<64>
    do {
      bytes = try record.encode()
    } catch {
      throw .badCalibrationRecord(error)
    }
    _ = try perform(nil, .writeCalibration(WriteCalibration(record: bytes)))
  }

  /// Leaves service mode.
  public func exitServiceMode() throws(PenError) {
    _ = try perform(nil, .exitServiceMode(ExitServiceMode()))
  }

  /// Answers the pen's service-mode challenge with `key`.
  public func enterServiceMode(key: [UInt8]) throws(PenError) {
    let answer = try perform(nil, .serviceChallengeRequest(ServiceChallengeRequest()))
    guard case .serviceChallenge(let challenge) = answer else {
      throw .unexpectedAnswer(message: ServiceChallengeRequest.id, got: answer.id)
    }
    if challenge.attemptsRemaining == 0 {
      throw .refused(
        message: ServiceResponse.id, code: .serviceLocked,
        detail: Int32(clamping: Int64(challenge.lockoutRemaining.value)))
    }
    var message = challenge.nonce.bytes
    message += info.serial.bytes
    let mac = Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    guard let macBytes = FixedBytes<32>(mac) else { preconditionFailure("HMAC-SHA256 is 32 bytes") }
    _ = try perform(nil, .serviceResponse(ServiceResponse(mac: macBytes)))
  }

  /// The pen's event log, oldest first.
  public func readEventLog() throws(PenError) -> [EventLogEntry] {
    var entries: [EventLogEntry] = []
    var start: UInt32 = 0
    while true {
      let batch = try collectEventLog(from: start)
      entries += batch
      guard let last = batch.last, last.index + 1 < last.total else { return entries }
      start = last.index + 1
    }
  }
}
