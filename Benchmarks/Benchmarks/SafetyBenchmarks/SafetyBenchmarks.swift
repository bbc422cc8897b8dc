// PenSafety's per-tick cost: one `SafetyCore.evaluate` on a pen that is treating with RF, as the
// pen's firmware runs it 10,000 times a second. Target: p99 ≤ 250 ns and no allocation.
import Benchmark
import PenSafety
import PenWire

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

private let quick = getenv("PENWIRE_BENCH_QUICK").map { String(cString: $0) == "1" } ?? false

/// A core loaded with a forehead RF envelope, armed and treating.
private func treatingCore() -> SafetyCore {
  var core = SafetyCore(model: .rf200)
  core.finishSelfTest(passed: true)
  let preset = PresetLimits(
    depth: SoftRange(Millimetres(0.75), min: Millimetres(0.5), max: Millimetres(1.0)),
    speed: SoftRange(Hertz(2), min: Hertz(1), max: Hertz(3)),
    rfEnergyPerPin: SoftRange(Millijoules(20), min: Millijoules(10), max: Millijoules(25)),
    rfPulseDuration: Milliseconds(60))
  guard
    let envelope = try? SessionEnvelope.build(
      model: .rf200, area: .forehead, preset: preset, skin: .typeII)
  else { fatalError("benchmark envelope does not build") }
  _ = core.evaluate(TickInputs(now: Microseconds(100), skinContact: true))
  _ = core.apply(.loadEnvelope(envelope, sessionID: 1))
  _ = core.apply(.arm)
  _ = core.apply(.start)
  return core
}

let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(
    metrics: [.wallClock, .mallocCountTotal, .throughput],
    warmupIterations: quick ? 3 : 10,
    scalingFactor: .kilo,
    maxDuration: quick ? .milliseconds(300) : .seconds(3),
    maxIterations: quick ? 200 : 100_000
  )

  // 1,000 control ticks per iteration, with readings that vary (speed jitter, pulses starting),
  // so each tick does the full work of a treating RF pen.
  Benchmark("SafetyTick") { benchmark in
    var core = treatingCore()
    var now: UInt64 = 200
    for i in benchmark.scaledIterations {
      now &+= 100
      let inputs = TickInputs(
        now: Microseconds(now), depth: Millimetres(0.75), speed: Hertz(2 + Double(i % 3) * 0.11),
        rfPower: Watts(i % 5000 < 600 ? 8 : 0), impedance: Ohms(300),
        tissueTemperature: Celsius(35),
        handpieceTemperature: Celsius(29), skinContact: true, heartbeatAge: Microseconds(20_000),
        cartridge: .fresh, calibration: .valid, pulseRequested: i % 5000 == 0)
      blackHole(core.evaluate(inputs))
    }
  }
}
