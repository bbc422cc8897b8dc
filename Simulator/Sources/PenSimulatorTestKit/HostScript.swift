public import PenDriver
public import PenSimulator
public import PenWire

/// A small scripted host for tests: it speaks the protocol over any transport — handshake,
/// sequence numbers, commands that wait for their answer, heartbeats while it waits — and keeps
/// every telemetry sample and event it sees. With a simulated pen, one call starts everything:
///
/// ```swift
/// let host = try HostScript.simulated(model: .rf200, seed: 42)
/// try host.command(.arm)
/// ```
public final class HostScript {
  public let transport: any PenTransport
  /// The pen, when it is simulated.
  public let pen: SimulatedPen?
  public private(set) var device: DeviceInfo?
  public private(set) var telemetry: [Telemetry] = []
  public private(set) var events: [Message] = []
  var sequence: UInt16 = 0
  var heartbeat: UInt32 = 0
  var sinceHeartbeat: UInt64 = 0

  /// Why a scripted exchange failed.
  public enum Failure: Error, Equatable {
    case transport(TransportError)
    case refused(Nack)
    case unexpected(String)
  }

  public init(transport: any PenTransport, pen: SimulatedPen? = nil) {
    self.transport = transport
    self.pen = pen
  }

  /// A factory-new simulated pen on a loopback transport, booted, with the handshake done.
  public static func simulated(model: PenModelID, seed: UInt64, recordTranscript: Bool = false)
    throws -> HostScript
  {
    let pen = SimulatedPen(model: model, seed: seed)
    if recordTranscript { pen.with { $0.transcript = Transcript() } }
    pen.advance(by: PenFirmware.bootTime)
    let host = HostScript(transport: LoopbackTransport(pen: pen), pen: pen)
    _ = try host.hello()
    return host
  }

  /// Sends hello with this build's catalogue hash and returns the pen's device info.
  @discardableResult
  public func hello(catalogueHash: UInt32 = MessageCatalogue.hash) throws -> DeviceInfo {
    sequence = 0
    let answer = try exchange(
      .hello(Hello(protocolVersion: FrameLayout.protocolVersion, catalogueHash: catalogueHash)))
    guard case .deviceInfo(let info) = answer else {
      throw Failure.unexpected("hello answered with \(answer)")
    }
    device = info
    return info
  }

  /// Sends a command and returns its answer (ack or reply); a nack throws `.refused`.
  @discardableResult
  public func command(_ message: Message) throws -> Message { try exchange(message) }

  func exchange(_ message: Message) throws -> Message {
    let seq = sequence
    sequence &+= 1
    let frame = try FrameCodec.encode(message, sequence: seq, flags: .ackRequested)
    do {
      try transport.send(frame, timeout: .milliseconds(50))
    } catch { throw Failure.transport(error) }
    var waited: UInt64 = 0
    while waited < 200_000 {
      let bytes: [UInt8]
      do {
        bytes = try transport.receive(from: .responses, timeout: .milliseconds(1))
      } catch .timeout {
        waited += 1_000
        try pump(1_000)
        continue
      } catch { throw Failure.transport(error) }
      guard let f = try? FrameCodec.decode(bytes) else { continue }
      if f.header.flags.contains(.response) && f.header.sequence == seq {
        if case .nack(let nack) = f.message { throw Failure.refused(nack) }
        return f.message
      }
      events.append(f.message)
    }
    throw Failure.unexpected("no answer to \(message) within 200 ms")
  }

  /// Lets virtual time pass, sending heartbeats and collecting telemetry and events.
  public func run(for span: Microseconds) throws {
    var left = span.rawValue
    while left > 0 {
      let step = min(left, 1_000)
      try pump(step)
      left -= step
    }
  }

  func pump(_ microseconds: UInt64) throws {
    sinceHeartbeat += microseconds
    if sinceHeartbeat >= 100_000 {
      sinceHeartbeat = 0
      heartbeat &+= 1
      let frame = try FrameCodec.encode(
        .hostHeartbeat(HostHeartbeat(counter: heartbeat)), sequence: sequence)
      sequence &+= 1
      try? transport.send(frame, timeout: .milliseconds(50))
    }
    while let bytes = try? transport.receive(from: .telemetry, timeout: .zero) {
      if let f = try? FrameCodec.decode(bytes), case .telemetry(let t) = f.message {
        telemetry.append(t)
      }
    }
    while let bytes = try? transport.receive(from: .responses, timeout: .zero) {
      if let f = try? FrameCodec.decode(bytes) { events.append(f.message) }
    }
    pen?.advance(by: Microseconds(microseconds))
  }

  /// Stops sending anything (the host goes silent) while time passes.
  public func silence(for span: Microseconds) { pen?.advance(by: span) }
}
