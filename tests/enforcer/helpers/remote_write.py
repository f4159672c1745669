"""Prometheus remote-write v1 client for tests: what the OTel Collector's PRW exporter sends.

The WriteRequest message is tiny (labels + samples), so it is hand-encoded here rather than pulling in
generated protobuf code; the wire format is fixed by prometheus/prompb/remote.proto and types.proto:

    message WriteRequest { repeated TimeSeries timeseries = 1; }
    message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    message Label        { string name = 1; string value = 2; }
    message Sample       { double value = 1; int64 timestamp = 2; }   // timestamp in ms

The body is snappy *block* compressed (not framed), done by `cramjam`.
"""
from __future__ import annotations

import struct
from typing import Iterable, Mapping, Sequence, Tuple

import cramjam
import requests

Sample = Tuple[float, float]  # (unix seconds, value)


def _varint(value: int) -> bytes:
    if value < 0:  # int64 negative values are encoded as 10-byte two's complement
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def _label(name: str, value: str) -> bytes:
    return _field_bytes(1, name.encode()) + _field_bytes(2, value.encode())


def _sample(ts_seconds: float, value: float) -> bytes:
    return b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(int(round(ts_seconds * 1000)))


def label_block(labels: Mapping[str, str]) -> bytes:
    """The encoded label fields of one TimeSeries (sorted by name, as Prometheus requires). Callers that
    send many requests for the same series (the benchmark) encode this once."""
    return b"".join(_field_bytes(1, _label(name, labels[name])) for name in sorted(labels))


def encode_raw(series: Iterable[Tuple[bytes, Sequence[Sample]]]) -> bytes:
    """Encode [(label_block(...), samples), ...] as a WriteRequest."""
    body = bytearray()
    for labels, samples in series:
        ts = bytearray(labels)
        for t, v in samples:
            ts += _field_bytes(2, _sample(t, v))
        body += _field_bytes(1, bytes(ts))
    return bytes(body)


def encode_write_request(series: Iterable[Tuple[Mapping[str, str], Sequence[Sample]]]) -> bytes:
    """Encode [(labels incl. __name__, [(ts_seconds, value), ...]), ...] as a WriteRequest."""
    return encode_raw((label_block(labels), samples) for labels, samples in series)


def push(base_url: str, series: Iterable[Tuple[Mapping[str, str], Sequence[Sample]]]) -> None:
    """POST one remote-write v1 request; raises with Prometheus's message on anything but 2xx."""
    push_encoded(base_url, encode_write_request(series))


def push_encoded(base_url: str, message: bytes) -> None:
    payload = bytes(cramjam.snappy.compress_raw(message))
    resp = requests.post(
        base_url.rstrip("/") + "/api/v1/write",
        data=payload,
        headers={
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
            "User-Agent": "openclaw-usage-tests",
        },
        timeout=30,
    )
    if resp.status_code // 100 != 2:
        raise AssertionError(f"remote write rejected: HTTP {resp.status_code}: {resp.text.strip()}")
