public import PenSafety
import PenWire

/// Typed parsing of the treatment values an operator types on the command line (penctl treat
/// --depth/--speed/--rf-energy/--fitzpatrick), kept apart from the CLI so that it is unit-tested
/// and fuzzed (Fuzz/Sources/FuzzCommandLineValues).
///
/// A quantity is written the way a dose is written on a chart, and nothing a reader could misread
/// is accepted (ISMP's error-prone abbreviations: no naked decimal point, no trailing zero after a
/// point):
/// - digits, optionally a point and one to three more digits: `0.5`, `100`, `12.25`;
/// - optionally followed by the unit, with or without spaces: `0.5mm`, `0.5 mm`;
/// - spaces and tabs around the whole value are ignored.
///
/// Refused, each with its own reason: nothing or only spaces; a sign (`-0.5`, `+1`); `.5` (a
/// lost leading zero reads as 5); `5.` (a stray point); `05` (a leading zero hides a lost point:
/// 5 or 0.5?); a comma for the point (`0,5`); more than three decimals (no pen resolves a
/// micrometre, a tenth of a millihertz or a microjoule, so more digits are a paste error); an
/// exponent (`1e1`), hexadecimal (`0x1p-1`), `inf` or `nan` — forms a programming language reads
/// but a clinician never means; another unit (`0.5cm`); anything else after the number; zero;
/// a value outside the plausible range; and text longer than `maxLength`. Only ASCII digits count.
///
/// The plausible range is a sanity bound on what was typed, not a clinical limit: the preset
/// layer checks the value against the area's hard limits and the pen's capability afterwards
/// (`Preset.envelope(model:skin:overrides:)`).
public enum CommandLineValues {
  /// Longer text (in Unicode scalars) is refused unread: no value needs more than a few.
  public static let maxLength = 32
  /// Decimals a quantity may carry (a micrometre of depth, a millihertz, a microjoule).
  public static let maxDecimals = 3

  /// The option names `overrides` reports in its errors, as penctl spells them.
  public static let depthOption = "--depth"
  public static let speedOption = "--speed"
  public static let rfEnergyOption = "--rf-energy"
  public static let skinTypeOption = "--fitzpatrick"

  /// Plausible ranges of the overrides: wide sanity bounds far outside any clinical limit.
  public static let plausibleDepth: ClosedRange<Double> = 0...10
  public static let plausibleSpeed: ClosedRange<Double> = 0...1_000
  public static let plausibleRFEnergy: ClosedRange<Double> = 0...1_000

  /// A positive quantity in `unit`, typed as described above, within `plausible`.
  public static func quantity(
    _ text: String, option: String, unit: String, plausible: ClosedRange<Double>
  ) throws(CommandLineValueError) -> Double {
    try quantity(text, option: option, units: [unit], plausible: plausible)
  }

  /// The operator's overrides of a preset's defaults; a nil text leaves that value to the preset.
  /// RF energy is per pin, in mJ (`mJ` or `mJ/pin` may follow the number).
  public static func overrides(
    depth: String?, speed: String?, rfEnergy: String?, confirmed: Bool
  ) throws(CommandLineValueError) -> PresetOverrides {
    var out = PresetOverrides(confirmed: confirmed)
    if let depth {
      out.depth = Millimetres(
        try quantity(depth, option: depthOption, units: ["mm"], plausible: plausibleDepth))
    }
    if let speed {
      out.speed = Hertz(
        try quantity(speed, option: speedOption, units: ["Hz"], plausible: plausibleSpeed))
    }
    if let rfEnergy {
      out.rfEnergy = Millijoules(
        try quantity(
          rfEnergy, option: rfEnergyOption, units: ["mJ", "mJ/pin"], plausible: plausibleRFEnergy))
    }
    return out
  }

  /// A Fitzpatrick skin type: `1` to `6` or `I` to `VI` (either case), nothing else.
  public static func skinType(_ text: String) throws(CommandLineValueError) -> FitzpatrickType {
    let expected = "a Fitzpatrick skin type, 1 to 6 or I to VI"
    func refuse(_ problem: CommandLineValueError.Problem) -> CommandLineValueError {
      CommandLineValueError(
        option: skinTypeOption, text: text, problem: problem, expected: expected)
    }
    let length = text.unicodeScalars.count
    if length > maxLength { throw refuse(.tooLong(characters: length, limit: maxLength)) }
    let trimmed = trimmingBlanks(text)
    if trimmed.isEmpty { throw refuse(.empty) }
    let spellings = ["1", "2", "3", "4", "5", "6", "I", "II", "III", "IV", "V", "VI"]
    guard
      let index = spellings.firstIndex(of: String(String.UnicodeScalarView(trimmed)).uppercased()),
      let skin = FitzpatrickType(rawValue: UInt8(index % 6 + 1))
    else { throw refuse(.notASkinType) }
    return skin
  }

  // MARK: The grammar

  static func quantity(
    _ text: String, option: String, units: [String], plausible: ClosedRange<Double>
  ) throws(CommandLineValueError) -> Double {
    // Built only on a refusal: an accepted value costs no message.
    func refuse(_ problem: CommandLineValueError.Problem) -> CommandLineValueError {
      let low = plain(plausible.lowerBound)
      let high = plain(plausible.upperBound)
      let bounds =
        plausible.lowerBound > 0 ? "from \(low) to \(high)" : "above 0, at most \(high)"
      return CommandLineValueError(
        option: option, text: text, problem: problem,
        expected: "a plain decimal number of \(units[0]) \(bounds), such as 0.5 or 0.5\(units[0])")
    }
    let length = text.unicodeScalars.count
    if length > maxLength { throw refuse(.tooLong(characters: length, limit: maxLength)) }
    let s = trimmingBlanks(text)
    if s.isEmpty { throw refuse(.empty) }
    let lower = s.map { isLetter($0) ? Unicode.Scalar(UInt8($0.value) | 0x20) : $0 }
    if contains(lower, "inf") || contains(lower, "nan") { throw refuse(.notFinite) }
    if s[0] == "+" || s[0] == "-" { throw refuse(.signed) }
    if lower.starts(with: "0x".unicodeScalars) { throw refuse(.hexadecimal) }

    var i = 0
    let whole = digits(s, from: &i)
    if whole.isEmpty {
      if s[0] == "." {
        var j = 1
        let decimals = digits(s, from: &j)
        if !decimals.isEmpty {
          throw refuse(
            .leadingDecimalPoint(suggestion: "0." + String(String.UnicodeScalarView(decimals))))
        }
      }
      throw refuse(.notANumber)
    }
    var fraction: [Unicode.Scalar] = []
    if i < s.count && s[i] == "." {
      i += 1
      fraction = digits(s, from: &i)
      if fraction.isEmpty { throw refuse(.trailingDecimalPoint) }
    }
    if whole.count > 1 && whole[0] == "0" { throw refuse(.leadingZero) }
    if fraction.count > maxDecimals {
      throw refuse(.tooManyDecimals(fraction.count, limit: maxDecimals))
    }

    // What follows the number: nothing, or the unit after optional blanks.
    let rest = Array(s[i...])
    if !rest.isEmpty {
      let unit = trimmingBlanks(rest)
      let unitText = String(String.UnicodeScalarView(unit))
      if !units.contains(unitText) {
        throw refuse(classify(rest: rest, unit: unit, expected: units[0]))
      }
    }

    let literal = String(
      String.UnicodeScalarView(whole + (fraction.isEmpty ? [] : ["."] + fraction)))
    guard let value = Double(literal), value.isFinite else { throw refuse(.notANumber) }
    if value == 0 { throw refuse(.notPositive) }
    if !plausible.contains(value) { throw refuse(.outOfRange(value)) }
    return value
  }

  /// Why the text after a number is not the unit: the forms a reader might have meant first.
  private static func classify(rest: [Unicode.Scalar], unit: [Unicode.Scalar], expected: String)
    -> CommandLineValueError.Problem
  {
    let first = rest[0]
    if first == "," && rest.count > 1 && isDigit(rest[1]) { return .commaDecimalPoint }
    if first == "e" || first == "E" {
      var j = 1
      if j < rest.count && (rest[j] == "+" || rest[j] == "-") { j += 1 }
      if j < rest.count && isDigit(rest[j]) { return .exponent }
    }
    // Letters (and a '/' as in mJ/pin) after the number: a unit, but not this one.
    if !unit.isEmpty && isLetter(unit[0])
      && unit.allSatisfy({ isLetter($0) || $0 == "/" || $0 == "%" })
    {
      return .wrongUnit(String(String.UnicodeScalarView(unit)), expected: expected)
    }
    return .unexpectedText
  }

  /// A bound for a message: `10`, `0.5`.
  private static func plain(_ value: Double) -> String {
    if value.isFinite && value == value.rounded() && abs(value) < 1e15 { return "\(Int64(value))" }
    return PresetText.number(value)
  }

  private static func digits(_ s: [Unicode.Scalar], from i: inout Int) -> [Unicode.Scalar] {
    let start = i
    while i < s.count && isDigit(s[i]) { i += 1 }
    return Array(s[start..<i])
  }

  /// Whether `word` occurs in `s`.
  private static func contains(_ s: [Unicode.Scalar], _ word: String) -> Bool {
    let w = Array(word.unicodeScalars)
    guard s.count >= w.count else { return false }
    return (0...(s.count - w.count)).contains { s[$0..<$0 + w.count].elementsEqual(w) }
  }

  private static func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }

  private static func isLetter(_ c: Unicode.Scalar) -> Bool {
    (c >= "a" && c <= "z") || (c >= "A" && c <= "Z")
  }

  private static func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" }

  private static func trimmingBlanks(_ text: String) -> [Unicode.Scalar] {
    trimmingBlanks(Array(text.unicodeScalars))
  }

  private static func trimmingBlanks(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
    var start = 0
    var end = s.count
    while start < end && isBlank(s[start]) { start += 1 }
    while end > start && isBlank(s[end - 1]) { end -= 1 }
    return Array(s[start..<end])
  }
}

/// A value typed on the command line that cannot be used: the option, the text as typed, what is
/// wrong with it, what the option takes, and what to do.
public struct CommandLineValueError: Error, Sendable, Hashable, CustomStringConvertible {
  /// What is wrong with the text.
  public enum Problem: Sendable, Hashable {
    /// Nothing, or only spaces.
    case empty
    /// Longer than `CommandLineValues.maxLength` Unicode scalars: how many, and the limit.
    case tooLong(characters: Int, limit: Int)
    /// A leading `+` or `-`.
    case signed
    /// `inf`, `infinity` or `nan`, in any case.
    case notFinite
    /// `0x...`.
    case hexadecimal
    /// An exponent: `1e1`, `5E-1`.
    case exponent
    /// `.5`: the leading zero is missing; the number meant (`0.5`).
    case leadingDecimalPoint(suggestion: String)
    /// `5.`: a point with no digits after it.
    case trailingDecimalPoint
    /// `0,5`: a comma where a point belongs.
    case commaDecimalPoint
    /// `05`: a leading zero before other digits.
    case leadingZero
    /// More decimals than `CommandLineValues.maxDecimals`.
    case tooManyDecimals(Int, limit: Int)
    /// A unit other than the option's: what was written, and the option's unit.
    case wrongUnit(String, expected: String)
    /// Something after the number that is not a unit.
    case unexpectedText
    /// Not a number at all.
    case notANumber
    /// Zero.
    case notPositive
    /// A number outside the plausible range: the number read.
    case outOfRange(Double)
    /// Not one of 1-6 or I-VI.
    case notASkinType
  }

  /// The option, as penctl spells it (`--depth`).
  public var option: String
  /// The text as it was typed.
  public var text: String
  public var problem: Problem
  /// What the option takes, e.g. "a plain decimal number of mm from 0.0 to 10.0, such as 0.5 or 0.5mm".
  public var expected: String

  public init(option: String, text: String, problem: Problem, expected: String) {
    self.option = option
    self.text = text
    self.problem = problem
    self.expected = expected
  }

  /// `--depth '0,5': a comma is not a decimal point; write 0.5. Give a plain decimal number ...`.
  /// The text is quoted with every character outside printable ASCII escaped, and cut short when
  /// long, so the message is one clean terminal line whatever was typed.
  public var description: String {
    "\(option) \(Self.quoted(text)): \(reason). Give \(expected)."
  }

  /// What is wrong and what to do about it, without the option and the expected form.
  public var reason: String {
    switch problem {
    case .empty: return "no value; type one, or leave the option out"
    case .tooLong(let characters, let limit):
      return
        "\(characters) characters, more than the \(limit) any value needs; type the value alone"
    case .signed: return "no sign is allowed, the value is a positive amount; remove the sign"
    case .notFinite: return "not a finite number; type the amount as digits"
    case .hexadecimal: return "hexadecimal is not accepted; type the amount in decimal"
    case .exponent: return "exponents are not accepted; type the amount in full, e.g. 10 for 1e1"
    case .leadingDecimalPoint(let suggestion):
      return
        "a decimal point needs a digit before it (.5 reads as 5); write \(Self.shown(suggestion))"
    case .trailingDecimalPoint:
      return "a decimal point needs digits after it; remove the point or add the decimals"
    case .commaDecimalPoint:
      return
        "a comma is neither a decimal point nor a thousands separator here; write decimals with a point (0.5) and thousands without a separator (1000)"
    case .leadingZero:
      return
        "a leading zero hides a lost decimal point (05 could be 5 or 0.5); type the amount you mean without leading zeros"
    case .tooManyDecimals(let count, let limit):
      return "\(count) decimals, more than the \(limit) any setting resolves; round to \(limit)"
    case .wrongUnit(let unit, let expected):
      return
        "\(Self.quoted(unit)) is not \(expected) (units are case-sensitive); give the amount in \(expected)"
    case .unexpectedText:
      return "unexpected text after the number; type the number, optionally followed by its unit"
    case .notANumber: return "not a number; type the amount as digits"
    case .notPositive: return "zero is not a setting; type the amount, or leave the option out"
    case .outOfRange(let value):
      return
        "\(PresetText.number(value)) is outside the plausible range; check the unit and the amount"
    case .notASkinType: return "not a skin type; type the patient's type"
    }
  }

  /// The text quoted for a message: printable ASCII as is (with `'` and `\` escaped), everything
  /// else as `\n`, `\t` or `\u{...}`, and at most `shownLength` characters followed by how many
  /// there were.
  static func quoted(_ text: String) -> String { "'\(shown(text))'" }

  /// Characters of the text a message shows before cutting it short.
  static let shownLength = 24

  static func shown(_ text: String) -> String {
    var out = ""
    var count = 0
    for scalar in text.unicodeScalars {
      count += 1
      if count > shownLength { continue }
      switch scalar {
      case "\n": out += "\\n"
      case "\t": out += "\\t"
      case "\r": out += "\\r"
      case "'": out += "\\'"
      case "\\": out += "\\\\"
      case " "..."~": out.unicodeScalars.append(scalar)
      default: out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
      }
    }
    if count > shownLength { out += "... (\(count) characters)" }
    return out
  }
}
