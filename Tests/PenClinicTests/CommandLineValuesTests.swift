import PenClinic
import PenSafety
import PenWire
import Testing

/// The refusal of `text` as a depth (0-10 mm), or nil when it was accepted.
private func depthProblem(_ text: String) -> CommandLineValueError.Problem? {
  do {
    _ = try CommandLineValues.quantity(text, option: "--depth", unit: "mm", plausible: 0...10)
    return nil
  } catch {
    return error.problem
  }
}

@Suite("Command-line values")
struct CommandLineValuesTests {
  @Test(
    "a plain decimal number, optionally with its unit, is accepted",
    arguments: [
      ("0.5", 0.5), ("0.5mm", 0.5), ("0.5 mm", 0.5), ("0.5\tmm", 0.5), ("  0.5  ", 0.5),
      (" 0.5 mm ", 0.5), ("2", 2), ("10", 10), ("0.25", 0.25), ("1.125", 1.125), ("0.001", 0.001),
      ("2.0", 2), ("0.100", 0.1), ("10.000mm", 10),
    ])
  func accepted(text: String, value: Double) throws {
    let parsed = try CommandLineValues.quantity(
      text, option: "--depth", unit: "mm", plausible: 0...10)
    #expect(parsed == value)
  }

  @Test(
    "forms a clinician never means, or a reader could misread, are refused with their reason",
    arguments: [
      ("", .empty), ("   ", .empty), ("\t", .empty),
      ("-0.5", .signed), ("+0.5", .signed), ("-inf", .notFinite),
      ("inf", .notFinite), ("Infinity", .notFinite), ("nan", .notFinite), ("NaN", .notFinite),
      ("0x1p-1", .hexadecimal), ("0X10", .hexadecimal),
      ("1e1", .exponent), ("5E-1", .exponent), ("5e+0mm", .exponent),
      (".5", .leadingDecimalPoint(suggestion: "0.5")),
      (".25mm", .leadingDecimalPoint(suggestion: "0.25")),
      ("5.", .trailingDecimalPoint), ("5.mm", .trailingDecimalPoint),
      ("0,5", .commaDecimalPoint), ("1,000", .commaDecimalPoint),
      ("05", .leadingZero), ("00.5", .leadingZero),
      ("0.1234", .tooManyDecimals(4, limit: 3)), ("1.00000", .tooManyDecimals(5, limit: 3)),
      ("0.5cm", .wrongUnit("cm", expected: "mm")), ("0.5 MM", .wrongUnit("MM", expected: "mm")),
      ("0.5 mm mm", .unexpectedText), ("0.5 5", .unexpectedText), ("1.2.3", .unexpectedText),
      ("0.5;rm", .unexpectedText), ("0.5\n", .unexpectedText),
      ("mm", .notANumber), (".", .notANumber), ("five", .notANumber), ("\u{0665}", .notANumber),
      ("\u{FF10}.5", .notANumber),
      ("0", .notPositive), ("0.000", .notPositive), ("0mm", .notPositive),
      ("10.001", .outOfRange(10.001)), ("99999", .outOfRange(99_999)),
      (String(repeating: "1", count: 33), .tooLong(characters: 33, limit: 32)),
    ] as [(String, CommandLineValueError.Problem)])
  func refused(text: String, problem: CommandLineValueError.Problem) {
    #expect(depthProblem(text) == problem)
  }

  @Test("every refusal names the option, the text, what was expected and what to do")
  func refusalMessage() throws {
    let error = try #require(
      throws: CommandLineValueError.self,
      performing: {
        try CommandLineValues.quantity("0,5", option: "--depth", unit: "mm", plausible: 0...10)
      })
    #expect(error.option == "--depth")
    #expect(error.text == "0,5")
    #expect(
      error.description
        == "--depth '0,5': a comma is neither a decimal point nor a thousands separator here; "
        + "write decimals with a point (0.5) and thousands without a separator (1000). "
        + "Give a plain decimal number of mm above 0, at most 10, such as 0.5 or 0.5mm.")

    let range = try #require(
      throws: CommandLineValueError.self,
      performing: {
        try CommandLineValues.quantity("12", option: "--depth", unit: "mm", plausible: 0...10)
      })
    #expect(
      range.description
        == "--depth '12': 12.0 is outside the plausible range; check the unit and the amount. "
        + "Give a plain decimal number of mm above 0, at most 10, such as 0.5 or 0.5mm.")

    let lead = try #require(
      throws: CommandLineValueError.self,
      performing: {
        try CommandLineValues.quantity(".75", option: "--depth", unit: "mm", plausible: 0...10)
      })
    #expect(lead.description.contains("write 0.75"))

    let bounded = try #require(
      throws: CommandLineValueError.self,
      performing: {
        try CommandLineValues.quantity("0.2", option: "--x", unit: "Hz", plausible: 0.5...4)
      })
    #expect(
      bounded.description.hasSuffix(
        "Give a plain decimal number of Hz from 0.5 to 4, such as 0.5 or 0.5Hz."))
  }

  @Test("the text in a message is escaped and cut short, so the message stays one clean line")
  func escapedText() throws {
    let hostile = "1\u{1B}[2J\n\u{202E}'\\" + String(repeating: "9", count: 10)
    let error = try #require(
      throws: CommandLineValueError.self,
      performing: {
        try CommandLineValues.quantity(hostile, option: "--depth", unit: "mm", plausible: 0...10)
      })
    #expect(error.text == hostile)
    #expect(
      error.description.hasPrefix(
        "--depth '1\\u{1B}[2J\\n\\u{202E}\\'\\\\9999999999': unexpected text after the number"))
    #expect(error.description.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F })

    let long = String(repeating: "x", count: 20) + String(repeating: "\u{E9}", count: 10)
    let cut = try #require(
      throws: CommandLineValueError.self,
      performing: {
        try CommandLineValues.quantity(long, option: "--speed", unit: "Hz", plausible: 0...1000)
      })
    #expect(cut.problem == .notANumber)
    #expect(
      cut.description.hasPrefix(
        "--speed 'xxxxxxxxxxxxxxxxxxxx\\u{E9}\\u{E9}\\u{E9}\\u{E9}... (30 characters)': not a number"
      ))
  }

  @Test("overrides read each option with its unit and range, and leave absent ones to the preset")
  func overrides() throws {
    let all = try CommandLineValues.overrides(
      depth: "0.75mm", speed: "2 Hz", rfEnergy: "12.5mJ/pin", confirmed: true)
    #expect(
      all
        == PresetOverrides(
          depth: Millimetres(0.75), speed: Hertz(2), rfEnergy: Millijoules(12.5), confirmed: true))
    #expect(
      try CommandLineValues.overrides(depth: nil, speed: nil, rfEnergy: "12 mJ", confirmed: false)
        == PresetOverrides(rfEnergy: Millijoules(12)))
    #expect(
      try CommandLineValues.overrides(depth: nil, speed: nil, rfEnergy: nil, confirmed: false)
        == .none)
  }

  @Test(
    "overrides refuse a value beyond its plausible range or in another option's unit, naming the option",
    arguments: [
      ("10.5", nil, nil, "--depth", CommandLineValueError.Problem.outOfRange(10.5)),
      ("1", "1000.5", nil, "--speed", .outOfRange(1000.5)),
      (nil, nil, "1001", "--rf-energy", .outOfRange(1001)),
      (nil, "120mm", nil, "--speed", .wrongUnit("mm", expected: "Hz")),
      (nil, nil, "12 J", "--rf-energy", .wrongUnit("J", expected: "mJ")),
      ("1", "", "5", "--speed", .empty),
    ] as [(String?, String?, String?, String, CommandLineValueError.Problem)])
  func overrideRefused(
    depth: String?, speed: String?, rf: String?, option: String,
    problem: CommandLineValueError.Problem
  ) throws {
    let error = try #require(
      throws: CommandLineValueError.self,
      performing: {
        try CommandLineValues.overrides(depth: depth, speed: speed, rfEnergy: rf, confirmed: false)
      })
    #expect(error.option == option)
    #expect(error.problem == problem)
    #expect(error.description.hasPrefix(option + " '"))
  }

  @Test(
    "a skin type is 1-6 or I-VI",
    arguments: [
      ("1", FitzpatrickType.typeI), ("6", .typeVI), ("I", .typeI), ("ii", .typeII),
      ("III", .typeIII), ("iv", .typeIV), (" V ", .typeV), ("VI", .typeVI), ("vi", .typeVI),
    ])
  func skinType(text: String, skin: FitzpatrickType) throws {
    #expect(try CommandLineValues.skinType(text) == skin)
  }

  @Test(
    "anything else is not a skin type",
    arguments: [
      ("0", CommandLineValueError.Problem.notASkinType), ("7", .notASkinType),
      ("01", .notASkinType), ("3.0", .notASkinType), ("+3", .notASkinType),
      ("IIII", .notASkinType), ("VII", .notASkinType), ("type IV", .notASkinType),
      ("\u{2163}", .notASkinType), ("", .empty), ("  ", .empty),
      (String(repeating: "I", count: 40), .tooLong(characters: 40, limit: 32)),
    ])
  func skinTypeRefused(text: String, problem: CommandLineValueError.Problem) throws {
    let error = try #require(
      throws: CommandLineValueError.self, performing: { try CommandLineValues.skinType(text) })
    #expect(error.problem == problem)
    #expect(error.option == "--fitzpatrick")
    #expect(error.description.contains("1 to 6 or I to VI"))
  }
}
