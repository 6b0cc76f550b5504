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
        "gets_per_second": {},
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


def test_error_sequence_runs_429_then_empty_429_then_500_then_the_502s_then_404():
    script = Script(poll429=1, poll429_empty=1, poll500=1, poll502=1, poll502_empty=1, poll404=1)
    assert [query_error(script, n) for n in range(1, 8)] == [
        QueryError.OVERLOADED,
        QueryError.OVERLOADED_EMPTY,
        QueryError.FAILED,
        QueryError.PROXY_502,
        QueryError.PROXY_502_EMPTY,
        QueryError.NOT_FOUND_PAGE,
        None,
    ]


def test_task_not_exist_comes_first_and_does_not_use_up_the_error_sequence():
    task = make_task(Script(task_not_exist=2, poll429=1))
    errors = [task.answer_query(T0 + 1).error for _ in range(4)]
    assert errors == [
        QueryError.TASK_NOT_EXIST,
        QueryError.TASK_NOT_EXIST,
        QueryError.OVERLOADED,
        None,
    ]


def test_poll401_after_k_queries_refuses_n_queries_then_answers_again():
    task = make_task(Script(poll401=2, poll401_after=1))
    errors = [task.answer_query(T0 + 1).error for _ in range(4)]
    assert errors == [None, QueryError.QUOTA_EXHAUSTED, QueryError.QUOTA_EXHAUSTED, None]


def test_poll401_after_k_without_a_count_refuses_for_good():
    task = make_task(Script(poll401_after=1))
    errors = [task.answer_query(T0 + 1).error for _ in range(5)]
    assert errors == [None] + [QueryError.QUOTA_EXHAUSTED] * 4


def test_poll401_from_an_instant_refuses_from_then_on():
    task = make_task(Script(poll401_after_s=10), duration=100)
    task.auth_from = T0 + 10
    assert task.answer_query(T0 + 9).error is None
    assert task.answer_query(T0 + 10).error is QueryError.QUOTA_EXHAUSTED
    assert task.answer_query(T0 + 200).error is QueryError.QUOTA_EXHAUSTED
    assert task.queries == 3


def test_null_data_answers_come_first_among_the_answered_queries():
    task = make_task(Script(poll429=1, null_data=1))
    answers = [task.answer_query(T0 + 1) for _ in range(3)]
    assert [a.error for a in answers] == [QueryError.OVERLOADED, None, None]
    assert [a.null_data for a in answers[1:]] == [True, False]


def test_openai_failure_makes_the_task_fail_and_safety_makes_it_succeed():
    assert make_task(Script(openai_failure=True)).snapshot(T0 + 100).phase is Phase.FAILURE
    assert make_task(Script(safety=True)).snapshot(T0 + 100).phase is Phase.SUCCESS
