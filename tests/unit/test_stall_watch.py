"""The worker's stall watch: records waiting on its partitions, agents idle, nothing applied."""

from streams.stall import Activity, StallWatch

MINE = [("alerts", 0), ("alerts", 1)]


def test_records_waiting_while_the_agents_idle_is_a_stall_after_the_limit() -> None:
    watch, activity = StallWatch(limit=60), Activity()
    lag = {("alerts", 0): 5, ("alerts", 1): 0}
    assert watch.observe(0, lag, MINE, activity) is None  # the first measurement sets the baseline
    assert watch.observe(10, lag, MINE, activity) is None  # waiting begins
    assert watch.observe(60, lag, MINE, activity) is None  # 50 s
    assert watch.observe(70, lag, MINE, activity) == 60


def test_progress_or_a_busy_agent_is_not_a_stall() -> None:
    watch, activity = StallWatch(limit=60), Activity()
    lag = {("alerts", 0): 5}
    watch.observe(0, lag, MINE, activity)
    watch.observe(10, lag, MINE, activity)
    activity.batches += 1  # a batch applied: the lag is being worked off
    assert watch.observe(70, lag, MINE, activity) is None
    activity.busy = 1  # a batch in hand (the store retrying): not the consumer's stall
    assert watch.observe(200, lag, MINE, activity) is None
    activity.busy = 0
    assert watch.observe(210, lag, MINE, activity) is None  # waiting starts again from here
    assert watch.observe(269, lag, MINE, activity) is None
    assert watch.observe(270, lag, MINE, activity) == 60


def test_records_waiting_on_another_workers_partitions_are_not_this_ones_stall() -> None:
    watch, activity = StallWatch(limit=60), Activity()
    theirs = {("alerts", 2): 500, ("alerts", 0): 0}
    for now in range(0, 300, 10):
        assert watch.observe(now, theirs, MINE, activity) is None
    # Nothing assigned (a rebalance in progress): nothing of ours can wait.
    assert watch.observe(400, {("alerts", 0): 9}, [], activity) is None
