// PenWire frame codec benchmarks: time per frame and, above all, allocations per frame.
//
// Both benchmarks run `scalingFactor` (1,000) frames per iteration, so with the default scaled
// output the wallClock column reads directly as nanoseconds per frame and throughput as frames
// per second. The allocation gate (Benchmarks/Thresholds/, checked by `scripts/bench.sh check`)
// keeps only mallocCountTotal, expected to be 0: the codec is meant to allocate nothing.

import Benchmark
import PenWire

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Frames handled per benchmark iteration; the scaled output divides by this.
private var framesPerIteration: BenchmarkScalingFactor { .kilo }

/// `PENWIRE_BENCH_QUICK=1` (set by `scripts/bench.sh check`) shortens each benchmark: the
/// allocation gate needs a few samples, not a stable latency distribution.
private let quick = getenv("PENWIRE_BENCH_QUICK").map { String(cString: $0) == "1" } ?? false

/// A telemetry frame as a treating RF pen sends it: every field non-trivial and in range.
private func sampleTelemetry(_ n: Int = 0) -> Telemetry {
  Telemetry(
    timestamp: Microseconds(rawValue: 12_345_678_901 &+ UInt64(n) &* 4_000),
    state: .treating,
    fault: FaultCode.none,
    flags: PenFlags.skinContact.union(.rfEnabled).union(.needlesDriving)
      .union(.calibrationValid).union(.cartridgeValid).union(.envelopeLoaded),
    depth: Millimetres(1.5),
    speed: Hertz(120.0),
    rfPower: Watts(25.5),
    pulseEnergyPerPin: Millijoules(12.5),
    impedance: Ohms(Double(250 + n % 7)),
    tissueTemperature: Celsius(36.85),
    handpieceTemperature: Celsius(31.2),
    rfDelivered: Millijoules(Double(12_345 + n)),
    rfRemaining: Millijoules(Double(387_655 - n)),
    pulseCount: UInt32(4_567 + n)
  )
}

private func sampleStatus(_ n: Int) -> Status {
  Status(
    state: .treating, fault: FaultCode.none,
    flags: PenFlags.skinContact.union(.rfEnabled).union(.envelopeLoaded),
    sessionId: 0x00C0_FFEE, area: .cheeks,
    rfDelivered: Millijoules(Double(12_345 + n)), rfRemaining: Millijoules(Double(387_655 - n)),
    estopCount: 0, uptime: Microseconds(rawValue: 98_765_432 &+ UInt64(n) &* 10_000))
}

/// `count` encoded frames back to back, cycling telemetry, telemetry, status, heartbeat, as a pen
/// streams them (telemetry dominates), with a few retransmission/response flags set.
private func sampleStream(frames count: Int) -> [UInt8] {
  var stream: [UInt8] = []
  stream.reserveCapacity(count * 52)
  var buffer = FrameBuffer()
  for n in 0..<count {
    let message: Message
    switch n % 4 {
    case 0, 1: message = .telemetry(sampleTelemetry(n))
    case 2: message = .status(sampleStatus(n))
    default:
      message = .penHeartbeat(
        PenHeartbeat(counter: UInt32(n), uptime: Microseconds(rawValue: 98_765_432 &+ UInt64(n))))
    }
    let flags: FrameFlags = n % 50 == 0 ? .retransmission : .empty
    do {
      try FrameCodec.encode(
        message, sequence: UInt16(truncatingIfNeeded: n), flags: flags, into: &buffer)
    } catch {
      fatalError("sample frame \(n) does not encode: \(error)")
    }
    buffer.withUnsafeBytes { stream.append(contentsOf: $0) }
  }
  return stream
}

/// The size of one USB full-speed bulk packet: the stream arrives in chunks of this many bytes.
private let usbPacketSize = 64

let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(
    metrics: [.wallClock, .mallocCountTotal, .throughput],
    warmupIterations: quick ? 3 : 10,
    scalingFactor: framesPerIteration,
    maxDuration: quick ? .milliseconds(300) : .seconds(3),
    maxIterations: quick ? 200 : 100_000
  )

  // One realistic telemetry frame encoded into a FrameBuffer and decoded back, 1,000 times per
  // iteration (a different sequence number each time, so nothing folds away).
  Benchmark("TelemetryEncodeDecode") { benchmark in
    let telemetry = sampleTelemetry()
    var buffer = FrameBuffer()
    for i in benchmark.scaledIterations {
      try FrameCodec.encode(
        telemetry, sequence: UInt16(truncatingIfNeeded: i), flags: .empty, into: &buffer)
      let frame = try FrameCodec.decode(buffer)
      blackHole(frame)
    }
  }

  // 1,000 mixed frames (~40 KB) fed through one StreamDecoder in 64-byte USB packets; every frame
  // must come out. The stream is built once, outside the measurement.
  let frameCount = framesPerIteration.rawValue
  let stream = sampleStream(frames: frameCount)
  Benchmark("StreamDecode") { benchmark in
    var decoder = StreamDecoder()
    var frames = 0
    var other = 0
    stream.withUnsafeBytes { raw in
      var offset = 0
      while offset < raw.count {
        let end = min(offset + usbPacketSize, raw.count)
        decoder.feed(UnsafeRawBufferPointer(rebasing: raw[offset..<end])) { event in
          if case .frame = event { frames += 1 } else { other += 1 }
        }
        offset = end
      }
    }
    precondition(frames == frameCount && other == 0 && decoder.buffered == 0, "stream lost frames")
    blackHole(frames)
  }
}
