# SPDX-License-Identifier: Apache-2.0
"""A small, independent reader of tensorflow.profiler.XSpace files (proto/xplane.proto), written
against the protobuf wire format so that the interop test computes "what the file says" without
tfprof's code or xprof's. Field numbers: /work/shared/reference/xspace.md. At the end, the writer
side (encode_varint, encode_field) for tests that hand-craft messages."""


def _varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        if c < 0x80:
            return v, i
        s += 7


def _fields(b):
    """Yields (field number, wire type, value) of one message; value is an int or bytes."""
    i, n = 0, len(b)
    while i < n:
        key, i = _varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            ln, i = _varint(b, i)
            v, i = b[i:i + ln], i + ln
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt} at byte {i}")
        yield f, wt, v


def _s64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


class Stat:
    __slots__ = ("metadata_id", "kind", "value")

    def __init__(self, b):
        import struct
        self.metadata_id, self.kind, self.value = 0, None, None
        for f, wt, v in _fields(b):
            if f == 1:
                self.metadata_id = _s64(v)
            elif f == 2:
                self.kind, self.value = "double", struct.unpack("<d", v)[0]
            elif f == 3:
                self.kind, self.value = "uint64", v
            elif f == 4:
                self.kind, self.value = "int64", _s64(v)
            elif f == 5:
                self.kind, self.value = "str", v.decode("utf-8")
            elif f == 6:
                self.kind, self.value = "bytes", bytes(v)
            elif f == 7:
                self.kind, self.value = "ref", v


class Event:
    __slots__ = ("metadata_id", "offset_ps", "num_occurrences", "duration_ps", "stats")

    def __init__(self, b):
        self.metadata_id, self.offset_ps, self.num_occurrences, self.duration_ps = 0, None, None, 0
        self.stats = []
        for f, wt, v in _fields(b):
            if f == 1:
                self.metadata_id = _s64(v)
            elif f == 2:
                self.offset_ps = _s64(v)
            elif f == 5:
                self.num_occurrences = _s64(v)
            elif f == 3:
                self.duration_ps = _s64(v)
            elif f == 4:
                self.stats.append(Stat(v))


class Line:
    __slots__ = ("id", "display_id", "name", "display_name", "timestamp_ns", "duration_ps", "events")

    def __init__(self, b):
        self.id = self.display_id = self.timestamp_ns = self.duration_ps = 0
        self.name = self.display_name = ""
        self.events = []
        for f, wt, v in _fields(b):
            if f == 1:
                self.id = _s64(v)
            elif f == 10:
                self.display_id = _s64(v)
            elif f == 2:
                self.name = v.decode("utf-8")
            elif f == 11:
                self.display_name = v.decode("utf-8")
            elif f == 3:
                self.timestamp_ns = _s64(v)
            elif f == 9:
                self.duration_ps = _s64(v)
            elif f == 4:
                self.events.append(Event(v))


def _map_entry(b, value_cls):
    key, val = 0, value_cls(b"")
    for f, wt, v in _fields(b):
        if f == 1:
            key = _s64(v)
        elif f == 2:
            val = value_cls(v)
    return key, val


class EventMetadata:
    __slots__ = ("id", "name", "display_name", "stats")

    def __init__(self, b):
        self.id, self.name, self.display_name, self.stats = 0, "", "", []
        for f, wt, v in _fields(b):
            if f == 1:
                self.id = _s64(v)
            elif f == 2:
                self.name = v.decode("utf-8")
            elif f == 4:
                self.display_name = v.decode("utf-8")
            elif f == 5:
                self.stats.append(Stat(v))


class StatMetadata:
    __slots__ = ("id", "name", "description")

    def __init__(self, b):
        self.id, self.name, self.description = 0, "", ""
        for f, wt, v in _fields(b):
            if f == 1:
                self.id = _s64(v)
            elif f == 2:
                self.name = v.decode("utf-8")
            elif f == 3:
                self.description = v.decode("utf-8")


class Plane:
    def __init__(self, b):
        self.id, self.name, self.lines, self.stats = 0, "", [], []
        self.event_metadata, self.stat_metadata = {}, {}
        for f, wt, v in _fields(b):
            if f == 1:
                self.id = _s64(v)
            elif f == 2:
                self.name = v.decode("utf-8")
            elif f == 3:
                self.lines.append(Line(v))
            elif f == 4:
                k, m = _map_entry(v, EventMetadata)
                self.event_metadata[k] = m
            elif f == 5:
                k, m = _map_entry(v, StatMetadata)
                self.stat_metadata[k] = m
            elif f == 6:
                self.stats.append(Stat(v))

    def stat_value(self, s):
        """A stat's value with ref_value resolved to the string it names."""
        if s.kind == "ref":
            return self.stat_metadata[s.value].name
        return s.value

    def stats_dict(self, stats):
        return {self.stat_metadata[s.metadata_id].name: self.stat_value(s) for s in stats}

    def event_name(self, e):
        m = self.event_metadata[e.metadata_id]
        return m.display_name or m.name


class Space:
    def __init__(self, b):
        self.planes, self.errors, self.warnings, self.hostnames = [], [], [], []
        for f, wt, v in _fields(b):
            if f == 1:
                self.planes.append(Plane(v))
            elif f == 2:
                self.errors.append(v.decode("utf-8"))
            elif f == 3:
                self.warnings.append(v.decode("utf-8"))
            elif f == 4:
                self.hostnames.append(v.decode("utf-8"))

    def plane(self, name):
        return next((p for p in self.planes if p.name == name), None)


def read(path):
    with open(path, "rb") as f:
        return Space(f.read())


# ---- The writer side: for tests that hand-craft messages (a profile with exactly the steps a
# case needs, a request a well-behaved client would never send) -----------------------------------

def encode_varint(n):
    """A varint; negative numbers as their two's complement (int64 fields)."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_field(num, value):
    """Field num: a varint for an int, length-delimited for bytes or str (str as UTF-8, with
    surrogate escapes kept as the bytes they stand for)."""
    if isinstance(value, int):
        return encode_varint(num << 3) + encode_varint(value)
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    return encode_varint(num << 3 | 2) + encode_varint(len(value)) + value
