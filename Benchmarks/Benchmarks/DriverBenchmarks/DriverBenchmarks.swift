// The host guard's reaction: from a limit-violating telemetry sample arriving at the host to the
// stop frame handed to the transport, through SafetyGuardPath — the code each pen's thread runs.
// Targets: p50 ≤ 20 µs, p99 ≤ 200 µs, no allocation on the path.
import Benchmark
import PenDriver
import PenSafety
import PenWire

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

private let quick = getenv("PENWIRE_BENCH_QUICK").map { String(cString: $0) == "1" } ?? false

/// A transport that takes frames and drops them: the benchmark ends where the transport begins.
final class SinkTransport: PenTransport, @unchecked Sendable {
  var sent = 0
  func send(_ frame: UnsafeRawBufferPointer, timeout: Microseconds) throws(TransportError) {
    sent &+= frame.count
  }
  func receive(from endpoint: PenEndpoint, timeout: Microseconds) throws(TransportError) -> [UInt8]
  {
    throw .timeout(endpoint: endpoint, after: timeout)
  }
  func emergencyStop() throws(TransportError) {}
  func close() {}
  var now: Microseconds { .zero }
}

// Set up once, outside the measured closure: only the guard path itself is timed and counted.
private let guardEnvelope: SessionEnvelope = {
  let preset = PresetLimits(
    depth: SoftRange(Millimetres(0.75), min: Millimetres(0.5), max: Millimetres(1.0)),
    speed: SoftRange(Hertz(2), min: Hertz(1), max: Hertz(3)),
    rfEnergyPerPin: SoftRange(Millijoules(20), min: Millijoules(10), max: Millijoules(25)),
    rfPulseDuration: Milliseconds(60))
  guard
    let envelope = try? SessionEnvelope.build(
      model: .rf200, area: .forehead, preset: preset, skin: .typeII)
  else { fatalError("benchmark envelope does not build") }
  return envelope
}()
private let sample = Telemetry(
  timestamp: .zero, state: .treating, fault: .none, flags: .skinContact, depth: Millimetres(1.2),
  speed: Hertz(2), rfPower: .zero, pulseEnergyPerPin: .zero, impedance: Ohms(300),
  tissueTemperature: Celsius(35), handpieceTemperature: Celsius(30), rfDelivered: .zero,
  rfRemaining: Millijoules(80_000), pulseCount: 0)
nonisolated(unsafe) private let sink = SinkTransport()

let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(
    metrics: [.wallClock, .mallocCountTotal, .throughput],
    warmupIterations: quick ? 3 : 10,
    scalingFactor: .kilo,
    maxDuration: quick ? .milliseconds(300) : .seconds(3),
    maxIterations: quick ? 200 : 100_000
  )

  Benchmark("GuardReactionPath") { benchmark in
    var path = SafetyGuardPath()
    for _ in benchmark.scaledIterations {
      blackHole(path.react(to: sample, envelope: guardEnvelope, now: .zero, transport: sink))
      path.reset()  // watch again, so every iteration reacts and sends a stop
    }
    precondition(sink.sent > 0, "no stop frame reached the transport")
  }
}
