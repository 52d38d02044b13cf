"""Password hashing slots (accounts/hash_slots.py): at most `count` holders across processes, none kept by the dead."""
import multiprocessing
import os
import signal
import time

from accounts import hash_slots, passwords

HOLD = 0.05


def _hold_and_record(slots, ready, intervals):
    ready.wait()
    with slots.held():
        began = time.monotonic()
        time.sleep(HOLD)
        intervals.append((began, time.monotonic()))


def most_at_once(intervals):
    """The largest number of intervals that overlap at one instant."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def run_holders(slots, holders):
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager:
        intervals, ready = manager.list(), context.Event()
        processes = [context.Process(target=_hold_and_record, args=(slots, ready, intervals))
                     for _ in range(holders)]
        for process in processes:
            process.start()
        began = time.monotonic()
        ready.set()
        for process in processes:
            process.join(10)
        return list(intervals), time.monotonic() - began


def test_no_more_processes_hold_at_once_than_there_are_slots(tmp_path):
    for count in (1, 2):
        intervals, elapsed = run_holders(hash_slots.HashSlots(str(tmp_path), count), holders=6)
        assert len(intervals) == 6
        assert most_at_once(intervals) == count
        assert elapsed >= 6 / count * HOLD


def test_a_slot_held_by_a_killed_process_is_free_at_once(tmp_path):
    slots = hash_slots.HashSlots(str(tmp_path), 1)
    context = multiprocessing.get_context("fork")
    holding = context.Event()

    def hold_forever():
        with slots.held():
            holding.set()
            time.sleep(60)

    process = context.Process(target=hold_forever)
    process.start()
    assert holding.wait(10)
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    began = time.monotonic()
    with slots.held():
        waited = time.monotonic() - began
    assert waited < 1.0


def test_a_nested_hold_in_one_thread_reuses_its_slot(tmp_path):
    slots = hash_slots.HashSlots(str(tmp_path), 1)
    with slots.held():
        with slots.held():  # would wait forever if it asked for a second slot
            pass
    with slots.held():  # and the slot was given back once, at the outer end
        pass


def test_password_checks_hold_a_slot(tmp_path, monkeypatch):
    slots = hash_slots.HashSlots(str(tmp_path), 1)
    monkeypatch.setattr(passwords, "_slots", slots)
    stored = passwords.hash_password("correct horse")
    intervals, _ = run_holders(slots, holders=1)  # the slot is free between checks
    assert len(intervals) == 1
    with slots.held():  # this thread holds the only slot: a check nests in it
        assert passwords.verify_password(stored, "correct horse")
    context = multiprocessing.get_context("fork")
    with slots.held():
        # Another process's check must wait for the slot this one holds.
        child = context.Process(target=passwords.verify_password, args=(stored, "correct horse"))
        child.start()
        child.join(0.5)
        assert child.is_alive()
    child.join(10)
    assert child.exitcode == 0
