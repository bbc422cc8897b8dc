import PenDriver
import PenSafety
import PenSimulator
import PenWire
import Synchronization
import Testing

/// A loopback that loses the pen's answers to one message: the pen acts, the host never hears.
final class LosingAnswers: PenTransport {
  let inner: LoopbackTransport
  let lostMessage: UInt16
  let lost = Mutex(0)

  init(_ inner: LoopbackTransport, losing message: UInt16) {
    self.inner = inner
    lostMessage = message
  }

  func filter(_ bytes: [UInt8]) -> Bool {
    guard let frame = try? FrameCodec.decode(bytes), case .ack(let ack) = frame.message,
      ack.ackedMessage == lostMessage
    else { return true }
    lost.withLock { $0 += 1 }
    return false
  }

  func send(_ frame: UnsafeRawBufferPointer, timeout: Microseconds) throws(TransportError) {
    try inner.send(frame, timeout: timeout)
  }
  func receive(from endpoint: PenEndpoint, timeout: Microseconds) throws(TransportError)
    -> [UInt8]
  {
    let bytes = try inner.receive(from: endpoint, timeout: timeout)
    guard filter(bytes) else { throw .timeout(endpoint: endpoint, after: timeout) }
    return bytes
  }
  func receiveNext(timeout: Microseconds) throws(TransportError) -> (PenEndpoint, [UInt8]) {
    let next = try inner.receiveNext(timeout: timeout)
    guard filter(next.1) else { throw .timeout(endpoint: next.0, after: timeout) }
    return next
  }
  func emergencyStop() throws(TransportError) { try inner.emergencyStop() }
  func close() { inner.close() }
  var now: Microseconds { inner.now }
}

@Suite("Pen link")
struct LinkTests {
  @Test(
    "SR-025: an answer lost on the way back is followed by a status request, so the next command is vetted on the pen's real state"
  )
  func lostAnswerResynchronises() throws {
    let (sim, loopback) = HandshakeTests.pen(.rf200)
    sim.with { $0.physics.skinContact = true }
    let transport = LosingAnswers(loopback, losing: Arm.id)
    let pen = try Pen.connect(over: transport)
    defer { pen.disconnect() }
    try pen.load(
      try SessionEnvelope.build(
        model: .rf200, area: .forehead, preset: PenTests.preset, skin: .typeII), sessionID: 3)
    #expect(throws: PenError.noAnswer(message: Arm.id, after: .milliseconds(200))) {
      try pen.arm()
    }
    #expect(transport.lost.withLock { $0 } == 4, "every attempt's answer was lost")
    #expect(sim.with { $0.core.state } == .armed, "the pen did arm")
    // Had the host kept its own idea (ready), it would refuse start as an illegal transition.
    try pen.start()
    #expect(sim.with { $0.core.state } == .treating)
    try pen.stop()
  }

  @Test("SR-019, SR-025: the host refuses arming an uncalibrated pen before the wire")
  func uncalibratedRefusedByHost() throws {
    var nvm = PenFirmware.factoryNew(model: .rf200, serial: "SIM-RF200-000077", seed: 77).nvm
    nvm.calibrationRecord = nil
    let firmware = PenFirmware(model: .rf200, serial: "SIM-RF200-000077", seed: 77, nvm: nvm)
    let sim = SimulatedPen(firmware)
    sim.advance(by: PenFirmware.bootTime)
    sim.with {
      $0.physics.skinContact = true
      $0.transcript = Transcript()
    }
    let pen = try Pen.connect(over: LoopbackTransport(pen: sim))
    defer { pen.disconnect() }
    try pen.load(
      try SessionEnvelope.build(
        model: .rf200, area: .forehead, preset: PenTests.preset, skin: .typeII), sessionID: 4)
    #expect(throws: PenError.refused(message: Arm.id, code: .calibrationInvalid, detail: 1)) {
      try pen.arm()
    }
    let arms = sim.with { $0.transcript!.lines.filter { $0.contains("H>P arm") }.count }
    #expect(arms == 0, "the refusal came from the host's guard, not the pen")
    #expect(sim.with { $0.core.state } == .ready)
  }

  @Test("a Pen dropped without disconnect stops its thread and closes the transport")
  func droppedPenClosesTransport() throws {
    let (_, transport) = HandshakeTests.pen(.mn100)
    weak var weakPen: Pen?
    do {
      let pen = try Pen.connect(over: transport)
      weakPen = pen
      _ = try pen.status()
    }
    #expect(weakPen == nil, "the pen's thread does not keep the Pen alive")
    // The thread notices within one loop; the transport then answers .closed.
    var closed = false
    for _ in 0..<1_000_000 where !closed {
      do { _ = try transport.receive(from: .responses, timeout: .zero) } catch {
        closed = error == .closed
      }
    }
    #expect(closed)
  }
}
