import Crypto
import PenWire

/// Service-mode authentication: challenge–response with a per-pen key (HMAC-SHA256 over the
/// nonce and the serial), a failure counter and a lock-out (Firmware-Specs/safety-requirements.md,
/// 'Service mode').
struct ServiceAuth: Sendable {
  static let maxAttempts = 3
  static let lockout = Microseconds.seconds(300)

  var active = false
  var nonce: [UInt8]? = nil
  var failures = 0
  var lockedUntil: Microseconds? = nil

  func isLocked(at now: Microseconds) -> Bool {
    guard let until = lockedUntil else { return false }
    return now < until
  }

  /// Ends a lock-out whose time is up: the attempts start again.
  mutating func expire(at now: Microseconds) {
    if let until = lockedUntil, now >= until {
      lockedUntil = nil
      failures = 0
    }
  }

  /// A fresh single-use nonce.
  mutating func challenge(using g: inout SeededGenerator) -> [UInt8] {
    let bytes = (0..<16).map { _ in UInt8(truncatingIfNeeded: g.next()) }
    nonce = bytes
    return bytes
  }

  enum Outcome { case granted, refused, locked }

  /// Checks a response; the nonce is used up either way.
  mutating func verify(_ mac: [UInt8], key: [UInt8], serial: FixedASCII<16>, now: Microseconds)
    -> Outcome
  {
    expire(at: now)
    if isLocked(at: now) { return .locked }
    guard let nonce else { return .refused }
    self.nonce = nil
    let expected = Self.response(key: key, nonce: nonce, serial: serial)
    // Constant-time comparison: no early exit on the first differing byte.
    var difference: UInt8 = mac.count == expected.count ? 0 : 1
    for (a, b) in zip(mac, expected) { difference |= a ^ b }
    if difference == 0 {
      active = true
      failures = 0
      return .granted
    }
    failures += 1
    if failures >= Self.maxAttempts {
      lockedUntil = Microseconds(now.rawValue + Self.lockout.rawValue)
      return .locked
    }
    return .refused
  }

  /// HMAC-SHA256(key, nonce ‖ serial with its NUL padding): what a technician's tool computes.
  static func response(key: [UInt8], nonce: [UInt8], serial: FixedASCII<16>) -> [UInt8] {
    var message = nonce
    for i in 0..<16 { message.append(serial.storage[i]) }
    let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
    return Array(code)
  }
}

/// The service key of a simulated pen: derived from its serial, as a factory would provision it.
/// Real keys come from the manufacturer; this is printed on the simulated pen's label.
public func simulatedServiceKey(serial: String) -> [UInt8] {
  Array(SHA256.hash(data: Array("pencontrol-simulated-service-key:\(serial)".utf8)))
}

/// What a technician's tool sends in answer to a challenge.
public func serviceResponse(key: [UInt8], nonce: [UInt8], serial: String) -> [UInt8] {
  ServiceAuth.response(
    key: key, nonce: nonce, serial: FixedASCII<16>(string: serial) ?? FixedASCII())
}
