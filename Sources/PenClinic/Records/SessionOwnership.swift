import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Tells a live session from an interrupted one, so that recovery never aborts a session that
/// another process (or another store object) is still running.
///
/// The first session a store begins makes the store take an exclusive `flock` on a lock file
/// named after a random token, and every session it begins records that token as its owner. The
/// operating system releases the lock when the process ends, however it ends; the store releases
/// it when it is dropped. A session whose owner's lock can be taken has no live owner.
final class SessionOwnership: Sendable {
  let token: String
  let lockFile: URL
  private let descriptor = Mutex<Int32?>(nil)

  init(database: URL) {
    token = UUID().uuidString.lowercased()
    lockFile = Self.lockFile(database: database, token: token)
  }

  static func lockFile(database: URL, token: String) -> URL {
    database.deletingLastPathComponent().appendingPathComponent(
      "\(database.lastPathComponent)-owner-\(token).lock")
  }

  /// Takes this store's lock if it does not hold it yet.
  func hold() throws(RecordsError) {
    let failure: String? = descriptor.withLock { fd in
      if fd != nil { return nil }
      let opened = open(lockFile.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
      guard opened >= 0 else { return String(cString: strerror(errno)) }
      guard flock(opened, LOCK_EX | LOCK_NB) == 0 else {
        let message = String(cString: strerror(errno))
        close(opened)
        return message
      }
      fd = opened
      return nil
    }
    if let failure {
      throw RecordsError(
        .io, path: lockFile.path,
        "cannot take the session lock (\(failure)); check that the records folder is writable")
    }
  }

  /// Whether a live process holds the lock of `token`. Clears the lock file of a dead owner.
  static func isLive(database: URL, token: String) -> Bool {
    let file = lockFile(database: database, token: token)
    let fd = open(file.path, O_RDWR | O_CLOEXEC)
    guard fd >= 0 else { return false }  // no lock file: its owner ended and cleaned up
    defer { close(fd) }
    if flock(fd, LOCK_EX | LOCK_NB) == 0 {
      unlink(file.path)
      flock(fd, LOCK_UN)
      return false
    }
    return true
  }

  deinit {
    descriptor.withLock { fd in
      if let open = fd {
        unlink(lockFile.path)
        flock(open, LOCK_UN)
        close(open)
        fd = nil
      }
    }
  }
}
