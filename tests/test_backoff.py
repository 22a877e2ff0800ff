"""The one backoff (reconciler/backoff.py) that the client, the daemon and the supervisor share."""

from reconciler.backoff import backoff


def test_doubles_from_base_per_attempt():
    assert [backoff(n, base=1.0, cap=100.0) for n in range(1, 6)] == [1, 2, 4, 8, 16]
    assert [backoff(n, base=0.5, cap=100.0) for n in range(1, 4)] == [0.5, 1, 2]


def test_never_exceeds_the_cap():
    assert [backoff(n, base=1.0, cap=5.0) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_attempts_below_one_wait_the_base():
    assert backoff(0, base=2.0, cap=60.0) == 2.0
    assert backoff(-3, base=2.0, cap=60.0) == 2.0


def test_a_huge_attempt_number_stays_at_the_cap():
    # A connector that crashed for weeks must not overflow the float.
    assert backoff(10_000, base=1.0, cap=60.0) == 60.0


def test_jitter_stays_between_half_and_all_of_the_wait():
    for attempt, ceiling in [(1, 1.0), (3, 4.0), (9, 30.0)]:
        waits = [backoff(attempt, base=1.0, cap=30.0, jitter=True) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # actually jittered, not a constant
