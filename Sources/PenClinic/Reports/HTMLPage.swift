/// A self-contained HTML page: inline CSS, inline SVG, no script, no external resource. Written as
/// well-formed XML (XHTML syntax) so that any XML parser can read it.
struct HTMLPage {
  var title: String
  var body: String = ""

  static let style = """
    body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
      max-width: 60em; color: #1d1d1f; }
    h1 { font-size: 1.5em; margin-bottom: 0.2em; }
    h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
    table { border-collapse: collapse; margin: 0.6em 0; }
    th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
    th:first-child, td:first-child { text-align: left; }
    th { background: #f4f4f4; }
    .verdict { display: inline-block; padding: 0.2em 0.7em; border-radius: 0.3em; font-weight: bold; }
    .pass { background: #dff3e3; color: #14532d; }
    .fail { background: #fde2e1; color: #7f1d1d; }
    .charts svg { display: block; margin: 0.8em 0; }
    .muted { color: #666; font-size: 0.9em; }
    """

  mutating func heading(_ text: String, level: Int = 2) {
    body += "<h\(level)>\(Markup.escape(text))</h\(level)>\n"
  }

  mutating func paragraph(_ text: String, cssClass: String? = nil) {
    let attribute = cssClass.map { " class=\"\(Markup.escape($0))\"" } ?? ""
    body += "<p\(attribute)>\(Markup.escape(text))</p>\n"
  }

  /// A table: a header row, then rows of cells; every cell is text, escaped.
  mutating func table(header: [String], rows: [[String]]) {
    body += "<table>\n<thead><tr>"
    for h in header { body += "<th>\(Markup.escape(h))</th>" }
    body += "</tr></thead>\n<tbody>\n"
    for row in rows {
      body += "<tr>"
      for cell in row { body += "<td>\(Markup.escape(cell))</td>" }
      body += "</tr>\n"
    }
    body += "</tbody>\n</table>\n"
  }

  /// A list of items, escaped.
  mutating func list(_ items: [String]) {
    body += "<ul>\n"
    for item in items { body += "<li>\(Markup.escape(item))</li>\n" }
    body += "</ul>\n"
  }

  /// Markup already built and escaped by its producer (SVG charts).
  mutating func raw(_ markup: String) { body += markup }

  var html: String {
    """
    <!DOCTYPE html>
    <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
    <head>
    <meta charset="utf-8"/>
    <title>\(Markup.escape(title))</title>
    <style>
    \(Self.style)
    </style>
    </head>
    <body>
    \(body)</body>
    </html>

    """
  }
}
