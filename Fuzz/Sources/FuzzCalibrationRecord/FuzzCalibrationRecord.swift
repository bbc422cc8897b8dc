// libFuzzer target for PenWire's calibration record codec: CalibrationRecord.decode, which reads
// the 64 bytes a pen returns in calibration_data and a host sends in write_calibration.
//
// Input layout: byte 0 selects the mode, the rest is the record.
//   Mode A (byte 0 even): the rest as-is, of any length, to decode(UnsafeRawBufferPointer) and
//     decode([UInt8]).
//   Mode B (byte 0 odd, "CRC fix-up"): the first 64 bytes of the rest (zero-padded when shorter)
//     with the CRC-32C of bytes 0-59 written into bytes 60-63, so mutations get past the CRC into
//     the reserved-byte and field-range checks.
//
// Invariants (a violation calls fatalError, which libFuzzer reports as a crash):
//   1. Both decode entry points agree: the same record, or the same error.
//   2. Anything but exactly 64 bytes is bad_length; a refusal follows calibration.md section 5's
//      order (magic, version, CRC, reserved, fields), and a crc_mismatch carries two different
//      values, the received one being bytes 60-63.
//   3. A record that decodes re-encodes to exactly the same 64 bytes, unless it breaks a writer
//      rule of calibration.md section 1 that decoding does not check (technician id against the
//      source, an mn100 with RF gain or error), and then encode names that rule and no other.
//   4. A decoded record is never `.implausible` (CalibrationValidity), and it is valid for arming
//      its own pen exactly when it is verified, not marked bad, and within the standard tolerances.

import PenWire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCalibrationRecord(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  guard let data, size >= 1 else { return 0 }
  let rest = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
  if data[0] & 1 == 0 {
    check(rest)
  } else {
    withUnsafeTemporaryAllocation(byteCount: CalibrationRecord.size, alignment: 1) { record in
      record.initializeMemory(as: UInt8.self, repeating: 0)
      for i in 0..<min(rest.count, CalibrationRecord.size) { record[i] = rest[i] }
      fixUpCRC(record)
      check(UnsafeRawBufferPointer(record))
    }
  }
  return 0
}

/// Mode B: bytes 60-63 become the CRC-32C of bytes 0-59.
func fixUpCRC(_ record: UnsafeMutableRawBufferPointer) {
  let crc = CRC32C.checksum(
    UnsafeRawBufferPointer(rebasing: record[0..<CalibrationRecord.crcOffset]))
  for i in 0..<4 {
    record[CalibrationRecord.crcOffset + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i)))
  }
}

func check(_ bytes: UnsafeRawBufferPointer) {
  let viaPointer: Result<CalibrationRecord, CalibrationRecordError>
  do {
    viaPointer = .success(try CalibrationRecord.decode(bytes))
  } catch {
    viaPointer = .failure(error)
  }
  let viaArray: Result<CalibrationRecord, CalibrationRecordError>
  do {
    viaArray = .success(try CalibrationRecord.decode(Array(bytes)))
  } catch {
    viaArray = .failure(error)
  }
  invariant(
    viaPointer == viaArray, "decode entry points disagree: \(viaPointer) vs \(viaArray)", bytes)

  switch viaPointer {
  case .failure(let error):
    checkRefusal(error, bytes)
  case .success(let record):
    checkRecord(record, bytes)
  }
}

/// Invariant 2.
func checkRefusal(_ error: CalibrationRecordError, _ bytes: UnsafeRawBufferPointer) {
  guard bytes.count == CalibrationRecord.size else {
    invariant(error == .badLength(bytes.count), "\(bytes.count) bytes gave \(error)", bytes)
    return
  }
  let magicOK = bytes[0] == 0x43 && bytes[1] == 0x52
  let versionOK = bytes[2] == CalibrationRecord.formatVersion
  let received = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[60 + $1]) << (8 * UInt32($1)) }
  let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<60]))
  let expected: String
  switch error {
  case .badLength: expected = "never for 64 bytes"
  case .badMagic: expected = magicOK ? "good magic" : ""
  case .unsupportedVersion: expected = !magicOK || versionOK ? "an earlier failure or none" : ""
  case .crcMismatch(let r, let c):
    expected =
      !magicOK || !versionOK || received == computed || r != received || c != computed
      ? "an earlier failure, or the CRC received \(received) / computed \(computed)" : ""
  case .reservedNotZero, .fieldOutOfRange:
    expected = !magicOK || !versionOK || received != computed ? "an earlier failure" : ""
  case .inconsistentField: expected = "never from decode"
  }
  invariant(
    expected.isEmpty, "decode refused with \(error) where it should report \(expected)", bytes)
  invariant(
    error.nackDetail.map { (0..<64).contains($0) } == true,
    "\(error) has nack detail \(String(describing: error.nackDetail))", bytes)
}

/// Invariants 3 and 4.
func checkRecord(_ record: CalibrationRecord, _ bytes: UnsafeRawBufferPointer) {
  invariant(bytes.count == CalibrationRecord.size, "decoded \(bytes.count) bytes", bytes)
  do {
    let encoded = try record.encodedBytes()
    invariant(
      encoded.elementsEqual(bytes),
      "\(record) decodes but re-encodes to \(hex(encoded))", bytes)
  } catch {
    let technicianRule =
      (record.source == .factory) != (record.technician == 0)
    let mn100Rule = record.model == .mn100 && (record.rfGain != 1 || record.rfError != 0)
    switch error {
    case .inconsistentField(.technician, _):
      invariant(technicianRule, "encode refuses \(record) with \(error)", bytes)
    case .inconsistentField(.rfGain, _), .inconsistentField(.rfError, _):
      invariant(
        !technicianRule && mn100Rule, "encode refuses \(record) with \(error)", bytes)
    default:
      invariant(false, "\(record) decodes but does not re-encode: \(error)", bytes)
    }
  }

  let validity = record.validity(forModel: record.model, serial: record.serial)
  if case .implausible = validity {
    invariant(false, "a decoded record is \(validity)", bytes)
  }
  let flags = bytes[4]
  let withinTolerance =
    UInt16(bytes[48]) | UInt16(bytes[49]) << 8 <= 50
    && UInt16(bytes[50]) | UInt16(bytes[51]) << 8 <= 50
    && UInt16(bytes[52]) | UInt16(bytes[53]) << 8 <= 100
  let shouldArm = flags & 0x01 == 0 && flags & 0x02 != 0 && withinTolerance
  invariant(
    validity.isValidForArming == shouldArm,
    "record with flags \(flags) and errors within tolerance \(withinTolerance) is \(validity)",
    bytes)
}

/// fatalError, which prints its message in release builds too (precondition's is dropped there).
func invariant(
  _ condition: Bool, _ message: @autoclosure () -> String, _ input: UnsafeRawBufferPointer
) {
  if !condition {
    fatalError(
      "invariant violated: \(message())\n"
        + "  bytes checked (after the mode byte and any fix-up): \(hex(Array(input)))")
  }
}

func hex(_ bytes: [UInt8]) -> String {
  let digits = Array("0123456789abcdef")
  var s = ""
  for b in bytes {
    s.append(digits[Int(b >> 4)])
    s.append(digits[Int(b & 15)])
  }
  return s
}
