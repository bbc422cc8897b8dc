// libFuzzer target for the parsers of what an operator types on penctl's command line:
// PenClinic's CommandLineValues (quantity, overrides, skinType) and the simulator's fault text,
// ScheduledFault(parsing:) (penctl treat --fault).
//
// Input layout: byte 0 holds flags, the rest is split at NUL bytes into fields, as argv is (no
// argument can contain a NUL), each decoded from UTF-8 with invalid sequences repaired, as
// ArgumentParser does. Byte 0: bit 0 is --confirm; bits 1-3 say whether fields 0, 1 and 2 are
// given to overrides as depth, speed and RF energy (a clear bit is the option left out); bits
// 4-5 pick which option's unit and range field 0 is tried against first.
//
// Every field goes to quantity (under each of the three options), skinType and the fault parser.
// Invariants (a violation calls fatalError, which libFuzzer reports as a crash):
//   1. An accepted quantity is finite, > 0 and inside its plausible range, and reading its own
//      three-decimal form, bare or with the unit, gives the same value.
//   2. A refusal names the option and keeps the text as typed; its description starts with the
//      option, is printable ASCII only (the text is escaped) and stays short, whatever was typed.
//   3. overrides gives exactly what quantity gives for each option, or refuses with the first
//      option, in the order depth, speed, RF energy, whose text quantity refuses; `confirmed`
//      passes through.
//   4. An accepted skin type is 1-6, and its digit and Roman numeral read back to it.
//   5. An accepted fault is at most 24 h in, lasts at most 24 h, and its description parses back
//      to the same fault.

import Foundation
import PenClinic
import PenSafety
import PenSimulator
import PenWire

struct Option {
  var name: String
  var unit: String
  var plausible: ClosedRange<Double>
}

let options = [
  Option(
    name: CommandLineValues.depthOption, unit: "mm", plausible: CommandLineValues.plausibleDepth),
  Option(
    name: CommandLineValues.speedOption, unit: "Hz", plausible: CommandLineValues.plausibleSpeed),
  Option(
    name: CommandLineValues.rfEnergyOption, unit: "mJ",
    plausible: CommandLineValues.plausibleRFEnergy),
]

/// A description longer than this would not be one readable line, whatever was typed.
let maxDescription = 600

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCommandLineValues(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  guard let data, size >= 1 else { return 0 }
  let flags = data[0]
  let rest = UnsafeBufferPointer(start: data + 1, count: size - 1)
  let fields = rest.split(separator: 0, omittingEmptySubsequences: false).prefix(8).map {
    String(decoding: $0, as: UTF8.self)
  }

  let first = Int(flags >> 4 & 3) % options.count
  for (index, field) in fields.enumerated() {
    for k in 0..<options.count {
      _ = checkQuantity(field, options[(first + index + k) % options.count])
    }
    checkSkinType(field)
    checkFault(field)
  }
  checkOverrides(fields, flags: flags)
  return 0
}

/// Invariants 1 and 2; the value, or nil when refused.
func checkQuantity(_ text: String, _ option: Option) -> Double? {
  do {
    let value = try CommandLineValues.quantity(
      text, option: option.name, unit: option.unit, plausible: option.plausible)
    invariant(
      value.isFinite && value > 0 && option.plausible.contains(value),
      "\(option.name) accepted \(value)", text)
    let canonical = String(format: "%.3f", value)
    for again in [canonical, canonical + option.unit, canonical + " " + option.unit] {
      let reread = try? CommandLineValues.quantity(
        again, option: option.name, unit: option.unit, plausible: option.plausible)
      invariant(
        reread == value, "\(value) written as '\(again)' reads as \(String(describing: reread))",
        text)
    }
    return value
  } catch {
    checkRefusal(error, option: option.name, text)
    return nil
  }
}

func checkRefusal(_ error: CommandLineValueError, option: String, _ text: String) {
  let description = error.description
  invariant(
    error.option == option && error.text == text && description.hasPrefix(option + " '"),
    "refusal names \(error.option) and '\(error.text)': \(description)", text)
  invariant(
    description.utf8.count <= maxDescription
      && description.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F },
    "refusal is not one short printable line: \(description.debugDescription)", text)
}

/// Invariant 3.
func checkOverrides(_ fields: [String], flags: UInt8) {
  let given = (0..<3).map { i in flags & (2 << i) != 0 && i < fields.count ? fields[i] : nil }
  let confirmed = flags & 1 != 0
  let text = given.map { $0 ?? "(absent)" }.joined(separator: " | ")
  // What quantity makes of each given text, in option order.
  var expected: [Double?] = []
  var firstRefused: Int?
  for (i, t) in given.enumerated() {
    guard let t else {
      expected.append(nil)
      continue
    }
    let value = quantityAsOverride(t, options[i])
    if value == nil && firstRefused == nil { firstRefused = i }
    expected.append(value)
  }
  do {
    let o = try CommandLineValues.overrides(
      depth: given[0], speed: given[1], rfEnergy: given[2], confirmed: confirmed)
    invariant(
      o.confirmed == confirmed && o.depth?.value == expected[0] && o.speed?.value == expected[1]
        && o.rfEnergy?.value == expected[2],
      "overrides gave \(o), quantity \(expected)", text)
  } catch {
    let refused = options.firstIndex { $0.name == error.option }
    invariant(
      refused != nil && refused == firstRefused,
      "overrides refused \(error.option) (\(error.problem)), quantity refuses option \(String(describing: firstRefused))",
      text)
    if let refused { checkRefusal(error, option: options[refused].name, given[refused] ?? "") }
  }
}

/// What quantity makes of an override's text: RF energy may also be written in mJ/pin.
func quantityAsOverride(_ text: String, _ option: Option) -> Double? {
  do {
    return try CommandLineValues.quantity(
      text, option: option.name, unit: option.unit, plausible: option.plausible)
  } catch {
    guard option.unit == "mJ", error.problem == .wrongUnit("mJ/pin", expected: "mJ") else {
      return nil
    }
    return try? CommandLineValues.quantity(
      text, option: option.name, unit: "mJ/pin", plausible: option.plausible)
  }
}

/// Invariant 4.
func checkSkinType(_ text: String) {
  do {
    let skin = try CommandLineValues.skinType(text)
    let roman = ["I", "II", "III", "IV", "V", "VI"]
    invariant((1...6).contains(skin.rawValue), "skin type \(skin)", text)
    invariant(
      (try? CommandLineValues.skinType("\(skin.rawValue)")) == skin
        && (try? CommandLineValues.skinType(roman[Int(skin.rawValue) - 1])) == skin,
      "skin type \(skin) does not read back", text)
  } catch {
    checkRefusal(error, option: CommandLineValues.skinTypeOption, text)
  }
}

/// Invariant 5.
func checkFault(_ text: String) {
  guard let fault = try? ScheduledFault(parsing: text) else { return }
  let day: UInt64 = 86_400_000_000
  invariant(
    fault.at.rawValue <= day && (fault.duration?.rawValue ?? 0) <= day,
    "fault \(fault) beyond 24 h", text)
  let again = try? ScheduledFault(parsing: fault.description)
  invariant(again == fault, "fault \(fault) reads back as \(String(describing: again))", text)
}

/// fatalError, which prints its message in release builds too (precondition's is dropped there).
func invariant(_ condition: Bool, _ message: @autoclosure () -> String, _ input: String) {
  if !condition {
    fatalError("invariant violated: \(message())\n  input: \(input.debugDescription)")
  }
}
