#!/usr/bin/env python3
"""Firmware-Specs tooling: the catalogue hash, Swift generation, golden vectors, and checks.

The message catalogue (Firmware-Specs/messages.json) is the single source of truth for the wire.
This script
  * computes the catalogue hash (CRC-32C over the canonical text of framing.md),
  * generates Sources/PenWire/Generated/Catalogue.swift from the catalogue,
  * generates Firmware-Specs/vectors/frames.json with its own Python encoder, so that the Swift
    codec is checked against an implementation that shares no code with it,
  * checks that everything committed agrees with the catalogue (`check`, run by `make test`).

Usage: wirespec.py hash | generate | check
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(ROOT, "Firmware-Specs")
CATALOGUE = os.path.join(SPECS, "messages.json")
SWIFT_OUT = os.path.join(ROOT, "Sources", "PenWire", "Generated", "Catalogue.swift")
VECTORS_OUT = os.path.join(SPECS, "vectors", "frames.json")
TABLES_OUT = os.path.join(ROOT, "Sources", "PenSafety", "Generated", "SpecTables.swift")

MAGIC = b"PC"
HEADER_SIZE = 10
CRC_SIZE = 4
MAX_PAYLOAD = 240

INT_TYPES = {
    "u8": (1, False), "u16": (2, False), "u32": (4, False), "u64": (8, False),
    "i16": (2, True), "i32": (4, True),
}
SWIFT_INT = {"u8": "UInt8", "u16": "UInt16", "u32": "UInt32", "u64": "UInt64", "i16": "Int16", "i32": "Int32"}
INTEGER_UNITS = {"us": "Microseconds"}


# ---------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli): poly 0x1EDC6F41 (reflected 0x82F63B78), init and xor-out 0xFFFFFFFF.

def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


# ---------------------------------------------------------------------------------------------
# Loading and field facts

def load():
    with open(CATALOGUE, encoding="utf-8") as f:
        return json.load(f)


def enums_by_name(cat):
    return {e["name"]: e for e in cat["enums"]}


def flags_by_name(cat):
    return {f["name"]: f for f in cat["flags"]}


def wire_type(cat, field):
    """The integer type a field occupies on the wire, or 'bytes'/'ascii'/'bool'."""
    t = field["type"]
    if t == "enum":
        return enums_by_name(cat)[field["enum"]]["type"]
    if t == "flags":
        return flags_by_name(cat)[field["flags"]]["type"]
    return t


def field_size(cat, field):
    t = wire_type(cat, field)
    if t in INT_TYPES:
        return INT_TYPES[t][0]
    if t == "bool":
        return 1
    if t in ("bytes", "ascii"):
        return field["length"]
    raise ValueError(f"unknown type {t}")


def payload_size(cat, message):
    return sum(field_size(cat, f) for f in message["fields"])


def type_range(t):
    size, signed = INT_TYPES[t]
    if signed:
        return -(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1
    return 0, (1 << (8 * size)) - 1


def raw_bounds(cat, field):
    """(raw_min, raw_max) for integer-valued fields; None for enums, flags, bytes and ascii."""
    t = field["type"]
    if t == "bool":
        return 0, 1
    if t in ("enum", "flags", "bytes", "ascii"):
        return None
    lo, hi = type_range(t)
    scale = field.get("scale", 1)
    if "min" in field:
        lo = max(lo, int(round(field["min"] * scale)))
    if "max" in field:
        hi = min(hi, int(round(field["max"] * scale)))
    return lo, hi


def declared_bounds(field):
    """The raw bounds the catalogue declares, as text for the canonical form ('-' where none)."""
    scale = field.get("scale", 1)
    lo = str(int(round(field["min"] * scale))) if "min" in field else "-"
    hi = str(int(round(field["max"] * scale))) if "max" in field else "-"
    return lo, hi


def ref_of(field):
    t = field["type"]
    if t == "enum":
        return field["enum"]
    if t == "flags":
        return field["flags"]
    if t in ("bytes", "ascii"):
        return str(field["length"])
    return "-"


# ---------------------------------------------------------------------------------------------
# Catalogue hash: CRC-32C over the canonical text (framing.md, 'Catalogue hash').

def canonical_text(cat):
    lines = [f"pencontrol-catalogue protocol={cat['protocol_version']}"]
    for e in cat["enums"]:
        lines.append(f"enum {e['name']} {e['type']}")
        for v in e["values"]:
            lines.append(f"value {v['name']} {v['value']}")
    for fl in cat["flags"]:
        lines.append(f"flags {fl['name']} {fl['type']}")
        for b in fl["bits"]:
            lines.append(f"bit {b['name']} {b['bit']}")
    for m in sorted(cat["messages"], key=lambda m: m["id"]):
        lines.append(f"message {m['id']} {m['name']} {m['direction']} {m['ack']}")
        for f in m["fields"]:
            lo, hi = declared_bounds(f)
            lines.append(
                f"field {f['name']} {f['type']} {wire_type(cat, f)} {f.get('unit', '-')} "
                f"{f.get('scale', 1)} {lo} {hi} {ref_of(f)}")
    return "\n".join(lines) + "\n"


def catalogue_hash(cat):
    return crc32c(canonical_text(cat).encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# Names

def camel(name, upper=False):
    parts = name.split("_")
    head = parts[0] if not upper else parts[0][:1].upper() + parts[0][1:]
    return head + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def swift_field_type(cat, field):
    t = field["type"]
    if t == "enum":
        return field["enum"]
    if t == "flags":
        return field["flags"]
    if t == "bool":
        return "Bool"
    if t == "bytes":
        return f"FixedBytes<{field['length']}>"
    if t == "ascii":
        return f"FixedASCII<{field['length']}>"
    if "unit" in field:
        unit = field["unit"]
        if unit in INTEGER_UNITS:
            return INTEGER_UNITS[unit]
        return cat["units"][unit]["swift"]
    return SWIFT_INT[t]


# ---------------------------------------------------------------------------------------------
# Python reference encoder (for golden vectors)

def encode_field(cat, field, raw):
    t = wire_type(cat, field)
    if t in INT_TYPES:
        size, signed = INT_TYPES[t]
        return int(raw).to_bytes(size, "little", signed=signed)
    if t == "bool":
        return bytes([raw])
    if t in ("bytes", "ascii"):
        assert len(raw) == field["length"]
        return bytes(raw)
    raise ValueError(t)


def encode_frame(message_id, payload, sequence=0, flags=0, version=1):
    header = MAGIC + bytes([version, flags]) + sequence.to_bytes(2, "little") + \
        message_id.to_bytes(2, "little") + len(payload).to_bytes(2, "little")
    body = header + payload
    return body + crc32c(body).to_bytes(4, "little")


def sample_raw(cat, message, index, field, variant):
    """A deterministic valid raw value for a field; variant 0 is mid-range, 1 is the upper bound."""
    t = field["type"]
    if t == "enum":
        values = enums_by_name(cat)[field["enum"]]["values"]
        return values[-1]["value"] if variant else values[min(1, len(values) - 1)]["value"]
    if t == "flags":
        bits = flags_by_name(cat)[field["flags"]]["bits"]
        if variant:
            return sum(1 << b["bit"] for b in bits)
        return sum(1 << b["bit"] for b in bits[::2])
    if t == "bool":
        return 1 if variant else (index + message["id"]) % 2
    if t == "bytes":
        return [(i * 7 + message["id"] + variant) & 0xFF for i in range(field["length"])]
    if t == "ascii":
        text = b"PC-RF200-000042" if variant else b"PC-MN100-000123"
        return list(text.ljust(field["length"], b"\0"))
    lo, hi = raw_bounds(cat, field)
    if variant:
        return hi
    span = min(hi - lo, 1 << 40)
    return lo + (span * ((3 + index) % 10 + 1)) // 11


def describe_field(cat, field, raw):
    t = field["type"]
    entry = {}
    if t in ("bytes",):
        entry["hex"] = bytes(raw).hex()
    elif t == "ascii":
        entry["hex"] = bytes(raw).hex()
        entry["text"] = bytes(raw).rstrip(b"\0").decode("ascii")
    else:
        entry["raw"] = raw
    if t == "enum":
        entry["name"] = next(v["name"] for v in enums_by_name(cat)[field["enum"]]["values"] if v["value"] == raw)
    if t == "flags":
        entry["names"] = [b["name"] for b in flags_by_name(cat)[field["flags"]]["bits"] if raw & (1 << b["bit"])]
    if "unit" in field and t not in ("bytes", "ascii"):
        entry["unit"] = field["unit"]
        entry["value"] = raw / field.get("scale", 1)
    return entry


def build_vectors(cat):
    valid, malformed = [], []
    seq = 0
    for m in sorted(cat["messages"], key=lambda m: m["id"]):
        for variant in (0, 1):
            if variant and not m["fields"]:
                continue
            raws = [sample_raw(cat, m, i, f, variant) for i, f in enumerate(m["fields"])]
            payload = b"".join(encode_field(cat, f, r) for f, r in zip(m["fields"], raws))
            flags = 1 if (m["direction"] == "host_to_pen" and m["ack"] != "none") else 0
            seq = (seq * 31 + 17 + m["id"]) & 0xFFFF
            frame = encode_frame(m["id"], payload, sequence=seq, flags=flags)
            valid.append({
                "name": f"{m['name']}_{'max' if variant else 'typical'}",
                "message": m["name"], "id": m["id"], "sequence": seq, "flags": flags,
                "hex": frame.hex(),
                "fields": {f["name"]: describe_field(cat, f, r) for f, r in zip(m["fields"], raws)},
            })

    messages = {m["name"]: m for m in cat["messages"]}
    status_payload = b"".join(
        encode_field(cat, f, sample_raw(cat, messages["get_status"], i, f, 0))
        for i, f in enumerate(messages["get_status"]["fields"]))
    good = encode_frame(2, status_payload, sequence=5, flags=1)

    def add(name, data, error, **extra):
        malformed.append({"name": name, "hex": data.hex(), "error": error, **extra})

    add("empty", b"", "truncated")
    add("header_only_partial", good[:7], "truncated")
    add("bad_magic", b"XC" + good[2:], "bad_magic")
    add("crc_mismatch", good[:-1] + bytes([good[-1] ^ 0x5A]), "crc_mismatch")
    add("truncated_before_crc", good[:-2], "truncated")
    add("unsupported_version", encode_frame(2, b"", sequence=5, flags=1, version=2), "unsupported_version")
    add("reserved_flags_set", encode_frame(2, b"", sequence=5, flags=0x81), "reserved_flags")
    add("unknown_message_id", encode_frame(0x3F, b"", sequence=5, flags=1), "unknown_message")
    add("payload_longer_than_maximum",
        MAGIC + bytes([1, 1]) + (5).to_bytes(2, "little") + (2).to_bytes(2, "little") +
        (MAX_PAYLOAD + 1).to_bytes(2, "little") + bytes(MAX_PAYLOAD + 1 + 4), "bad_length")
    add("payload_size_wrong_for_message", encode_frame(2, b"\x00", sequence=5, flags=1), "bad_length")
    add("trailing_bytes_after_frame", good + b"\x00", "bad_length")

    sp = messages["set_parameters"]
    raws = [sample_raw(cat, sp, i, f, 0) for i, f in enumerate(sp["fields"])]
    raws[0] = raw_bounds(cat, sp["fields"][0])[1] + 1
    payload = b"".join(encode_field(cat, f, r) for f, r in zip(sp["fields"], raws))
    add("depth_above_catalogue_maximum", encode_frame(sp["id"], payload, sequence=9, flags=1),
        "field_out_of_range", message="set_parameters", field="depth", raw=raws[0])

    af = messages["acknowledge_fault"]
    add("unknown_enum_value", encode_frame(af["id"], bytes([250]), sequence=9, flags=1),
        "field_out_of_range", message="acknowledge_fault", field="fault", raw=250)

    ci = messages["cartridge_info"]
    raws = [sample_raw(cat, ci, i, f, 0) for i, f in enumerate(ci["fields"])]
    raws[0] = 2
    payload = b"".join(encode_field(cat, f, r) for f, r in zip(ci["fields"], raws))
    add("bool_not_zero_or_one", encode_frame(ci["id"], payload, sequence=9), "field_out_of_range",
        message="cartridge_info", field="present", raw=2)

    st = messages["status"]
    raws = [sample_raw(cat, st, i, f, 0) for i, f in enumerate(st["fields"])]
    raws[2] = 0x8000
    payload = b"".join(encode_field(cat, f, r) for f, r in zip(st["fields"], raws))
    add("unknown_flag_bit", encode_frame(st["id"], payload, sequence=9), "field_out_of_range",
        message="status", field="flags", raw=0x8000)

    di = messages["device_info"]
    raws = [sample_raw(cat, di, i, f, 0) for i, f in enumerate(di["fields"])]
    raws[1] = list(b"PC\x01MN100".ljust(16, b"\0"))
    payload = b"".join(encode_field(cat, f, r) for f, r in zip(di["fields"], raws))
    add("serial_not_printable_ascii", encode_frame(di["id"], payload, sequence=9), "field_out_of_range",
        message="device_info", field="serial", raw=2)

    return {
        "title": "PenControl golden frames",
        "generated_by": "scripts/wirespec.py generate (do not edit by hand)",
        "catalogue_hash": f"0x{catalogue_hash(cat):08X}",
        "notes": [
            "hex is the whole frame (header, payload, CRC-32C). Field raw values are the integers on the wire; value = raw / scale in the field's unit.",
            "Malformed frames name the error a decoder must report (framing.md, 'Decoding order').",
        ],
        "valid": valid,
        "malformed": malformed,
    }


# ---------------------------------------------------------------------------------------------
# Swift generation

def swift_header():
    return ("// Generated by scripts/wirespec.py from Firmware-Specs/messages.json. Do not edit:\n"
            "// change the catalogue and run `make generate`; `make test` fails when this file is stale.\n"
            "// swift-format-ignore-file\n\n")


def gen_enums(cat, out):
    for e in cat["enums"]:
        raw = SWIFT_INT[e["type"]]
        out.append(f"/// {e['doc']}")
        out.append(f"public enum {e['name']}: {raw}, Sendable, Hashable {{")
        for v in e["values"]:
            out.append(f"  case {camel(v['name'])} = {v['value']}")
        out.append("")
        out.append("  /// The catalogue's name for this value.")
        out.append("  public var catalogueName: StaticString {")
        out.append("    switch self {")
        for v in e["values"]:
            out.append(f"    case .{camel(v['name'])}: \"{v['name']}\"")
        out.append("    }")
        out.append("  }")
        out.append("}")
        out.append("")
    for fl in cat["flags"]:
        raw = SWIFT_INT[fl["type"]]
        known = sum(1 << b["bit"] for b in fl["bits"])
        out.append(f"/// {fl['doc']}")
        out.append(f"public struct {fl['name']}: FlagSet {{")
        out.append(f"  public var rawValue: {raw}")
        out.append(f"  public init(rawValue: {raw}) {{ self.rawValue = rawValue }}")
        for b in fl["bits"]:
            out.append(f"  public static let {camel(b['name'])} = {fl['name']}(rawValue: 1 &<< {b['bit']})")
        out.append(f"  /// Every bit the catalogue defines; a decoder refuses any other.")
        out.append(f"  public static let knownBits: {raw} = 0x{known:X}")
        out.append("}")
        out.append("")


def gen_field_encode(cat, m, idx, f):
    name = camel(f["name"])
    t = f["type"]
    wt = wire_type(cat, f)
    ref = f"FieldRef(message: {m['id']}, index: {idx})"
    if t == "enum":
        return f"    w.{wt}({name}.rawValue)"
    if t == "flags":
        return f"    w.{wt}({name}.rawValue)"
    if t == "bool":
        return f"    w.u8({name} ? 1 : 0)"
    if t in ("bytes", "ascii"):
        return f"    w.bytes({name})"
    lo, hi = raw_bounds(cat, f)
    if "unit" in f and f["unit"] not in INTEGER_UNITS:
        return (f"    w.{wt}({SWIFT_INT[wt]}(truncatingIfNeeded: try Wire.fixedPoint({name}.value, "
                f"scale: {f.get('scale', 1)}, min: {lo}, max: {hi}, field: {ref})))")
    value = f"{name}.rawValue" if "unit" in f else name
    full = type_range(wt)
    if (lo, hi) == full:
        return f"    w.{wt}({value})"
    return f"    w.{wt}(try Wire.ranged({value}, min: {lo}, max: {hi}, field: {ref}))"


def gen_field_decode(cat, m, idx, f):
    name = camel(f["name"])
    t = f["type"]
    wt = wire_type(cat, f)
    ref = f"FieldRef(message: {m['id']}, index: {idx})"
    if t == "enum":
        return f"    let {name} = try Wire.enumValue({f['enum']}.self, r.{wt}(), field: {ref})"
    if t == "flags":
        return (f"    let {name} = {f['flags']}(rawValue: try Wire.flagBits(r.{wt}(), "
                f"known: {f['flags']}.knownBits, field: {ref}))")
    if t == "bool":
        return f"    let {name} = try Wire.bool(r.u8(), field: {ref})"
    if t == "bytes":
        return f"    let {name}: FixedBytes<{f['length']}> = r.bytes()"
    if t == "ascii":
        return f"    let {name}: FixedASCII<{f['length']}> = try r.ascii(field: {ref})"
    lo, hi = raw_bounds(cat, f)
    full = type_range(wt)
    raw = f"r.{wt}()" if (lo, hi) == full else f"try Wire.ranged(r.{wt}(), min: {lo}, max: {hi}, field: {ref})"
    if "unit" in f:
        unit = f["unit"]
        if unit in INTEGER_UNITS:
            return f"    let {name} = {INTEGER_UNITS[unit]}(rawValue: {raw})"
        swift = cat["units"][unit]["swift"]
        return f"    let {name} = {swift}(Wire.double({raw}) / {f.get('scale', 1)})"
    return f"    let {name} = {raw}"


def gen_messages(cat, out):
    out.append("/// Whether a message travels from the host to the pen or from the pen to the host.")
    out.append("public enum MessageDirection: UInt8, Sendable, Hashable {")
    out.append("  case hostToPen = 0")
    out.append("  case penToHost = 1")
    out.append("}")
    out.append("")
    out.append("/// How a message is answered (framing.md, 'Acknowledgement').")
    out.append("public enum AckPolicy: UInt8, Sendable, Hashable {")
    out.append("  /// Never answered.")
    out.append("  case none = 0")
    out.append("  /// Answered by an ack or a nack frame.")
    out.append("  case ack = 1")
    out.append("  /// Answered by a reply message (or a nack).")
    out.append("  case reply = 2")
    out.append("}")
    out.append("")
    for m in cat["messages"]:
        sname = camel(m["name"], upper=True)
        out.append(f"/// `{m['name']}` (id {m['id']}, {m['direction'].replace('_', ' ')}): {m['doc']}")
        out.append(f"public struct {sname}: WireMessage, Sendable, Equatable {{")
        out.append(f"  public static let id: UInt16 = {m['id']}")
        out.append(f"  public static let name: StaticString = \"{m['name']}\"")
        out.append(f"  public static let direction: MessageDirection = .{camel(m['direction'])}")
        out.append(f"  public static let ackPolicy: AckPolicy = .{m['ack']}")
        out.append(f"  public static let payloadSize = {payload_size(cat, m)}")
        for f in m["fields"]:
            out.append(f"  public var {camel(f['name'])}: {swift_field_type(cat, f)}")
        out.append("")
        if m["fields"]:
            params = ", ".join(f"{camel(f['name'])}: {swift_field_type(cat, f)}" for f in m["fields"])
            out.append(f"  public init({params}) {{")
            for f in m["fields"]:
                out.append(f"    self.{camel(f['name'])} = {camel(f['name'])}")
            out.append("  }")
        else:
            out.append("  public init() {}")
        out.append("")
        out.append("  @inlinable")
        out.append("  public func encode(into w: inout PayloadWriter) throws(WireError) {")
        for idx, f in enumerate(m["fields"]):
            out.append(gen_field_encode(cat, m, idx, f))
        out.append("  }")
        out.append("")
        out.append("  @inlinable")
        out.append("  public static func decode(from r: inout PayloadReader) throws(WireError) -> Self {")
        for idx, f in enumerate(m["fields"]):
            out.append(gen_field_decode(cat, m, idx, f))
        args = ", ".join(f"{camel(f['name'])}: {camel(f['name'])}" for f in m["fields"])
        out.append(f"    return Self({args})")
        out.append("  }")
        out.append("}")
        out.append("")

    msgs = sorted(cat["messages"], key=lambda m: m["id"])
    out.append("/// Every message of the catalogue, as one value.")
    out.append("public enum Message: Sendable, Equatable {")
    for m in msgs:
        out.append(f"  case {camel(m['name'])}({camel(m['name'], upper=True)})")
    out.append("")
    out.append("  /// The message id on the wire.")
    out.append("  public var id: UInt16 {")
    out.append("    switch self {")
    for m in msgs:
        out.append(f"    case .{camel(m['name'])}: {m['id']}")
    out.append("    }")
    out.append("  }")
    out.append("")
    out.append("  @inlinable")
    out.append("  public func encodePayload(into w: inout PayloadWriter) throws(WireError) {")
    out.append("    switch self {")
    for m in msgs:
        out.append(f"    case .{camel(m['name'])}(let m): try m.encode(into: &w)")
    out.append("    }")
    out.append("  }")
    out.append("")
    out.append("  /// Decodes a payload of a known size; the frame decoder has checked the id and length.")
    out.append("  @inlinable")
    out.append("  public static func decodePayload(id: UInt16, from r: inout PayloadReader) throws(WireError) -> Message {")
    out.append("    switch id {")
    for m in msgs:
        out.append(f"    case {m['id']}: .{camel(m['name'])}(try {camel(m['name'], upper=True)}.decode(from: &r))")
    out.append("    default: throw .unknownMessage(id: id)")
    out.append("    }")
    out.append("  }")
    out.append("}")
    out.append("")

    out.append("/// Facts about each message id, without decoding anything.")
    out.append("public enum MessageCatalogue {")
    out.append(f"  /// The catalogue hash of Firmware-Specs/messages.json (framing.md, 'Catalogue hash').")
    out.append(f"  public static let hash: UInt32 = 0x{catalogue_hash(cat):08X}")
    out.append(f"  public static let protocolVersion: UInt8 = {cat['protocol_version']}")
    out.append("")
    out.append("  /// The fixed payload size of a message, or nil for an id the catalogue does not define.")
    out.append("  @inlinable")
    out.append("  public static func payloadSize(id: UInt16) -> Int? {")
    out.append("    switch id {")
    for m in msgs:
        out.append(f"    case {m['id']}: {payload_size(cat, m)}")
    out.append("    default: nil")
    out.append("    }")
    out.append("  }")
    out.append("")
    out.append("  /// The catalogue name of a message id.")
    out.append("  public static func name(id: UInt16) -> StaticString? {")
    out.append("    switch id {")
    for m in msgs:
        out.append(f"    case {m['id']}: \"{m['name']}\"")
    out.append("    default: nil")
    out.append("    }")
    out.append("  }")
    out.append("")
    out.append("  /// The direction of a message id.")
    out.append("  public static func direction(id: UInt16) -> MessageDirection? {")
    out.append("    switch id {")
    for m in msgs:
        out.append(f"    case {m['id']}: .{camel(m['direction'])}")
    out.append("    default: nil")
    out.append("    }")
    out.append("  }")
    out.append("")
    out.append("  /// The catalogue name of a field, for error messages.")
    out.append("  public static func fieldName(_ field: FieldRef) -> StaticString? {")
    out.append("    switch (field.message, field.index) {")
    for m in msgs:
        for idx, f in enumerate(m["fields"]):
            out.append(f"    case ({m['id']}, {idx}): \"{f['name']}\"")
    out.append("    default: nil")
    out.append("    }")
    out.append("  }")
    out.append("")
    out.append("  /// Feeds the catalogue's own description into a hasher, line by line, as framing.md defines.")
    out.append("  public static func describe(into h: inout CatalogueHasher) {")
    out.append(f"    h.header(protocol: {cat['protocol_version']})")
    for e in cat["enums"]:
        out.append(f"    h.enumeration(\"{e['name']}\", type: \"{e['type']}\")")
        for v in e["values"]:
            out.append(f"    h.value(\"{v['name']}\", {v['value']})")
    for fl in cat["flags"]:
        out.append(f"    h.flags(\"{fl['name']}\", type: \"{fl['type']}\")")
        for b in fl["bits"]:
            out.append(f"    h.bit(\"{b['name']}\", {b['bit']})")
    for m in msgs:
        out.append(f"    h.message({m['id']}, \"{m['name']}\", direction: \"{m['direction']}\", ack: \"{m['ack']}\")")
        for f in m["fields"]:
            lo, hi = declared_bounds(f)
            bounds_swift = f"min: {'nil' if lo == '-' else lo}, max: {'nil' if hi == '-' else hi}"
            out.append(
                f"    h.field(\"{f['name']}\", type: \"{f['type']}\", wire: \"{wire_type(cat, f)}\", "
                f"unit: \"{f.get('unit', '-')}\", scale: {f.get('scale', 1)}, {bounds_swift}, "
                f"ref: \"{ref_of(f)}\")")
    out.append("  }")
    out.append("}")
    out.append("")


def gen_host_fields(cat, out):
    """Host-only field access by catalogue name, used by the golden-vector tests and penctl."""
    out.append("#if !hasFeature(Embedded)")
    out.append("extension Message {")
    out.append("  /// Every field by its catalogue name, as the raw value on the wire.")
    out.append("  public var rawFields: [String: RawField] {")
    out.append("    switch self {")
    for m in sorted(cat["messages"], key=lambda m: m["id"]):
        out.append(f"    case .{camel(m['name'])}(let m):")
        if not m["fields"]:
            out.append("      _ = m")
            out.append("      return [:]")
            continue
        out.append("      return [")
        for f in m["fields"]:
            n = camel(f["name"])
            t = f["type"]
            wt = wire_type(cat, f)
            if t in ("bytes", "ascii"):
                expr = f".bytes(m.{n}.bytes)"
            elif t == "bool":
                expr = f".integer(m.{n} ? 1 : 0)"
            elif t in ("enum", "flags"):
                expr = f".integer(Wire.int64(m.{n}.rawValue))"
            elif "unit" in f and f["unit"] in INTEGER_UNITS:
                expr = f".integer(Int64(bitPattern: UInt64(m.{n}.rawValue)))"
            elif "unit" in f:
                expr = f".integer(Wire.rawApproximation(m.{n}.value, scale: {f.get('scale', 1)}))"
            else:
                expr = f".integer(Wire.int64(m.{n}))"
            out.append(f"        \"{f['name']}\": {expr},")
        out.append("      ]")
    out.append("    }")
    out.append("  }")
    out.append("")
    out.append("  /// Builds a message from its catalogue name and raw field values, checking every range.")
    out.append("  public init(name: String, rawFields: [String: RawField]) throws(WireError) {")
    out.append("    var w = RawFieldWriter(fields: rawFields)")
    out.append("    switch name {")
    for m in sorted(cat["messages"], key=lambda m: m["id"]):
        out.append(f"    case \"{m['name']}\":")
        for idx, f in enumerate(m["fields"]):
            wt = wire_type(cat, f)
            ref = f"FieldRef(message: {m['id']}, index: {idx})"
            if f["type"] in ("bytes", "ascii"):
                out.append(f"      try w.bytes(\"{f['name']}\", count: {f['length']}, field: {ref})")
            else:
                out.append(f"      try w.integer(\"{f['name']}\", as: {SWIFT_INT.get(wt, 'UInt8')}.self, field: {ref})")
        out.append(f"      self = try w.decode(id: {m['id']})")
    out.append("    default:")
    out.append("      throw .unknownMessage(id: MessageCatalogue.id(named: name) ?? 0)")
    out.append("    }")
    out.append("  }")
    out.append("}")
    out.append("#endif")
    out.append("")


def gen_swift(cat):
    out = [swift_header().rstrip("\n"), ""]
    gen_enums(cat, out)
    gen_messages(cat, out)
    gen_host_fields(cat, out)
    t0 = crc32c_table()
    tables = [t0]
    for _ in range(7):
        prev = tables[-1]
        tables.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])
    out.append("/// CRC-32C lookup tables for slicing-by-8 (reflected polynomial 0x82F63B78): table k, at")
    out.append("/// offset 256 k, advances the CRC over a byte followed by k zero bytes. Table 0 is the")
    out.append("/// classic byte-at-a-time table.")
    out.append("@usableFromInline")
    out.append("let crc32cTables: InlineArray<2048, UInt32> = [")
    for table in tables:
        for i in range(0, 256, 8):
            out.append("  " + ", ".join(f"0x{v:08X}" for v in table[i:i + 8]) + ",")
    out.append("]")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# PenSafety's compiled-in limits: treatment areas, pen models, Fitzpatrick factors

def load_json(name):
    with open(os.path.join(SPECS, name), encoding="utf-8") as f:
        return json.load(f)


def swift_double(v):
    text = repr(float(v))
    return text


def gen_tables():
    areas = load_json("treatment-areas.json")
    models = load_json("pen-models.json")
    out = [swift_header().replace("messages.json", "treatment-areas.json and pen-models.json").rstrip("\n"), ""]
    out.append("public import PenWire")
    out.append("")
    out.append("extension TreatmentAreaLimits {")
    out.append("  /// The hard limits of an area (Firmware-Specs/treatment-areas.json); nil for `.none`.")
    out.append("  @inlinable")
    out.append("  public static func of(_ area: TreatmentAreaID) -> TreatmentAreaLimits? {")
    out.append("    switch area {")
    out.append("    case .none: return nil")
    for a in areas["areas"]:
        out.append(f"    case .{camel(a['id'])}:")
        out.append("      return TreatmentAreaLimits(")
        out.append(f"        area: .{camel(a['id'])}, maxDepth: Millimetres({swift_double(a['max_depth_mm'])}),")
        out.append(f"        maxRFDepth: Millimetres({swift_double(a['max_rf_depth_mm'])}), maxSpeed: Hertz({swift_double(a['max_speed_hz'])}),")
        out.append(f"        rfAllowed: {'true' if a['rf_allowed'] else 'false'}, maxRFEnergyPerPin: Millijoules({swift_double(a['max_rf_energy_per_pin_mj'])}),")
        out.append(f"        rfDoseCap: Millijoules({swift_double(a['rf_dose_cap_j'] * 1000)}))")
    out.append("    }")
    out.append("  }")
    out.append("}")
    out.append("")
    out.append("extension PenCapability {")
    out.append("  /// The capability of a pen model (Firmware-Specs/pen-models.json).")
    out.append("  @inlinable")
    out.append("  public static func of(_ model: PenModelID) -> PenCapability {")
    out.append("    switch model {")
    for m in models["models"]:
        rf = m["rf"]
        out.append(f"    case .{camel(m['id'])}:")
        out.append("      return PenCapability(")
        out.append(f"        model: .{camel(m['id'])}, minDepth: Millimetres({swift_double(m['min_depth_mm'])}),")
        out.append(f"        maxDepth: Millimetres({swift_double(m['max_depth_mm'])}), depthStep: Millimetres({swift_double(m['depth_step_mm'])}),")
        out.append(f"        minSpeed: Hertz({swift_double(m['min_speed_hz'])}), maxSpeed: Hertz({swift_double(m['max_speed_hz'])}),")
        out.append(f"        pinCount: {m['pin_count']}, hasRF: {'true' if rf else 'false'},")
        if rf:
            out.append(f"        maxRFPower: Watts({swift_double(rf['max_power_w'])}), maxRFEnergyPerPin: Millijoules({swift_double(rf['max_energy_per_pin_mj'])}),")
            out.append(f"        minPulse: Milliseconds({swift_double(rf['min_pulse_ms'])}), maxPulse: Milliseconds({swift_double(rf['max_pulse_ms'])}),")
            out.append(f"        minImpedance: Ohms({swift_double(rf['impedance_window_ohm'][0])}), maxImpedance: Ohms({swift_double(rf['impedance_window_ohm'][1])}),")
            out.append(f"        tissueTemperatureCutoff: Celsius({swift_double(rf['tissue_temperature_cutoff_c'])}),")
            out.append(f"        maxTissueTemperatureCutoff: Celsius({swift_double(rf['max_tissue_temperature_cutoff_c'])}),")
        else:
            out.append("        maxRFPower: .zero, maxRFEnergyPerPin: .zero, minPulse: .zero, maxPulse: .zero,")
            out.append("        minImpedance: .zero, maxImpedance: .zero, tissueTemperatureCutoff: .zero,")
            out.append("        maxTissueTemperatureCutoff: .zero,")
        out.append(f"        handpieceTemperatureCutoff: Celsius({swift_double(m['max_handpiece_temperature_c'])}),")
        out.append(f"        cartridgeMaxUses: {m['cartridge_max_uses']})")
    out.append("    }")
    out.append("  }")
    out.append("}")
    out.append("")
    scale = areas["fitzpatrick_rf_scale"]
    out.append("extension FitzpatrickType {")
    out.append("  /// The factor applied to the RF energy-per-pin limit (treatment-areas.json, SR-010).")
    out.append("  @inlinable")
    out.append("  public var rfEnergyFactor: Double {")
    out.append("    switch self {")
    names = {1: "typeI", 2: "typeII", 3: "typeIII", 4: "typeIV", 5: "typeV", 6: "typeVI"}
    for k in range(1, 7):
        out.append(f"    case .{names[k]}: {swift_double(scale['values'][str(k)])}")
    out.append("    }")
    out.append("  }")
    out.append("")
    out.append("  /// The most RF energy per pin any pen may give skin of type V or VI.")
    out.append(f"  public static let maxEnergyPerPinAboveTypeIV = Millijoules({swift_double(scale['max_energy_per_pin_above_type_4_mj'])})")
    out.append("}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Checks

def check_catalogue(cat):
    errors = []
    ids, names = set(), set()
    enum_names = enums_by_name(cat)
    flag_names = flags_by_name(cat)
    for m in cat["messages"]:
        if m["id"] in ids:
            errors.append(f"message id {m['id']} is used twice")
        if m["name"] in names:
            errors.append(f"message name {m['name']} is used twice")
        ids.add(m["id"])
        names.add(m["name"])
        if m["direction"] not in ("host_to_pen", "pen_to_host"):
            errors.append(f"{m['name']}: direction {m['direction']!r} is neither host_to_pen nor pen_to_host")
        if m["ack"] not in ("none", "ack", "reply"):
            errors.append(f"{m['name']}: ack {m['ack']!r} is not none, ack or reply")
        if not 1 <= m["id"] <= 0xFFFF:
            errors.append(f"{m['name']}: id {m['id']} outside 1...65535")
        if payload_size(cat, m) > MAX_PAYLOAD:
            errors.append(f"{m['name']}: payload {payload_size(cat, m)} bytes exceeds the maximum {MAX_PAYLOAD}")
        seen = set()
        for f in m["fields"]:
            if f["name"] in seen:
                errors.append(f"{m['name']}.{f['name']} is defined twice")
            seen.add(f["name"])
            t = f["type"]
            if t == "enum" and f.get("enum") not in enum_names:
                errors.append(f"{m['name']}.{f['name']}: unknown enum {f.get('enum')}")
            elif t == "flags" and f.get("flags") not in flag_names:
                errors.append(f"{m['name']}.{f['name']}: unknown flags {f.get('flags')}")
            elif t not in INT_TYPES and t not in ("enum", "flags", "bool", "bytes", "ascii"):
                errors.append(f"{m['name']}.{f['name']}: unknown type {t}")
            if "scale" in f and (not isinstance(f["scale"], int) or f["scale"] < 1):
                errors.append(f"{m['name']}.{f['name']}: scale {f['scale']} is not a positive integer")
            if "unit" in f and f["unit"] not in cat["units"]:
                errors.append(f"{m['name']}.{f['name']}: unknown unit {f['unit']}")
            bounds = raw_bounds(cat, f) if t in INT_TYPES or t == "bool" else None
            if bounds and bounds[0] > bounds[1]:
                errors.append(f"{m['name']}.{f['name']}: min above max")
            if t in INT_TYPES and ("min" in f or "max" in f):
                lo, hi = type_range(t)
                scale = f.get("scale", 1)
                for key in ("min", "max"):
                    if key in f and not lo <= round(f[key] * scale) <= hi:
                        errors.append(f"{m['name']}.{f['name']}: {key} {f[key]} does not fit {t}")
    for e in cat["enums"]:
        values = [v["value"] for v in e["values"]]
        if len(values) != len(set(values)):
            errors.append(f"enum {e['name']} repeats a value")
    return errors


def write_or_compare(path, text, write):
    if write:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return None
    try:
        with open(path, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        return f"{os.path.relpath(path, ROOT)} is missing: run `make generate`"
    if current != text:
        return f"{os.path.relpath(path, ROOT)} is stale: run `make generate` and commit the result"
    return None


def main(argv):
    command = argv[1] if len(argv) > 1 else "check"
    cat = load()
    if command == "hash":
        print(f"0x{catalogue_hash(cat):08X}")
        return 0
    if command == "canonical":
        sys.stdout.write(canonical_text(cat))
        return 0
    errors = check_catalogue(cat)
    if errors:
        for e in errors:
            print(f"messages.json: {e}", file=sys.stderr)
        return 1
    write = command == "generate"
    if command not in ("generate", "check"):
        print(f"usage: {argv[0]} hash | canonical | generate | check", file=sys.stderr)
        return 2
    recorded = cat.get("catalogue_hash")
    computed = f"0x{catalogue_hash(cat):08X}"
    problems = []
    if recorded != computed:
        if write:
            with open(CATALOGUE, encoding="utf-8") as f:
                text = f.read()
            text = text.replace(f'"catalogue_hash": "{recorded}"', f'"catalogue_hash": "{computed}"', 1)
            with open(CATALOGUE, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            problems.append(f"messages.json records catalogue_hash {recorded} but the catalogue hashes to {computed}: "
                            "run `make generate`")
    for path, text in ((SWIFT_OUT, gen_swift(cat)), (TABLES_OUT, gen_tables()),
                       (VECTORS_OUT, json.dumps(build_vectors(cat), indent=1) + "\n")):
        problem = write_or_compare(path, text, write)
        if problem:
            problems.append(problem)
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"Firmware-Specs catalogue: {len(cat['messages'])} messages, hash {computed}, "
              f"generated code and vectors {'written' if write else 'up to date'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
