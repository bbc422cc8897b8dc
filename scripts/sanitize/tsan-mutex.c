// Tells ThreadSanitizer about Swift's Synchronization.Mutex on Linux (scripts/sanitize.sh thread
// preloads it into the test binary and into the penctl processes the tests start).
//
// Why: on Linux, Mutex is a futex priority-inheritance lock. Its uncontended lock and unlock are
// atomic compare-exchanges inlined into our (instrumented) code, so TSan sees them; but under
// contention the lock is handed over by the kernel inside _MutexHandle._lockSlow/_unlockSlow in
// libswiftSynchronization.so (FUTEX_LOCK_PI / FUTEX_UNLOCK_PI through syscall()), which TSan does
// not instrument and cannot intercept. Every access made under a contended Mutex is then reported
// as a race ("Swift access race ... in closure #1 in SimulatedPen.with"), hundreds per run. Seen
// with Swift 6.3.1: two threads incrementing a Mutex<Int> 100,000 times each give the right total
// and a race report; with this file preloaded, none.
//
// A suppression cannot express "under a Mutex": the frames of both accesses are our own closures,
// so suppressing them would hide real races in the same code. Instead this wraps the three slow
// paths and adds the happens-before edges the kernel provides: release before the unlock,
// acquire after a lock (or successful try-lock), on the Mutex's own address — the address the
// inlined fast-path atomics synchronise on, so both paths meet in one TSan sync object.
//
// The Swift methods take `self` (the Mutex's futex word) in the Swift context register (r13 on
// x86_64, x20 on arm64); clang's swiftcall + swift_context expresses exactly that. The annotation
// functions are weak: in a process not built with TSan (a shell the tests start) they are absent
// and the wrappers only forward.

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SWIFTCALL __attribute__((swiftcall))
#define SWIFT_SELF __attribute__((swift_context))

extern void __tsan_acquire(void *addr) __attribute__((weak));
extern void __tsan_release(void *addr) __attribute__((weak));

// Swift 6.3's mangled names (`swift demangle` them): a toolchain that renames them makes
// scripts/sanitize.sh fail at its self-check, rather than silently stop annotating.
#define LOCK_SLOW "$s15Synchronization12_MutexHandleV9_lockSlowyys6UInt32VF"
#define TRY_LOCK_SLOW "$s15Synchronization12_MutexHandleV12_tryLockSlowSbyF"
#define UNLOCK_SLOW "$s15Synchronization12_MutexHandleV11_unlockSlowyyF"

typedef SWIFTCALL void (*lock_slow_fn)(uint32_t self_tid, void *SWIFT_SELF handle);
typedef SWIFTCALL bool (*try_lock_slow_fn)(void *SWIFT_SELF handle);
typedef SWIFTCALL void (*unlock_slow_fn)(void *SWIFT_SELF handle);

SWIFTCALL void pencontrol_lock_slow(uint32_t self_tid, void *SWIFT_SELF handle) __asm__(LOCK_SLOW);
SWIFTCALL bool pencontrol_try_lock_slow(void *SWIFT_SELF handle) __asm__(TRY_LOCK_SLOW);
SWIFTCALL void pencontrol_unlock_slow(void *SWIFT_SELF handle) __asm__(UNLOCK_SLOW);

static void *real(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (f == NULL) {
    fprintf(stderr, "tsan-mutex: %s not found after this library; is libswiftSynchronization "
                    "loaded?\n", name);
    abort();
  }
  return f;
}

SWIFTCALL void pencontrol_lock_slow(uint32_t self_tid, void *SWIFT_SELF handle) {
  static lock_slow_fn f;
  lock_slow_fn g = __atomic_load_n(&f, __ATOMIC_ACQUIRE);
  if (g == NULL) {
    g = (lock_slow_fn)real(LOCK_SLOW);
    __atomic_store_n(&f, g, __ATOMIC_RELEASE);
  }
  g(self_tid, handle);
  if (__tsan_acquire) __tsan_acquire(handle);
}

SWIFTCALL bool pencontrol_try_lock_slow(void *SWIFT_SELF handle) {
  static try_lock_slow_fn f;
  try_lock_slow_fn g = __atomic_load_n(&f, __ATOMIC_ACQUIRE);
  if (g == NULL) {
    g = (try_lock_slow_fn)real(TRY_LOCK_SLOW);
    __atomic_store_n(&f, g, __ATOMIC_RELEASE);
  }
  bool locked = g(handle);
  if (locked && __tsan_acquire) __tsan_acquire(handle);
  return locked;
}

SWIFTCALL void pencontrol_unlock_slow(void *SWIFT_SELF handle) {
  static unlock_slow_fn f;
  unlock_slow_fn g = __atomic_load_n(&f, __ATOMIC_ACQUIRE);
  if (g == NULL) {
    g = (unlock_slow_fn)real(UNLOCK_SLOW);
    __atomic_store_n(&f, g, __ATOMIC_RELEASE);
  }
  // Before the unlock: once the kernel hands the lock over, the next owner may run at once.
  if (__tsan_release) __tsan_release(handle);
  g(handle);
}
