from simulator.directives import Script
from simulator.state import QueryError, SimTask, TaskStore, query_error
from simulator.timeline import Phase

T0 = 1_750_000_000.0


def make_task(
    script: Script | None = None,
    duration: float = 100,
    task_id: str = "t-1",
    notify_hook: str = "",
) -> SimTask:
    return SimTask(
        task_id=task_id,
        prompt="p",
        model="veo3",
        notify_hook=notify_hook,
        base_url="http://sim/",
        script=script or Script(),
        submitted_at=T0,
        duration=duration,
    )


def test_poll429_queries_come_first_then_poll500_then_normal_answers():
    script = Script(poll429=2, poll500=1)
    errors = [query_error(script, n) for n in range(1, 5)]
    assert errors == [QueryError.OVERLOADED, QueryError.OVERLOADED, QueryError.FAILED, None]


def test_task_answers_follow_the_script_while_the_clock_advances():
    task = make_task(Script(poll429=1, unknown_status=1, nourl=2))
    first = task.answer_query(T0 + 1)
    weird = task.answer_query(T0 + 2)
    running = task.answer_query(T0 + 50)
    no_url = [task.answer_query(T0 + 100 + i) for i in range(2)]
    final = task.answer_query(T0 + 103)
    assert first.error is QueryError.OVERLOADED
    assert (weird.error, weird.weird, weird.snapshot.phase) == (None, True, Phase.NOT_START)
    assert (running.weird, running.snapshot.phase) == (False, Phase.IN_PROGRESS)
    assert [a.with_url for a in no_url] == [False, False]
    assert all(a.snapshot.phase is Phase.SUCCESS for a in no_url)
    assert final.with_url
    assert task.queries == 6


def test_only_finished_tasks_with_a_hook_are_due_for_notification_and_only_once():
    store = TaskStore()
    store.add(make_task(task_id="hooked", notify_hook="http://hook/", duration=10))
    store.add(make_task(task_id="silent", duration=10))
    store.add(make_task(task_id="late", notify_hook="http://hook/", duration=50))
    assert store.pop_due_notifications(T0 + 9) == []
    assert [t.task_id for t in store.pop_due_notifications(T0 + 10)] == ["hooked"]
    assert store.pop_due_notifications(T0 + 20) == []


def test_prompt_counter_counts_per_prompt_and_reset_clears_everything():
    store = TaskStore()
    store.count_submit()
    assert store.count_prompt("a") == 1
    assert store.count_prompt("a") == 2
    assert store.count_prompt("b") == 1
    store.add(make_task(notify_hook="http://hook/"))
    store.reset()
    assert store.stats() == {
        "submits": 0,
        "tasks": 0,
        "polls_total": 0,
        "polls": {},
        "downloads_total": 0,
        "downloads": {},
        "notifications": {},
    }
    assert store.count_prompt("a") == 1
    assert store.pop_due_notifications(T0 + 1000) == []


def test_stats_report_polls_per_task_and_downloads():
    store = TaskStore()
    task = make_task()
    store.add(task)
    task.answer_query(T0)
    task.answer_query(T0)
    task.downloads = 1
    stats = store.stats()
    assert stats["polls"] == {"t-1": 2}
    assert stats["polls_total"] == 2
    assert stats["downloads"] == {"t-1": 1}
