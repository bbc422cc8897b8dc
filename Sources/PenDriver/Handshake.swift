public import PenWire

/// Why the driver could not work with a pen. Every case says what was wrong and what to do.
public enum PenError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The pen was built from another message catalogue: host and pen would misread each other.
  case catalogueMismatch(host: UInt32, pen: UInt32)
  /// The pen speaks another protocol version.
  case protocolMismatch(host: UInt8, pen: UInt8)
  /// The pen refused a command.
  case refused(message: UInt16, code: NackCode, detail: Int32)
  /// No answer came within the time allowed, retransmissions included.
  case noAnswer(message: UInt16, after: Microseconds)
  /// The pen answered with something the protocol does not allow there.
  case unexpectedAnswer(message: UInt16, got: UInt16)
  case transport(TransportError)
  /// A message this host could not encode (a value outside the wire's range): nothing was sent.
  case unencodable(message: UInt16, reason: String)
  /// A calibration record that does not encode or decode (calibration.md).
  case badCalibrationRecord(CalibrationRecordError)

  public var description: String {
    func hex(_ v: UInt32) -> String {
      let s = String(v, radix: 16, uppercase: true)
      return "0x" + String(repeating: "0", count: 8 - s.count) + s
    }
    func name(_ id: UInt16) -> String {
      MessageCatalogue.name(id: id).map { "\($0)" } ?? "message \(id)"
    }
    switch self {
    case .catalogueMismatch(let host, let pen):
      return
        "the pen's message catalogue \(hex(pen)) differs from this host's \(hex(host)): they were built from different Firmware-Specs; update the host or the pen's firmware so both match"
    case .protocolMismatch(let host, let pen):
      return "the pen speaks protocol version \(pen), this host version \(host): update one of them"
    case .refused(let message, let code, let detail):
      return "the pen refused \(name(message)): \(code.catalogueName) (detail \(detail))"
    case .noAnswer(let message, let after):
      return
        "no answer to \(name(message)) within \(after.rawValue / 1000) ms: check the cable and that the pen is on"
    case .unexpectedAnswer(let message, let got):
      return "the pen answered \(name(message)) with \(name(got))"
    case .transport(let error):
      return "USB: \(error)"
    case .unencodable(let message, let reason):
      return
        "\(name(message)) was not sent: \(reason) — a value outside what the wire can carry (messages.json)"
    case .badCalibrationRecord(let error):
      return "\(error)"
    }
  }
}

/// The opening exchange with a pen (Firmware-Specs/framing.md): hello with this host's protocol
/// version and catalogue hash, answered by device_info — or refused when the two sides were not
/// built from the same catalogue.
public enum Handshake {
  /// How long to wait for the answer, and how often to ask again (framing.md, 'Retransmission').
  public static let answerTimeout = Microseconds.milliseconds(50)
  public static let retransmissions = 3

  /// Sends hello and returns the pen's device info.
  public static func perform(over transport: any PenTransport) throws(PenError) -> DeviceInfo {
    let hello = Message.hello(
      Hello(protocolVersion: FrameLayout.protocolVersion, catalogueHash: MessageCatalogue.hash))
    var flags = FrameFlags.ackRequested
    for _ in 0...retransmissions {
      let frame: [UInt8]
      do {
        frame = try FrameCodec.encode(hello, sequence: 0, flags: flags)
      } catch { preconditionFailure("hello always encodes: \(error)") }
      do {
        try transport.send(frame, timeout: answerTimeout)
      } catch { throw .transport(error) }
      flags.insert(.retransmission)
      if let answer = try awaitAnswer(sequence: 0, over: transport) {
        switch answer {
        case .deviceInfo(let info):
          if info.catalogueHash != MessageCatalogue.hash {
            throw .catalogueMismatch(host: MessageCatalogue.hash, pen: info.catalogueHash)
          }
          if info.protocolVersion != FrameLayout.protocolVersion {
            throw .protocolMismatch(host: FrameLayout.protocolVersion, pen: info.protocolVersion)
          }
          return info
        case .nack(let nack) where nack.code == .catalogueMismatch:
          throw .catalogueMismatch(
            host: MessageCatalogue.hash, pen: UInt32(bitPattern: nack.detail))
        case .nack(let nack) where nack.code == .unsupportedVersion:
          throw .protocolMismatch(
            host: FrameLayout.protocolVersion, pen: UInt8(clamping: nack.detail))
        case .nack(let nack):
          throw .refused(message: Hello.id, code: nack.code, detail: nack.detail)
        default:
          throw .unexpectedAnswer(message: Hello.id, got: answer.id)
        }
      }
    }
    throw .noAnswer(
      message: Hello.id, after: Microseconds(answerTimeout.rawValue * UInt64(retransmissions + 1)))
  }

  /// The response frame to `sequence`, skipping unsolicited frames; nil after the timeout.
  static func awaitAnswer(sequence: UInt16, over transport: any PenTransport) throws(PenError)
    -> Message?
  {
    while true {
      let bytes: [UInt8]
      do {
        bytes = try transport.receive(from: .responses, timeout: answerTimeout)
      } catch .timeout {
        return nil
      } catch { throw .transport(error) }
      guard let frame = try? FrameCodec.decode(bytes) else { continue }
      if frame.header.flags.contains(.response) && frame.header.sequence == sequence {
        return frame.message
      }
    }
  }
}
