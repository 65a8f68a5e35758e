"""rosbag2 bags without rosbag2: write, read and repair MCAP bags with `rosbags` (pure Python, no rclpy).

- `BagWriter` writes a standard rosbag2 bag folder (metadata.yaml version 9 plus one MCAP file, or sqlite3)
  from already serialized CDR messages, e.g. the raw bytes of a `raw=True` subscription.
- `read_bag` yields (topic, timestamp_ns, message) from a bag, deserialized with rosbags.
- `reindex` repairs a bag whose writer was killed: it keeps every complete chunk of the MCAP file and
  writes the summary, footer and metadata.yaml that the killed writer never wrote.

Message types: rosbags knows the standard ROS 2 interfaces (Kilted store); other types (mimic_msgs and
any other interface package) are registered from their `.msg` (or `.idl`) text, found the way ament
finds them: `<prefix>/share/<package>/msg/<Name>.msg` for each prefix in AMENT_PREFIX_PATH, this
interpreter's prefix (where the ROS 2 wheels install), and the prefix holding the importable package.

Bounded memory and crash safety (MCAP): rosbags' MCAP writer collects messages in an in-memory chunk
and writes it when it grows past its size limit (1 MiB in rosbags). `BagWriter` closes chunks at
`chunk_size` bytes instead (at most rosbags' 1 MiB) and flushes the file after every chunk, so the
process holds at most one chunk of messages, plus a chunk index entry (~100 bytes) per written chunk
until close. `flush()` closes a partly filled chunk early (the recorder calls it periodically), so a
SIGKILL loses at most the last unflushed chunk. Such a bag has no metadata.yaml and its MCAP file no
summary or footer; `reindex(path)` makes it a complete bag again.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import struct
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rosbags.interfaces import Connection, Qos
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapWriter
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.base import Nodetype

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "BagWriter",
    "MessageTypes",
    "find_interface_file",
    "read_bag",
    "reindex",
]

DEFAULT_CHUNK_SIZE = 1 << 20
# rosbags' McapWriter closes a chunk by itself once it exceeds 1 MiB; larger limits cannot be honoured.
MAX_CHUNK_SIZE = 1 << 20
CUSTOM_PACKAGES = ("mimic_msgs",)
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


# --------------------------------------------------------------------------------------------------
# Message types


def _ros2_typestore() -> Any:
    """A typestore with the standard interfaces of the ROS 2 release the wheels come from."""
    store = getattr(Stores, "ROS2_KILTED", None) or Stores.LATEST
    return get_typestore(store)


def normalize_msgtype(msgtype: str) -> str:
    """'pkg/Name' or 'pkg/msg/Name' -> 'pkg/msg/Name'."""
    parts = msgtype.strip("/").split("/")
    if len(parts) == 2:
        return f"{parts[0]}/msg/{parts[1]}"
    if len(parts) == 3 and all(parts):
        return "/".join(parts)
    raise ValueError(f"not a ROS 2 message type name: {msgtype!r} (expected pkg/msg/Name)")


def interface_prefixes(package: str | None = None) -> list[Path]:
    """Install prefixes to search for `share/<package>/`, in order, without duplicates."""
    candidates = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    candidates.append(Path(sys.prefix))
    if package:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            # <prefix>/lib/pythonX.Y/site-packages/<package>/__init__.py
            candidates.extend(Path(spec.origin).resolve().parents)
    seen: set[Path] = set()
    prefixes = []
    for prefix in candidates:
        if prefix not in seen:
            seen.add(prefix)
            prefixes.append(prefix)
    return prefixes


def find_interface_file(msgtype: str) -> Path | None:
    """The installed `.msg` (preferred) or `.idl` file defining `msgtype`, or None."""
    package, kind, name = normalize_msgtype(msgtype).split("/")
    for prefix in interface_prefixes(package):
        for suffix in (".msg", ".idl"):
            path = prefix / "share" / package / kind / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


def _referenced_types(desc: tuple) -> Iterator[str]:
    """Names of the message types a field description refers to."""
    nodetype, detail = desc
    if nodetype == Nodetype.NAME:
        yield detail
    elif nodetype in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        yield from _referenced_types(detail[0])


class MessageTypes:
    """A rosbags typestore plus lookup of interface definitions in installed packages."""

    def __init__(self, typestore: Any = None) -> None:
        self.store = typestore if typestore is not None else _ros2_typestore()

    def __contains__(self, msgtype: str) -> bool:
        return normalize_msgtype(msgtype) in self.store.fielddefs

    def register_package(self, package: str) -> list[str]:
        """Register every message of an installed interface package; the names registered."""
        for prefix in interface_prefixes(package):
            folder = prefix / "share" / package / "msg"
            files = sorted(folder.glob("*.msg")) if folder.is_dir() else []
            if files:
                typs: dict[str, Any] = {}
                for path in files:
                    typs.update(get_types_from_msg(path.read_text(), f"{package}/msg/{path.stem}"))
                self._register_with_dependencies(typs)
                return sorted(typs)
        return []

    def ensure(self, msgtype: str) -> str:
        """Make sure `msgtype` (and what it refers to) is registered; its normalized name.

        Raises LookupError when neither rosbags nor any installed package defines it.
        """
        msgtype = normalize_msgtype(msgtype)
        if msgtype not in self.store.fielddefs:
            self._register_with_dependencies(self._load(msgtype))
        return msgtype

    def register_msgdef(self, msgtype: str, text: str, encoding: str = "ros2msg") -> str:
        """Register a type from a message definition as rosbag2/MCAP store it (dependencies appended)."""
        msgtype = normalize_msgtype(msgtype)
        if encoding == "ros2msg":
            typs = get_types_from_msg(text, msgtype)
        elif encoding == "ros2idl":
            typs = {}
            sep = "=" * 80 + "\n"
            parts = text.split(sep)[1:] if text.startswith(sep + "IDL: ") else [text]
            for part in parts:
                idl = part.split("\n", 1)[1] if part.startswith("IDL: ") else part
                typs.update(get_types_from_idl(idl))
        else:
            raise ValueError(f"unknown message definition encoding {encoding!r} for {msgtype}")
        self._register_with_dependencies(typs)
        return msgtype

    def _load(self, msgtype: str) -> dict[str, Any]:
        path = find_interface_file(msgtype)
        if path is None:
            raise LookupError(
                f"message type {msgtype} is unknown to rosbags and no share/{msgtype}.msg was found under "
                f"{', '.join(str(p) for p in interface_prefixes(msgtype.split('/')[0]))} "
                "(install its interface package or add its prefix to AMENT_PREFIX_PATH)"
            )
        if path.suffix == ".msg":
            return dict(get_types_from_msg(path.read_text(), msgtype))
        return dict(get_types_from_idl(path.read_text()))

    def _register_with_dependencies(self, typs: dict[str, Any]) -> None:
        typs = dict(typs)
        todo = list(typs)
        while todo:
            _consts, fields = typs[todo.pop()]
            for _name, desc in fields:
                for ref in _referenced_types(desc):
                    if ref in typs or ref in self.store.fielddefs:
                        continue
                    for name, definition in self._load(ref).items():
                        if name not in typs:
                            typs[name] = definition
                            todo.append(name)
        self.store.register(typs)


def default_types() -> MessageTypes:
    """Standard ROS 2 types plus the project's own interface packages (when installed)."""
    types = MessageTypes()
    for package in CUSTOM_PACKAGES:
        types.register_package(package)
    return types


# --------------------------------------------------------------------------------------------------
# Writing


class _ChunkedMcapWriter(McapWriter):
    """rosbags' MCAP storage with a smaller chunk limit and a flush after every chunk."""

    chunk_size = DEFAULT_CHUNK_SIZE
    fsync = False

    def write(self, connection: Connection, timestamp: int, data: bytes | memoryview) -> None:
        super().write(connection, timestamp, data)
        if self.chunk.bio.tell() > self.chunk_size:
            self.close_chunk()

    def close_chunk(self) -> None:
        super().close_chunk()
        self.bio.flush()
        if self.fsync:
            os.fsync(self.bio.fileno())

    def flush(self) -> None:
        """Write the pending chunk now if it holds messages."""
        if self.chunk.msgs:
            self.close_chunk()


class _Writer(Writer):
    STORAGE_PLUGINS: ClassVar[Mapping[StoragePlugin, Any]] = {
        **Writer.STORAGE_PLUGINS,
        StoragePlugin.MCAP: _ChunkedMcapWriter,
    }


class BagWriter:
    """Write serialized (CDR) messages into a new rosbag2 bag folder.

    `path` must not exist yet. Messages are written as given (no re-serialization), with the time
    stamp the caller passes (ns). Use as a context manager or call `close()` (idempotent), which
    writes the MCAP summary and metadata.yaml.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        storage: str = "mcap",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        fsync: bool = False,
        types: MessageTypes | None = None,
    ) -> None:
        self.path = Path(path)
        if storage not in STORAGES:
            raise ValueError(f"unknown bag storage {storage!r}; choose one of {', '.join(STORAGES)}")
        if not 0 < int(chunk_size) <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be in 1..{MAX_CHUNK_SIZE} bytes (rosbags' MCAP limit), got {chunk_size}")
        if self.path.exists():
            raise FileExistsError(f"bag folder {self.path} already exists; choose a new output folder")
        self.storage = storage
        self.types = types if types is not None else default_types()
        self._writer = _Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=STORAGES[storage])
        self._writer.open()
        if isinstance(self._writer.storage, _ChunkedMcapWriter):
            self._writer.storage.chunk_size = int(chunk_size)
            self._writer.storage.fsync = fsync
        self._connections: dict[str, Connection] = {}
        self.counts: dict[str, int] = {}
        self.closed = False

    @property
    def file(self) -> Path:
        """The storage file inside the bag folder."""
        suffix = ".mcap" if self.storage == "mcap" else ".db3"
        return self.path / f"{self.path.name}{suffix}"

    @property
    def message_count(self) -> int:
        return sum(self.counts.values())

    def add_topic(self, name: str, msgtype: str, qos: Sequence[Qos] = ()) -> None:
        """Declare a topic and its type (and the QoS profiles its publishers offered, for playback).

        Adding the same topic again with the same type does nothing; another type is an error.
        """
        if name in self._connections:
            have = self._connections[name].msgtype
            if have != normalize_msgtype(msgtype):
                raise ValueError(f"topic {name} is already in the bag with type {have}, not {msgtype}")
            return
        self._connections[name] = self._add_connection(name, msgtype, qos)
        self.counts[name] = 0

    def _add_connection(self, name: str, msgtype: str, qos: Sequence[Qos] = ()) -> Connection:
        self._check_open()
        msgtype = self.types.ensure(msgtype)
        return self._writer.add_connection(name, msgtype, typestore=self.types.store, offered_qos_profiles=list(qos))

    def write(self, topic: str, timestamp_ns: int, data: bytes | memoryview) -> None:
        """Append one serialized message; `topic` must have been added."""
        try:
            connection = self._connections[topic]
        except KeyError:
            raise ValueError(f"topic {topic} was not added to the bag (add_topic first)") from None
        self._check_open()
        self._writer.write(connection, timestamp_ns, data)
        self.counts[topic] += 1

    def flush(self) -> None:
        """Put what was written so far on disk (MCAP: close the pending chunk; sqlite3: commit)."""
        if self.closed:
            return
        storage = self._writer.storage
        if isinstance(storage, _ChunkedMcapWriter):
            storage.flush()
        elif storage is not None and hasattr(storage, "conn"):
            storage.conn.commit()

    def close(self) -> None:
        """Finish the bag: MCAP summary and footer, metadata.yaml. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self._writer.close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"bag {self.path} is closed")

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------
# Reading


def read_bag(
    path: str | os.PathLike[str], topics: Iterable[str] | None = None, types: MessageTypes | None = None
) -> Iterator[tuple[str, int, Any]]:
    """Yield (topic, timestamp_ns, deserialized message) for a bag folder, in time order.

    A generator (one message at a time, any bag size). A bag without metadata.yaml (its recorder was
    killed) must be repaired with `reindex(path)` first.
    """
    from rosbags.highlevel import AnyReader

    path = Path(path)
    if not (path / "metadata.yaml").is_file():
        raise FileNotFoundError(
            f"{path} has no metadata.yaml (not a bag folder, or its recording was interrupted: "
            f"run mimic_sim.tools.bag.reindex({str(path)!r}) to repair it)"
        )
    types = types if types is not None else default_types()
    wanted = set(topics) if topics is not None else None
    with AnyReader([path], default_typestore=types.store) as reader:
        connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
        for connection, timestamp, raw in reader.messages(connections=connections):
            yield connection.topic, timestamp, reader.deserialize(raw, connection.msgtype)


# --------------------------------------------------------------------------------------------------
# Repair of interrupted MCAP recordings

_MAGIC = b"\x89MCAP0\r\n"
_OP_HEADER, _OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_DATA_END = 1, 2, 3, 4, 5, 6, 0x0F


class _TruncatedError(Exception):
    """The data ends, or stops making sense, inside a record."""


class _Buf:
    """Little-endian MCAP field reader over one record's bytes."""

    def __init__(self, data: bytes | memoryview) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise _TruncatedError
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self) -> str:
        try:
            return bytes(self.take(self.u32())).decode()
        except UnicodeDecodeError:
            raise _TruncatedError from None

    def string_map(self) -> dict[str, str]:
        end = self.u32()
        end += self.pos
        out = {}
        while self.pos < end:
            key = self.string()
            out[key] = self.string()
        return out

    def records(self) -> Iterator[tuple[int, memoryview]]:
        while self.pos < len(self.data):
            op = self.take(1)[0]
            yield op, self.take(self.u64())


def _decompress(compression: str, data: memoryview, size: int) -> bytes:
    if compression == "":
        return bytes(data)
    if compression == "zstd":
        try:
            from compression import zstd  # Python >= 3.14
        except ImportError:
            from backports import zstd  # rosbags' dependency before 3.14
        return zstd.decompress(bytes(data))
    if compression == "lz4":
        from lz4.frame import decompress

        return decompress(bytes(data))
    raise _TruncatedError


def _records(body: memoryview, op: int) -> list[tuple]:
    """The schema/channel/message events of one complete top-level record (a chunk: all its records)."""
    rec = _Buf(body)
    if op == _OP_SCHEMA:
        return [("schema", rec.u16(), rec.string(), rec.string(), rec.string())]
    if op == _OP_CHANNEL:
        return [("channel", rec.u16(), rec.u16(), rec.string(), rec.string(), rec.string_map())]
    if op == _OP_MESSAGE:
        channel, _sequence, log_time, _publish_time = rec.u16(), rec.u32(), rec.u64(), rec.u64()
        return [("message", channel, log_time, bytes(rec.data[rec.pos :]))]
    if op == _OP_CHUNK:
        _start, _end, size, crc = rec.u64(), rec.u64(), rec.u64(), rec.u32()
        compression = rec.string()
        raw = _decompress(compression, rec.take(rec.u64()), size)
        if len(raw) != size or (crc and zlib.crc32(raw) != crc):
            raise _TruncatedError
        events: list[tuple] = []
        for inner_op, inner_body in _Buf(raw).records():
            if inner_op == _OP_CHUNK:
                raise _TruncatedError
            events.extend(_records(inner_body, inner_op))
        return events
    return []


def scan_mcap(file: str | os.PathLike[str]) -> Iterator[tuple]:
    """Schema, channel and message events of an MCAP file in file order, summary or no summary.

    Stops quietly at the first incomplete or corrupt record (where a killed writer stopped) and at
    the end of the data section. Holds one top-level record (one chunk) in memory at a time.
    Events: ("schema", id, name, encoding, data), ("channel", id, schema_id, topic, encoding,
    metadata), ("message", channel_id, log_time, data).
    """
    with open(file, "rb") as f:
        if f.read(len(_MAGIC)) != _MAGIC:
            raise ValueError(f"{file} is not an MCAP file")
        while True:
            head = f.read(9)
            if len(head) < 9:
                return
            op, length = head[0], struct.unpack("<Q", head[1:])[0]
            if op in (_OP_DATA_END, _OP_FOOTER):
                return
            if op not in (_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK):
                if f.seek(length, os.SEEK_CUR) > os.fstat(f.fileno()).st_size:
                    return
                continue
            body = f.read(length)
            if len(body) < length:
                return
            try:
                events = _records(memoryview(body), op)
            except Exception:  # truncated, corrupt or undecompressable: the readable part ends here
                return
            yield from events


def _parse_offered_qos(metadata: dict[str, str]) -> list[Qos]:
    text = metadata.get("offered_qos_profiles", "")
    if not text:
        return []
    try:
        from rosbags.rosbag2.metadata import parse_qos

        return list(parse_qos(text))
    except Exception:  # QoS is a playback hint only; never lose a bag over it
        return []


def reindex(path: str | os.PathLike[str]) -> int:
    """Repair an MCAP bag folder whose recording was interrupted (no metadata.yaml, no MCAP summary).

    Every complete chunk of the MCAP file is kept (rewritten through rosbags, so the file gets its
    summary and footer again) and metadata.yaml is written. A bag that already has metadata.yaml is
    left as it is. Returns the number of messages in the bag. A folder that is no bag raises
    FileNotFoundError (no such folder, no MCAP file) or ValueError (an unreadable file), naming it.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: {'not a folder' if path.exists() else 'no such bag folder'}")
    meta = path / "metadata.yaml"
    if meta.is_file():
        from rosbags.rosbag2 import Reader, ReaderError

        try:
            with Reader(path) as reader:
                return reader.message_count
        except ReaderError as exc:
            raise ValueError(f"{meta}: not a readable rosbag2 bag ({exc})") from exc
    files = sorted(path.glob("*.mcap"))
    if len(files) != 1:
        raise FileNotFoundError(f"{path}: expected one .mcap file to reindex, found {len(files)}")
    source = files[0]
    work = path.parent / f".{path.name}.reindex"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    try:
        # The writer names its file after its folder: <work>/<stem>/<stem>.mcap, as in the original.
        out = BagWriter(work / source.stem, types=MessageTypes(get_typestore(Stores.EMPTY)))
        schemas: dict[int, tuple[str, str, str]] = {}
        connections: dict[int, Connection] = {}
        for event in scan_mcap(source):
            if event[0] == "schema":
                _, sid, name, encoding, data = event
                schemas[sid] = (name, encoding, data)
            elif event[0] == "channel":
                _, cid, sid, topic, _encoding, metadata = event
                if cid in connections or sid not in schemas:
                    continue
                name, encoding, data = schemas[sid]
                if name not in out.types:
                    out.types.register_msgdef(name, data, encoding)
                connections[cid] = out._add_connection(topic, name, _parse_offered_qos(metadata))
            else:
                _, cid, log_time, data = event
                if cid in connections:
                    out._writer.write(connections[cid], log_time, data)
        count = sum(out._writer.counts.values())
        out.close()
        os.replace(out.file, source)
        os.replace(out.path / "metadata.yaml", meta)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return count


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mimic_sim.tools.bag reindex BAG...`: repair interrupted recordings."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mimic_sim.tools.bag", description=main.__doc__)
    parser.add_argument("command", choices=["reindex"])
    parser.add_argument("bags", nargs="+", type=Path)
    args = parser.parse_args(argv)
    failed = 0
    for bag in args.bags:
        try:
            print(f"{bag}: {reindex(bag)} messages")
        except (ValueError, OSError) as exc:  # not a bag: one line, then on to the next
            print(f"{parser.prog} reindex: error: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
