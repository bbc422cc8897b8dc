import PenDriver
import PenSimulator
import PenWire
import Testing

@Suite("Handshake")
struct HandshakeTests {
  static func pen(_ model: PenModelID = .rf200, seed: UInt64 = 42) -> (
    SimulatedPen, LoopbackTransport
  ) {
    let pen = SimulatedPen(model: model, seed: seed)
    pen.advance(by: PenFirmware.bootTime)
    return (pen, LoopbackTransport(pen: pen))
  }

  @Test("a pen built from the same catalogue answers with its identity")
  func sameCatalogue() throws {
    let (_, transport) = Self.pen()
    let info = try Handshake.perform(over: transport)
    #expect(info.serial.description == "SIM-RF200-000042" && info.model == .rf200)
  }

  @Test("a pen built from another catalogue is refused, and the message names both hashes")
  func catalogueMismatch() throws {
    let (pen, transport) = Self.pen()
    pen.with { $0.catalogueHash = 0x1234_5678 }
    #expect(throws: PenError.catalogueMismatch(host: MessageCatalogue.hash, pen: 0x1234_5678)) {
      try Handshake.perform(over: transport)
    }
    let text = PenError.catalogueMismatch(host: MessageCatalogue.hash, pen: 0x1234_5678).description
    #expect(
      text.contains("0x12345678") && text.contains(String(format: "0x%08X", MessageCatalogue.hash)))
    #expect(pen.with { $0.core.state } == .idle, "the pen stays idle")
  }

  @Test("a silent pen gives no answer after the retransmissions, in virtual time")
  func silentPen() throws {
    let (pen, transport) = Self.pen()
    pen.with { $0.inject(ScheduledFault(.hostSilence, at: $0.now)) }
    #expect(throws: PenError.noAnswer(message: Hello.id, after: .milliseconds(200))) {
      try Handshake.perform(over: transport)
    }
  }

  @Test("an unplugged pen is reported as disconnected")
  func unplugged() throws {
    let (pen, transport) = Self.pen()
    pen.with { $0.inject(ScheduledFault(.usbUnplug, at: $0.now)) }
    #expect(throws: PenError.transport(.disconnected)) { try Handshake.perform(over: transport) }
  }
}
