"""The judge <-> worker wire format: everything round-trips, nothing unpickles."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pytest
import torch

from grader.outcomes import StudentCrashed, StudentError
from grader.sandbox import protocol
from grader.sandbox.client import MAX_WORKER_MESSAGE, MAX_WORKER_TRACEBACK, WorkerClient
from grader.sandbox.protocol import Handle, ProtocolError


def roundtrip(value):
    buffers: list[bytes] = []
    encoded = protocol.encode(value, buffers)
    frame = protocol.pack({"value": encoded}, buffers)
    r, w = os.pipe()
    try:
        os.write(w, frame)
        message, out = protocol.read_frame(r)
    finally:
        os.close(r)
        os.close(w)
    return protocol.decode(message["value"], out)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64,
                                   torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64])
def test_tensors_of_every_dtype_round_trip(dtype):
    t = (torch.randn(3, 4) * 5).to(dtype) if dtype != torch.bool else torch.rand(3, 4) > 0.5
    back = roundtrip(t)
    assert back.dtype == dtype and back.shape == t.shape
    assert torch.equal(back, t)


def test_odd_tensors_round_trip():
    base = torch.arange(24.0).reshape(4, 6)
    for t in (base.T, base[:, 1:3], torch.empty(0, 3), torch.tensor(3.5), base.expand(2, 4, 6)):
        back = roundtrip(t)
        assert torch.equal(back, t)
    meta = roundtrip(torch.empty(2, 3, device="meta", dtype=torch.float64))
    assert meta.device.type == "meta" and meta.shape == (2, 3) and meta.dtype == torch.float64


def test_containers_and_scalars_round_trip():
    value = {"a": (1, 2.5, None, True, "x"), "b": [torch.ones(2), {"c": torch.float64}],
             "d": torch.device("cpu"), "e": torch.Size([2, 3]), 3: float("inf")}
    back = roundtrip(value)
    assert back["a"] == (1, 2.5, None, True, "x")
    assert torch.equal(back["b"][0], torch.ones(2)) and back["b"][1]["c"] is torch.float64
    assert back["d"] == torch.device("cpu") and back["e"] == (2, 3) and math.isinf(back[3])


def test_handles_cross_as_ids():
    assert roundtrip(Handle(7, "SelfAttention", 2)) == Handle(7, "SelfAttention", 2)


def test_unsendable_objects_need_a_handle_table():
    with pytest.raises(TypeError):
        protocol.encode(object(), [])
    table = []
    encoded = protocol.encode(object(), [], handle_of=lambda obj: table.append(obj) or Handle(1, "object"))
    assert encoded["__handle__"] == 1 and len(table) == 1


@pytest.mark.parametrize("header", [b"not json", b"[1, 2]", b'{"value": {"__weird__": 1}}'])
def test_malformed_frames_are_protocol_errors(header):
    r, w = os.pipe()
    try:
        os.write(w, protocol._U32.pack(len(header)) + header)
        os.close(w)
        w = -1
        with pytest.raises(ProtocolError):
            message, out = protocol.read_frame(r)
            protocol.decode(message.get("value"), out)
    finally:
        os.close(r)
        if w != -1:
            os.close(w)


def test_a_tensor_whose_bytes_do_not_match_its_shape_is_rejected():
    buffers = [b"\x00" * 8]
    with pytest.raises(ProtocolError):
        protocol.decode({"__tensor__": 0, "dtype": "float32", "shape": [3], "device": "cpu"}, buffers)


def test_the_judge_side_never_unpickles():
    """No pickle, no torch.load without weights_only, no eval in what reads the worker's replies."""
    import ast

    sandbox = Path(protocol.__file__).parent
    for name in ("protocol.py", "client.py", "spawn.py"):
        tree = ast.parse((sandbox / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("pickle", "marshal", "dill", "shelve")
                               for n in names), name
            if isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                assert func not in ("eval", "exec", "torch.load", "pickle.loads"), (name, func)


# ------------------------------------------------------------------ hostile frames
@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def _soon() -> float:
    """A deadline a regression would hit instead of hanging (never asserted on)."""
    return time.monotonic() + 5.0


def test_a_frame_that_stalls_after_its_first_bytes_is_a_timeout(pipe):
    r, w = pipe
    os.write(w, protocol._U32.pack(100) + b'{"ok": tr')
    with pytest.raises(protocol.FrameTimeout):
        protocol.read_frame(r, deadline=time.monotonic() + 0.05)


def test_a_stalled_buffer_is_a_timeout_too(pipe):
    r, w = pipe
    frame = protocol.pack({"value": 1}, [b"x" * 64])
    os.write(w, frame[:-10])
    with pytest.raises(protocol.FrameTimeout):
        protocol.read_frame(r, deadline=time.monotonic() + 0.05)


@pytest.mark.parametrize("tail", [
    protocol._U64.pack(2**40),                                   # one buffer of a terabyte
    protocol._U64.pack(protocol.MAX_BUFFER_BYTES + 1),           # just over the cap
])
def test_a_buffer_over_the_cap_is_refused_before_it_is_read(pipe, tail):
    r, w = pipe
    header = json.dumps({"ok": True, "buffers": 1}).encode()
    os.write(w, protocol._U32.pack(len(header)) + header + tail)
    with pytest.raises(protocol.FrameTooLarge):
        protocol.read_frame(r, deadline=_soon())


def test_too_many_buffers_are_refused(pipe):
    r, w = pipe
    header = json.dumps({"buffers": protocol.MAX_BUFFERS + 1}).encode()
    os.write(w, protocol._U32.pack(len(header)) + header)
    with pytest.raises(protocol.FrameTooLarge, match="buffers"):
        protocol.read_frame(r, deadline=_soon())


def test_too_many_bytes_in_all_are_refused(pipe, monkeypatch):
    monkeypatch.setattr(protocol, "MAX_FRAME_BYTES", 100)
    r, w = pipe
    os.write(w, protocol.pack({"value": 1}, [b"x" * 60, b"y" * 60]))
    with pytest.raises(protocol.FrameTooLarge, match="bytes in one frame"):
        protocol.read_frame(r, deadline=_soon())


def test_a_header_over_the_cap_is_refused(pipe):
    r, w = pipe
    os.write(w, protocol._U32.pack(protocol.MAX_HEADER_BYTES + 1))
    with pytest.raises(protocol.FrameTooLarge, match="header"):
        protocol.read_frame(r, deadline=_soon())


@pytest.mark.parametrize("count", ['"3"', "-1", "true", "1.5"])
def test_a_bad_buffer_count_is_a_protocol_error(pipe, count):
    r, w = pipe
    header = ('{"buffers": %s}' % count).encode()
    os.write(w, protocol._U32.pack(len(header)) + header)
    with pytest.raises(ProtocolError):
        protocol.read_frame(r, deadline=_soon())


def test_the_caps_fit_the_largest_legitimate_reply():
    """Exercise 8's training-check model, as weights: well inside every cap."""
    from grader.training.check import ModelSize, ReferenceSeq2Seq

    state = ReferenceSeq2Seq(ModelSize()).state_dict()
    buffers: list[bytes] = []
    encoded = protocol.encode(dict(state), buffers)
    frame = protocol.pack({"ok": True, "value": encoded}, buffers)
    assert len(buffers) <= protocol.MAX_BUFFERS // 8
    assert max(len(b) for b in buffers) <= protocol.MAX_BUFFER_BYTES // 8
    assert len(frame) <= protocol.MAX_FRAME_BYTES // 8


def test_a_peer_that_stops_reading_is_a_write_timeout(pipe):
    r, w = pipe
    with pytest.raises(protocol.FrameTimeout):
        protocol.write_frame(w, {"value": 1}, [b"x" * (4 << 20)], deadline=time.monotonic() + 0.05)


# ------------------------------------------------------------------ what the judge keeps
def test_a_failure_reply_is_capped_and_checked_field_by_field():
    """Student-controlled text from the worker: bounded, in its own fields."""
    client = WorkerClient("/nonexistent", [])
    reply = {"ok": False, "kind": "error", "message": "m" * 10**6, "traceback": "t" * 10**6,
             "type": "Not a name; rm -rf", "where": ["w" * 10**4, 3]}
    with pytest.raises(StudentError) as caught:
        client._value(reply, [], "f")
    error = caught.value
    assert len(error.message) <= MAX_WORKER_MESSAGE + 10
    assert len(error.traceback) <= MAX_WORKER_TRACEBACK + 10
    assert error.type_name == ""
    assert len(error.where[0]) <= 200 and error.where[1] == 3
    reply = dict(reply, where="not a location", kind="crashed", message=["not", "text"])
    with pytest.raises(StudentCrashed) as crashed:
        client._value(reply, [], "f")
    assert crashed.value.where is None and isinstance(crashed.value.message, str)
