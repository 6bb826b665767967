"""The judge <-> worker wire format: JSON plus raw tensor buffers.

Nothing here ever unpickles: a message is a JSON header followed by raw byte
buffers, and tensors are rebuilt with `torch.frombuffer`.  A frame is

    u32 header length | header (UTF-8 JSON) | for each buffer: u64 length | bytes

The reader never trusts the peer: every length is checked against a cap
before a byte of it is read (a frame over the caps is refused unread, so a
hostile worker cannot make the judge allocate gigabytes), and a deadline
covers the whole frame, not just its first byte (a worker that sends half a
frame and stalls is a timeout, not a hang).

Values that can cross: None, bool, int, float, str, lists, tuples, dicts with
str or int keys, torch tensors (any device, meta included: only shape and
dtype travel for meta), torch.dtype, torch.device, torch.Size.  Anything
else stays in the worker and crosses as a handle (an int id).
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time
from dataclasses import dataclass

import torch

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
# Caps on one frame.  The largest legitimate message is far below them: the
# hidden tests send tensors of a few kilobytes, and the biggest reply is the
# exercise-8 training check's trained weights (d_model 64, vocab 16: about
# 40 tensors, under 1 MiB in all).
MAX_HEADER_BYTES = 4 * 1024 * 1024        # the JSON header
MAX_BUFFER_BYTES = 64 * 1024 * 1024       # one tensor's raw bytes
MAX_BUFFERS = 1024                        # tensors in one frame
MAX_FRAME_BYTES = 256 * 1024 * 1024       # header and buffers together

_DTYPES = {
    str(dt).removeprefix("torch."): dt
    for dt in (
        torch.float16, torch.bfloat16, torch.float32, torch.float64,
        torch.complex64, torch.complex128,
        torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool,
    )
}


class ProtocolError(Exception):
    """A malformed frame: the peer is broken or hostile."""


@dataclass(frozen=True)
class Handle:
    """A reference to an object that lives in the worker."""

    id: int
    type: str = ""
    generation: int = 0


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def dtype_from_name(name: str) -> torch.dtype:
    try:
        return _DTYPES[name]
    except KeyError:
        raise ProtocolError(f"unsupported dtype {name!r}") from None


# --------------------------------------------------------------------- encode
def encode(value, buffers: list[bytes], *, handle_of=None):
    """Turn `value` into JSON-able data, appending tensor bytes to `buffers`.

    `handle_of(obj) -> Handle` is called for objects that cannot cross; without
    it such objects raise TypeError.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"__float__": repr(value)}
    if isinstance(value, torch.Tensor):
        return _encode_tensor(value, buffers)
    if isinstance(value, torch.dtype):
        return {"__dtype__": dtype_name(value)}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, Handle):
        return {"__handle__": value.id, "type": value.type, "gen": value.generation}
    if isinstance(value, (tuple, torch.Size)):
        return {"__tuple__": [encode(v, buffers, handle_of=handle_of) for v in value]}
    if isinstance(value, list):
        return [encode(v, buffers, handle_of=handle_of) for v in value]
    if isinstance(value, dict) and all(isinstance(k, (str, int)) for k in value):
        return {"__dict__": [[k, encode(v, buffers, handle_of=handle_of)] for k, v in value.items()]}
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return encode(value.item(), buffers, handle_of=handle_of)
    if handle_of is not None:
        return encode(handle_of(value), buffers)
    raise TypeError(f"cannot send a {type(value).__name__} across the sandbox")


def _encode_tensor(t: torch.Tensor, buffers: list[bytes]) -> dict:
    if t.is_sparse or t.layout != torch.strided:
        t = t.to_dense()
    header = {"__tensor__": None, "dtype": dtype_name(t.dtype), "shape": list(t.shape),
              "device": str(t.device), "requires_grad": bool(t.requires_grad)}
    if t.dtype not in _DTYPES.values():
        raise TypeError(f"cannot send a tensor of dtype {t.dtype}")
    if t.device.type == "meta":
        return header
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    raw = flat.view(torch.uint8) if flat.dtype != torch.bool else flat.to(torch.uint8)
    header["__tensor__"] = len(buffers)
    buffers.append(raw.numpy().tobytes())
    return header


# --------------------------------------------------------------------- decode
def decode(data, buffers: list[bytes], *, resolve_handle=None, map_device=None):
    """Inverse of `encode`.  `resolve_handle(Handle) -> object` (worker side)
    turns handles back into objects; without it they stay `Handle`s."""
    if isinstance(data, list):
        return [decode(v, buffers, resolve_handle=resolve_handle, map_device=map_device) for v in data]
    if not isinstance(data, dict):
        return data
    if "__tensor__" in data:
        return _decode_tensor(data, buffers, map_device)
    if "__tuple__" in data:
        return tuple(decode(v, buffers, resolve_handle=resolve_handle, map_device=map_device)
                     for v in data["__tuple__"])
    if "__dict__" in data:
        return {k: decode(v, buffers, resolve_handle=resolve_handle, map_device=map_device)
                for k, v in data["__dict__"]}
    if "__dtype__" in data:
        return dtype_from_name(data["__dtype__"])
    if "__device__" in data:
        return torch.device(data["__device__"])
    if "__float__" in data:
        return float(data["__float__"])
    if "__handle__" in data:
        handle = Handle(int(data["__handle__"]), str(data.get("type", "")), int(data.get("gen", 0)))
        return resolve_handle(handle) if resolve_handle else handle
    raise ProtocolError(f"unknown value {sorted(data)!r}")


def _decode_tensor(data: dict, buffers: list[bytes], map_device) -> torch.Tensor:
    dtype = dtype_from_name(data["dtype"])
    shape = [int(s) for s in data["shape"]]
    device = str(data.get("device", "cpu"))
    if map_device is not None:
        device = map_device(device)
    if data["__tensor__"] is None:
        return torch.empty(shape, dtype=dtype, device="meta")
    raw = buffers[int(data["__tensor__"])]
    numel = math.prod(shape)
    if dtype == torch.bool:
        flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8).to(torch.bool)
    elif numel == 0:
        flat = torch.empty(0, dtype=dtype)
    else:
        flat = torch.frombuffer(bytearray(raw), dtype=dtype)
    if flat.numel() != numel:
        raise ProtocolError(f"tensor of shape {shape} carries {flat.numel()} elements")
    t = flat.reshape(shape)
    if device != "cpu":
        t = t.to(device)
    return t


# --------------------------------------------------------------------- frames
def pack(message: dict, buffers: list[bytes]) -> bytes:
    message = dict(message, buffers=len(buffers))
    header = json.dumps(message, allow_nan=False).encode()
    parts = [_U32.pack(len(header)), header]
    for buf in buffers:
        parts.append(_U64.pack(len(buf)))
        parts.append(buf)
    return b"".join(parts)


def write_frame(fd: int, message: dict, buffers: list[bytes], deadline: float | None = None) -> None:
    """Send one frame; with a `deadline`, a peer that stops reading is a
    FrameTimeout instead of a write blocked forever."""
    data = memoryview(pack(message, buffers))
    while data:
        if deadline is None:
            written = os.write(fd, data)
        else:
            remaining = deadline - time.monotonic()
            _, writable, _ = select.select([], [fd], [], max(remaining, 0))
            if not writable:
                raise FrameTimeout("the peer stopped reading")
            written = os.write(fd, data[:select.PIPE_BUF])  # fits once the pipe is writable
        data = data[written:]


class FrameTimeout(Exception):
    """The whole frame did not arrive before its deadline."""


class FrameTooLarge(ProtocolError):
    """A length prefix over the caps: refused before reading it."""


def _wait_readable(fd: int, deadline: float | None) -> None:
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FrameTimeout("the frame did not arrive in time")
    readable, _, _ = select.select([fd], [], [], remaining)
    if not readable:
        raise FrameTimeout("the frame did not arrive in time")


def read_exact(fd: int, n: int, deadline: float | None = None) -> bytes:
    """`n` bytes from `fd`; `deadline` (time.monotonic()) bounds the wait."""
    chunks, remaining = [], n
    while remaining:
        _wait_readable(fd, deadline)
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("the peer closed the channel")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, deadline: float | None = None) -> tuple[dict, list[bytes]]:
    """One frame.  Raises FrameTimeout past `deadline`, FrameTooLarge (before
    reading the oversized part) when a length is over the caps, ProtocolError
    when the frame is malformed, EOFError when the peer closed."""
    (size,) = _U32.unpack(read_exact(fd, 4, deadline))
    if size > MAX_HEADER_BYTES:
        raise FrameTooLarge(f"a header of {size} bytes (the cap is {MAX_HEADER_BYTES})")
    try:
        message = json.loads(read_exact(fd, size, deadline))
    except ValueError as exc:
        raise ProtocolError(f"bad header: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("header is not an object")
    count = message.get("buffers", 0)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ProtocolError(f"bad buffer count {count!r}")
    if count > MAX_BUFFERS:
        raise FrameTooLarge(f"{count} buffers (the cap is {MAX_BUFFERS})")
    total = size
    buffers = []
    for _ in range(count):
        (length,) = _U64.unpack(read_exact(fd, 8, deadline))
        if length > MAX_BUFFER_BYTES:
            raise FrameTooLarge(f"a buffer of {length} bytes (the cap is {MAX_BUFFER_BYTES})")
        total += length
        if total > MAX_FRAME_BYTES:
            raise FrameTooLarge(f"more than {MAX_FRAME_BYTES} bytes in one frame")
        buffers.append(read_exact(fd, length, deadline))
    return message, buffers
