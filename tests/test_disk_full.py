"""A real ``ferrymq serve`` whose store fills a small tmpfs to the end under load.

Segments used to be sparse mappings: the page fault that found no free block killed the whole
broker with SIGBUS. Now they are preallocated, so a full disk is ENOSPC when a segment is
created: sends are refused with SERVICE_NOT_AVAILABLE (the remark says "disk full"), the process
lives, /readyz says why, reads go on, writes resume once space is freed, and every acknowledged
message reads back after a restart.

Needs root (it mounts a size-limited tmpfs); skipped with the reason elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.message import PROPERTY_UNIQ_KEY
from ferrymq.core.remoting.transport import connect
from tests.remoting_helpers import pull_all, send_v2

QUEUES = 4
SEGMENT = 1 << 20
DISK = "24m"
BALLAST = 3 << 20  # written before the broker starts; deleting it is "space freed"
TOPIC = "DiskFullTopic"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("SKIPPED LOUDLY: the full-disk test mounts a tmpfs and needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"SKIPPED LOUDLY: cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _readyz(server: FerryServer) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"{server.admin_url}/readyz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def _send_until_refused(server: FerryServer, senders: int, tag: str) -> tuple[set[str], list[str]]:
    """Concurrent senders until each one is refused; (acknowledged keys, refusal remarks)."""
    host, port = server.broker_addr.split(":")
    acked: set[str] = set()
    refusals: list[str] = []

    async def sender(n: int) -> None:
        conn = await connect(host, int(port))
        try:
            for i in range(20_000):  # 8 x 20,000 x 4 KB: far more than the disk holds
                key = f"{tag}{n}-{i}"
                body = key.encode().ljust(4000, b".")
                req = send_v2(TOPIC, body, i % QUEUES, {PROPERTY_UNIQ_KEY: key})
                resp = await conn.invoke(req, timeout=10)
                if resp.code == ResponseCode.SUCCESS:
                    acked.add(key)
                    continue
                assert resp.code == ResponseCode.SERVICE_NOT_AVAILABLE, (resp.code, resp.remark)
                refusals.append(resp.remark or "")
                return
        finally:
            conn.close()

    await asyncio.gather(*(sender(n) for n in range(senders)))
    return acked, refusals


async def _send_some(server: FerryServer, count: int, tag: str) -> set[str]:
    host, port = server.broker_addr.split(":")
    conn = await connect(host, int(port))
    acked = set()
    try:
        for i in range(count):
            key = f"{tag}-{i}"
            req = send_v2(TOPIC, key.encode(), i % QUEUES, {PROPERTY_UNIQ_KEY: key})
            resp = await conn.invoke(req, timeout=10)
            assert resp.code == ResponseCode.SUCCESS, (resp.code, resp.remark)
            acked.add(key)
    finally:
        conn.close()
    return acked


async def _read_keys(server: FerryServer) -> list[str]:
    host, port = server.broker_addr.split(":")
    conn = await connect(host, int(port))
    try:
        return [m.properties[PROPERTY_UNIQ_KEY] for m in await pull_all(conn, TOPIC, range(QUEUES))]
    finally:
        conn.close()


def test_a_full_disk_refuses_writes_keeps_the_broker_and_loses_nothing(
    tmp_path: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FERRYMQ_SPARSE_SEGMENTS", raising=False)  # the server preallocates
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\1" * BALLAST)
    conf = (
        "flushDiskType=SYNC_FLUSH\n"
        f"mappedFileSizeCommitLog={SEGMENT}\nmappedFileSizeConsumeQueue=20000\n"
        "maxHashSlotNum=1000\nmaxIndexNum=4000\ncleanResourceInterval=200\n"
        # the disk really fills up: no ratio refuses first, nothing acknowledged is deleted
        "diskSpaceWarningLevelRatio=100\ncleanFileForciblyEnable=false\n"
    )
    server = FerryServer(tmp_path / "srv", conf)  # its log on the real disk
    server.store_dir = small_disk / "store"
    server.start()
    try:
        acked = asyncio.run(_send_some(server, 8, "warm"))  # the topic exists before the disk fills
        more, refusals = asyncio.run(_send_until_refused(server, senders=8, tag="s"))
        acked |= more
        assert len(more) > 1000, "the disk filled up before much was written"
        assert len(refusals) == 8 and all("disk full" in r for r in refusals), refusals[:3]
        assert server.running, f"the broker died on a full disk:\n{server.log_tail()}"
        status, body = _readyz(server)
        assert status == 503 and body["store_writable"] is False and "disk full" in str(body["reason"])
        assert set(asyncio.run(_read_keys(server))) == acked  # reads go on

        ballast.unlink()  # space freed: the clean-up service finds room for the next segment
        deadline = time.monotonic() + 20
        while _readyz(server)[0] != 200:
            assert time.monotonic() < deadline, f"writes never resumed:\n{server.log_tail()}"
            time.sleep(0.1)
        acked |= asyncio.run(_send_some(server, 40, "after"))

        assert server.stop() == 0
        server.start()
        keys = asyncio.run(_read_keys(server))
        assert len(keys) == len(set(keys)) and set(keys) == acked
    finally:
        server.stop()
