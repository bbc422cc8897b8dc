import PenSimulator
import PenWire
import Testing

@Suite("Virtual time and seeded randomness")
struct VirtualClockTests {
  @Test("the clock moves only when advanced")
  func clockAdvancesOnlyWhenTold() {
    var clock = VirtualClock()
    #expect(clock.now == .zero)
    clock.advance(by: .milliseconds(10))
    clock.advance(by: Microseconds(100))
    #expect(clock.now == Microseconds(10_100))
  }

  @Test("the same seed gives the same sequence; another seed does not")
  func seededDeterminism() {
    var a = SeededGenerator(seed: 42)
    var b = SeededGenerator(seed: 42)
    var c = SeededGenerator(seed: 43)
    let first = (0..<16).map { _ in a.next() }
    #expect(first == (0..<16).map { _ in b.next() })
    #expect(first != (0..<16).map { _ in c.next() })
  }

  @Test("uniform values stay inside their range")
  func uniformRange() {
    var g = SeededGenerator(seed: 7)
    for _ in 0..<10_000 {
      let v = g.uniform(-0.05...0.05)
      #expect(v >= -0.05 && v <= 0.05)
    }
  }
}
