// The simulator's speed: a simulated RF pen treating for 10 s of virtual time per iteration, at the
// 10 kHz control tick with telemetry at 100 Hz and heartbeats at 10 Hz. The target is at least
// 1,000x real time: 10 s simulated in under 10 ms of wall clock, a 30-minute treatment in 1.8 s.
// Throughput reads as simulated seconds per wall-clock second.
import Benchmark
import PenSimulator
import PenWire

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

private let quick = getenv("PENWIRE_BENCH_QUICK").map { String(cString: $0) == "1" } ?? false

/// Ten seconds of treatment, driven through the firmware's own frame handling.
private func treat(_ pen: inout PenFirmware, seconds: Int) {
  for _ in 0..<(seconds * 10) {
    pen.advance(by: .milliseconds(100))
    // The host's heartbeat, and what it would read off the endpoints.
    if let frame = try? FrameCodec.encode(.hostHeartbeat(HostHeartbeat(counter: 1)), sequence: 1) {
      pen.receive(frame)
    }
    blackHole(pen.takeBulkIn())
    blackHole(pen.takeInterruptIn())
  }
}

private func treatingPen() -> PenFirmware {
  var pen = PenFirmware.factoryNew(model: .rf200, serial: "SIM-RF200-000001", seed: 1)
  pen.physics.skinContact = true
  pen.advance(by: PenFirmware.bootTime)
  var seq: UInt16 = 0
  func send(_ m: Message) {
    if let frame = try? FrameCodec.encode(m, sequence: seq, flags: .ackRequested) {
      pen.receive(frame)
    }
    seq &+= 1
  }
  send(.hello(Hello(protocolVersion: 1, catalogueHash: MessageCatalogue.hash)))
  send(
    .setSessionEnvelope(
      SetSessionEnvelope(
        sessionId: 1, area: .cheeks, maxDepth: Millimetres(2.5), maxSpeed: Hertz(4),
        rfAllowed: true,
        maxRfEnergyPerPin: Millijoules(40), rfDoseCap: Millijoules(150_000), minImpedance: Ohms(40),
        maxImpedance: Ohms(600), tissueTemperatureCutoff: Celsius(42))))
  send(
    .setParameters(
      SetParameters(
        depth: Millimetres(1.5), speed: Hertz(3), rfEnergyPerPin: Millijoules(5),
        rfPulseDuration: Milliseconds(40))))
  send(.arm(Arm()))
  send(.start(Start()))
  return pen
}

let benchmarks: @Sendable () -> Void = {
  // PENCONTROL_PROFILE=1 runs the workload directly (for perf or callgrind) and exits.
  if getenv("PENCONTROL_PROFILE") != nil {
    for _ in 0..<100 {
      var pen = treatingPen()
      treat(&pen, seconds: 10)
      blackHole(pen.truth.rfEnergy)
    }
    exit(0)
  }
  Benchmark(
    "SimulatedTreatment10s",
    configuration: .init(
      metrics: [.wallClock, .throughput], warmupIterations: 1, scalingFactor: .one,
      maxDuration: quick ? .seconds(1) : .seconds(5), maxIterations: quick ? 5 : 200)
  ) { benchmark in
    for _ in benchmark.scaledIterations {
      var pen = treatingPen()
      treat(&pen, seconds: 10)
      precondition(
        pen.core.state == .treating, "the benchmark treatment stopped: \(pen.core.latchedFault)")
      blackHole(pen.truth.rfEnergy)
    }
  }
}
