import Foundation

/// Text and numbers for HTML and SVG: escaping that keeps every document well-formed XML, and
/// number formats that read well in a table or on an axis.
public enum Markup {
  /// `text` with the five XML special characters escaped, and control characters (which XML 1.0
  /// forbids) replaced by U+FFFD, so that any text — a serial, a finding, a label — is safe inside
  /// an element or a quoted attribute.
  public static func escape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for scalar in text.unicodeScalars {
      switch scalar {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&#39;"
      case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
      default:
        if scalar.value < 0x20 || (0xFFFE...0xFFFF).contains(scalar.value) {
          out += "\u{FFFD}"
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out
  }

  /// `value` with `places` decimals ("1.250"); "–" for a value that is not a number.
  public static func number(_ value: Double, places: Int) -> String {
    guard value.isFinite else { return "–" }
    let places = max(0, min(places, 12))
    // No "-0.00": a value that rounds to zero is zero.
    let zero = (abs(value) * Foundation.pow(10, Double(places))).rounded() == 0
    return String(format: "%.\(places)f", zero ? 0 : value)
  }

  /// A coordinate in an SVG document: two decimals are finer than any screen.
  static func coordinate(_ value: Double) -> String { number(value, places: 2) }
}
