"""The task hub's SQLite writes the engine relies on, against a real SQLite database."""

from devhost.durable.store import Store


def hub_with_one_instance(tmp_path) -> Store:
    store = Store(str(tmp_path / "hub.sqlite"))
    with store.transaction() as db:
        Store.insert_instance(db, "order-1", "Pipeline", "Running", '"in"', 100.0, None, "gen-1", "{}")
        Store.append_history(db, "order-1", 0, [{"EventType": 0}, {"EventType": 12}])
        Store.add_message(db, "order-1", "gen-1", {"kind": "event"}, 100.0)
        Store.add_work(db, "order-1", "gen-1", 0, "render", None, 100.0)
    return store


def test_finished_instance_keeps_its_history_but_nothing_pending(tmp_path):
    store = hub_with_one_instance(tmp_path)
    with store.transaction() as db:
        Store.drop_pending(db, "order-1")
        Store.update_instance(db, "order-1", "Completed", '"in"', '"out"', None, False, 101.0, "gen-1", "{}")
    assert store.inbox() == [] and store.work() == []
    assert len(store.history("order-1")) == 2
    row = store.instance("order-1")
    assert (row["status"], row["output"], row["updated"]) == ("Completed", '"out"', 101.0)


def test_continue_as_new_drops_the_old_generation_but_not_the_instance(tmp_path):
    store = hub_with_one_instance(tmp_path)
    with store.transaction() as db:
        Store.drop_generation(db, "order-1")
        assert Store.instance_status(db, "order-1") == "Running"
        assert Store.instance_status(db, "order-2") is None
    assert store.history("order-1") == [] and store.inbox() == [] and store.work() == []


def test_custom_status_changes_only_when_the_orchestrator_replayed(tmp_path):
    store = hub_with_one_instance(tmp_path)
    with store.transaction() as db:
        Store.update_instance(db, "order-1", "Running", None, None, '"step 1"', True, 101.0, "gen-1", "{}")
        Store.update_instance(db, "order-1", "Suspended", None, None, None, False, 102.0, "gen-1", "{}")
    assert store.instance("order-1")["custom_status"] == '"step 1"'


def test_a_completion_counts_once(tmp_path):
    store = hub_with_one_instance(tmp_path)
    row_id = store.work()[0].row_id
    with store.transaction() as db:
        assert Store.delete_work(db, row_id) is True
        assert Store.delete_work(db, row_id) is False   # already gone: terminated or purged
        message_ids = [row["id"] for row in store.inbox()]
        Store.delete_messages(db, message_ids)
    assert store.inbox() == []
