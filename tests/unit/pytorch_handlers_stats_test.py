"""Running statistics and coalesced delivery (REQ-H22, REQ-H23)."""

from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np
import pytest

from studio.backend.core.stats_delivery import ChartHistory, Coalescer, EventStream
from studio.backend.pytorch.trainer.running_stats import RunningStats


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.req("REQ-H22")
def test_epoch_means_are_batch_size_weighted_and_exact() -> None:
    rng = np.random.default_rng(0)
    per_sample_loss = rng.random(1000)
    per_sample_correct = rng.random(1000) < 0.7
    sizes = [64] * 15 + [40]  # uneven last batch
    stats = RunningStats()
    start = 0
    for size in sizes:
        chunk = slice(start, start + size)
        stats.update(size, {"loss": per_sample_loss[chunk].mean(), "accuracy": per_sample_correct[chunk].mean()},
                     step_time_s=0.01, lr=0.1, grad_norm=2.0)
        start += size
    assert stats.mean("loss") == pytest.approx(per_sample_loss.mean(), rel=1e-12, abs=0)
    assert stats.mean("accuracy") == pytest.approx(per_sample_correct.mean(), rel=1e-12, abs=0)
    # a plain mean of batch means would be wrong with the uneven last batch
    assert abs(np.mean([per_sample_loss[i * 64:(i + 1) * 64].mean() for i in range(16)]) - stats.mean("loss")) > 0
    assert stats.samples == 1000 and stats.steps == 16


@pytest.mark.req("REQ-H22")
def test_throughput_step_time_lr_and_grad_norm_are_reported_and_reset_per_epoch() -> None:
    clock = FakeClock()
    stats = RunningStats(clock=clock)
    stats.update(32, {"loss": 1.0}, step_time_s=0.5, lr=0.1, grad_norm=3.0)
    clock.now += 2.0
    stats.update(32, {"loss": 3.0}, step_time_s=1.5, lr=0.05, grad_norm=1.0)
    summary = stats.summary()
    assert summary.samples_per_s == pytest.approx(64 / 2.0)
    assert summary.mean_step_time_s == pytest.approx(1.0)
    assert summary.duration_s == pytest.approx(2.0)
    assert summary.last_lr == 0.05 and summary.last_grad_norm == 1.0
    assert summary.means == {"loss": 2.0}
    stats.reset()
    assert stats.samples == 0 and stats.means() == {} and np.isnan(stats.summary().samples_per_s)
    with pytest.raises(ValueError):
        stats.update(0, {"loss": 1.0})


@pytest.mark.req("REQ-H23")
def test_emit_never_blocks_while_the_consumer_is_stuck() -> None:
    stream: EventStream[int] = EventStream()
    release = threading.Event()
    got: list[int] = []
    entered = threading.Event()

    def slow(batch: list[int]) -> None:
        entered.set()
        release.wait(10)
        got.extend(batch)

    stream.emit(-1)
    coalescer = Coalescer(stream, slow, max_rate=30)
    assert entered.wait(5)  # the consumer is now blocked inside deliver
    for i in range(10_000):
        stream.emit(i)  # must all return although nobody is draining
    assert len(stream) == 10_000
    release.set()
    coalescer.close()
    assert got == [-1, *range(10_000)]  # nothing lost, nothing reordered


@pytest.mark.req("REQ-H23")
def test_deliveries_are_coalesced_to_the_rate_limit_with_no_record_lost() -> None:
    stream: EventStream[int] = EventStream()
    batches: list[list[int]] = []
    coalescer = Coalescer(stream, batches.append, max_rate=20)
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < 0.5:
        stream.emit(n)
        n += 1
        if n % 100 == 0:
            time.sleep(0.0005)
    elapsed = time.monotonic() - started
    coalescer.close()
    assert [x for b in batches for x in b] == list(range(n))
    assert n > 100
    # at most one delivery per interval while running, plus the final flush on close
    assert len(batches) <= 20 * elapsed + 2
    assert coalescer.deliveries == len(batches)


@pytest.mark.req("REQ-H23")
def test_history_of_a_million_steps_stays_bounded_and_keeps_extremes() -> None:
    rng = np.random.default_rng(1)
    steps = np.arange(1, 1_000_001)
    values = np.exp(-steps / 2e5) + 0.05 * rng.standard_normal(steps.size)
    values[123_457] = 42.0  # a spike must survive downsampling
    values[876_543] = -42.0
    tracemalloc.start()
    history = ChartHistory()
    for chunk in range(0, steps.size, 997):  # uneven delivery batches
        history.extend(steps[chunk:chunk + 997], values[chunk:chunk + 997])
    x, y = history.points()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert history.count == 1_000_000
    assert history.nbytes <= 1 << 20 and peak < 8 << 20  # well under the 50 MB goal
    assert len(x) <= 2 * history.capacity
    assert y.max() == 42.0 and x[y.argmax()] == 123_458
    assert y.min() == -42.0 and x[y.argmin()] == 876_544
    assert np.all(np.diff(x) > 0)  # drawable in order


@pytest.mark.req("REQ-H23")
def test_downsampling_is_deterministic_and_independent_of_batching() -> None:
    rng = np.random.default_rng(2)
    xs = np.arange(50_000, dtype=float)
    ys = rng.standard_normal(xs.size)
    whole = ChartHistory(capacity=64)
    whole.extend(xs, ys)
    pieces = ChartHistory(capacity=64)
    cut = np.sort(rng.choice(np.arange(1, xs.size), 300, replace=False))
    for a, b in zip([0, *cut], [*cut, xs.size]):
        pieces.extend(xs[a:b], ys[a:b])
    one_by_one = ChartHistory(capacity=64)
    for x, y in zip(xs[:5000], ys[:5000]):
        one_by_one.append(x, y)
    first = ChartHistory(capacity=64)
    first.extend(xs[:5000], ys[:5000])
    for a, b in ((whole, pieces), (one_by_one, first)):
        assert np.array_equal(a.points()[0], b.points()[0]) and np.array_equal(a.points()[1], b.points()[1])


@pytest.mark.req("REQ-H23")
def test_each_bucket_keeps_its_min_and_max() -> None:
    rng = np.random.default_rng(3)
    ys = rng.standard_normal(1000)
    history = ChartHistory(capacity=8)
    history.extend(np.arange(1000), ys)
    width = history.width
    x, y = history.points()
    for bucket in range(1000 // width):
        seg = ys[bucket * width:(bucket + 1) * width]
        inside = (x >= bucket * width) & (x < (bucket + 1) * width)
        assert set(y[inside]) == {seg.min(), seg.max()}
    small = ChartHistory(capacity=8)
    small.extend([1, 2, 3], [5.0, 6.0, 7.0])
    assert small.points()[1].tolist() == [5.0, 6.0, 7.0]  # no downsampling before the buckets fill
