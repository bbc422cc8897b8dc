// scripts/sanitize.sh thread runs this before the tests, built with -sanitize=thread and with
// tsan-mutex.c preloaded, to prove the set-up neither cries wolf nor went blind:
//   tsan-canary mutex   two threads contend for one Mutex 200,000 times: no report, exit 0
//   tsan-canary race    a write on one thread, then one on another ordered only by a relaxed
//                       atomic (no happens-before): TSan must report it (exit 66)
import Foundation
import Synchronization

final class Counter: @unchecked Sendable { var value = 0 }

func onThreads(_ count: Int, _ body: @escaping @Sendable () -> Void) {
  let done = DispatchGroup()
  for _ in 0..<count {
    done.enter()
    Thread {
      body()
      done.leave()
    }.start()
  }
  done.wait()
}

switch CommandLine.arguments.dropFirst().first {
case "mutex":
  let total = Mutex(0)
  onThreads(2) { for _ in 0..<100_000 { total.withLock { $0 += 1 } } }
  let value = total.withLock { $0 }
  guard value == 200_000 else { fatalError("the Mutex lost updates: \(value)") }
  print("tsan-canary: contended Mutex, \(value) increments")
case "race":
  let counter = Counter()
  let written = Atomic(false)
  Thread {
    counter.value = 1
    written.store(true, ordering: .relaxed)
  }.start()
  while !written.load(ordering: .relaxed) { sched_yield() }
  counter.value = 2
  print("tsan-canary: unsynchronised write done")
default:
  fatalError("usage: tsan-canary mutex|race")
}
