"""The shared test-control interface answers on every service's port."""


def test_health_and_faults_on_every_service(admin):
    for a in admin.values():
        assert a.get("/-/health") == {"ok": True}
        a.add_fault(operation="X", times=2, kind="error", status=503, code="ServerBusy")
        rules = a.faults()["rules"]
        assert rules[0]["operation"] == "X" and rules[0]["times"] == 2
        a.clear_faults()
        assert a.faults()["rules"] == []


def test_clock_moves(admin):
    a = admin["ots"]
    before = a.get("/-/clock")
    after = a.advance_clock(3_600_000)
    assert after["offset_ms"] == before["offset_ms"] + 3_600_000
    assert after["now_ms"] - before["now_ms"] >= 3_600_000
