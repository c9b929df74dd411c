"""The dynamic batcher on its own: splitting, coalescing, bounded queue, swapping the runner."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from transferops.deploy.batching import BatcherClosed, DynamicBatcher, Overloaded
from transferops.deploy.onnx_runtime import OnnxModel
from transferops.deploy.runtime import Runner, open_runner


class Slot:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner


def _texts(n: int) -> list[str]:
    return [f"text number {i} " + "word " * (i % 7) for i in range(n)]


def test_big_request_is_split_and_reassembled_in_order(tiny_export: Path) -> None:
    runner = open_runner("m", tiny_export, variant="fp32")
    sizes: list[int] = []
    texts = _texts(40)

    async def go() -> list[np.ndarray]:
        with ThreadPoolExecutor(1) as ex:
            b = DynamicBatcher(Slot(runner), executor=ex, max_batch_size=16, max_wait_ms=0,
                               on_batch=lambda n, _dt: sizes.append(n))
            chunks = await b.submit(texts)
            b.close()
        return [res.proba for _, res in chunks]

    proba = np.concatenate(asyncio.run(go()))
    assert sizes == [16, 16, 8]
    np.testing.assert_allclose(proba, OnnxModel(tiny_export, variant="fp32").predict_proba(texts), atol=1e-5)


def test_concurrent_requests_coalesce_and_queue_is_bounded(tiny_export: Path) -> None:
    runner = open_runner("m", tiny_export)
    sizes: list[int] = []

    async def go() -> None:
        with ThreadPoolExecutor(1) as ex:
            b = DynamicBatcher(Slot(runner), executor=ex, max_batch_size=8, max_wait_ms=200, queue_size=6,
                               on_batch=lambda n, _dt: sizes.append(n))
            first = asyncio.ensure_future(b.submit(_texts(3)))
            second = asyncio.ensure_future(b.submit(_texts(3)))
            await asyncio.sleep(0)  # both queued, the batch is still waiting to fill
            with pytest.raises(Overloaded) as exc:
                await b.submit(_texts(1))
            assert exc.value.retry_after >= 1
            r1, r2 = await first, await second
            assert len(r1[0][1]) == 3 and len(r2[0][1]) == 3
            b.close()
            with pytest.raises(BatcherClosed):
                await b.submit(["late"])

    asyncio.run(go())
    assert sizes == [6]  # the two requests shared one model call


def test_runner_swap_applies_to_the_next_batch(tiny_export: Path, tiny_run: Path) -> None:
    onnx, torch_runner = open_runner("m", tiny_export), open_runner("m", tiny_run)
    slot = Slot(onnx)

    async def go() -> tuple[str, str]:
        with ThreadPoolExecutor(1) as ex:
            b = DynamicBatcher(slot, executor=ex, max_wait_ms=0)
            before = (await b.submit(["a"]))[0][0].runtime
            slot.runner = torch_runner
            after = (await b.submit(["a"]))[0][0].runtime
            b.close()
            return before, after

    assert asyncio.run(go()) == ("onnx", "pytorch")


class _BarrierRunner:
    """A real ONNX runner whose ``infer`` waits for ``parties`` calls to be running at once."""

    def __init__(self, runner: Runner, parties: int, timeout: float) -> None:
        import threading

        self._runner, self.barrier = runner, threading.Barrier(parties, timeout=timeout)

    def infer(self, texts: list[str]) -> object:
        self.barrier.wait()  # raises BrokenBarrierError when fewer batches run at once
        return self._runner.infer(texts)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_concurrency_runs_batches_in_parallel(tiny_export: Path, concurrency: int) -> None:
    import threading

    # generous when both should meet (a loaded CI box), short when one must wait alone until it breaks
    runner = _BarrierRunner(open_runner("m", tiny_export), parties=2, timeout=30 if concurrency == 2 else 2)
    sizes: list[int] = []

    async def go() -> list[object]:
        with ThreadPoolExecutor(2) as ex:
            b = DynamicBatcher(Slot(runner), executor=ex, max_batch_size=2, max_wait_ms=0,  # type: ignore[arg-type]
                               concurrency=concurrency, on_batch=lambda n, _dt: sizes.append(n))
            out = await asyncio.gather(b.submit(_texts(2)), b.submit(_texts(2)), return_exceptions=True)
            b.close()
            return out

    if concurrency == 2:
        out = asyncio.run(go())
        assert all(not isinstance(r, BaseException) for r in out)
        assert sizes == [2, 2]  # two model calls, both running at the same moment (the barrier let them through)
    else:
        # one batch at a time: the first call waits at the barrier alone until it breaks
        out = asyncio.run(go())
        assert any(isinstance(r, threading.BrokenBarrierError) for r in out)


def test_concurrency_must_be_a_positive_integer(tiny_export: Path) -> None:
    from transferops.errors import ConfigError

    with ThreadPoolExecutor(1) as ex, pytest.raises(ConfigError, match="concurrency"):
        DynamicBatcher(Slot(open_runner("m", tiny_export)), executor=ex, concurrency=0)


@pytest.mark.parametrize(("concurrency", "repeat", "largest", "split_min_chars"),
                         [(1, 300, 4, 2048), (2, 300, 2, 2048), (2, 1, 4, 2048), (2, 1, 2, 0)])
def test_free_slots_share_heavy_queues(tiny_export: Path, concurrency: int, repeat: int, largest: int,
                                       split_min_chars: int) -> None:
    """With two free slots, four long queued texts run as two batches of two (both cores busy), not one of
    four; four short texts stay one batch unless ``split_min_chars`` is 0 (then they share too)."""
    runner = open_runner("m", tiny_export)
    sizes: list[int] = []

    async def go() -> None:
        with ThreadPoolExecutor(concurrency) as ex:
            b = DynamicBatcher(Slot(runner), executor=ex, max_batch_size=32, max_wait_ms=20,
                               concurrency=concurrency, on_batch=lambda n, _dt: sizes.append(n),
                               split_min_chars=split_min_chars)
            out = await asyncio.gather(*[b.submit([t * repeat]) for t in _texts(4)])
            assert [len(r[0][1]) for r in out] == [1, 1, 1, 1]
            b.close()

    asyncio.run(go())
    assert sum(sizes) == 4
    # split: no batch over half the queue (how the 4 arrive may vary: 2+2 or 1+1+2); not split: one batch
    assert max(sizes) <= largest if largest < 4 else sizes == [4]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "0"])
def test_split_min_chars_is_validated(bad: object) -> None:
    from transferops.deploy.batching import BatchSettings
    from transferops.errors import ConfigError

    with pytest.raises(ConfigError, match="split_min_chars"):
        BatchSettings(split_min_chars=bad)  # type: ignore[arg-type]
