"""Issue #8's "view an image" and "open patient data" in the image viewer of a window signed
in through its own form against the real server: opening a series and looking at it (first
pane, side by side, scrolling) is one ``client.image.open`` entry; showing its DICOM header
(patient name, ID, birth date) in the tag panel, however often, is one
``client.patient.open``; opening the files again is a new opening, so one more of each. The
entries go through the session's one audit call (hash-chained, device-signed, uploaded)."""

from __future__ import annotations

from app.ui.phi import is_phi
from tests.support.clients import server_db
from tests.support.dicom_gen import write_ct_series
from tests.support.signed_in import run


def _access_rows(server, device_id: str) -> list[tuple[str, str, str, str]]:
    return [tuple(r) for r in server_db(server).connection().execute(
        "SELECT action, object_type, object_id, outcome FROM audit_log WHERE device_id = ?"
        " AND action IN ('client.image.open', 'client.patient.open') ORDER BY seq",
        (device_id,))]


def test_viewing_a_series_and_its_header_is_audited_once_per_opening(
    qtbot, open_server, signed_in_window, tmp_path,
):
    paths = write_ct_series(tmp_path / "ct", 4, rows=64, cols=64)
    window = signed_in_window(open_server, "dr.viewer", "physician")
    window.workspace.show_area("images")
    view = window.workspace.views["images"]
    session = window.login._sign_in.__self__.service  # the SessionLink's session service
    device_id = session.device.device_id

    run(qtbot, view.open_paths(paths))
    handle = view.active.handle
    assert handle is not None
    run(qtbot, session.audit.flush())
    assert _access_rows(open_server, device_id) == [
        ("client.image.open", "series", handle.object_id, "ok")]  # tag panel still closed
    view.canvas.set_index(2)  # scrolling is not a new view
    view.set_side_by_side(True)  # the same series beside: not a new view either
    view.set_side_by_side(False)
    view.set_tags_visible(True)
    assert view.tag_panel.isVisible() and is_phi(view.tag_panel)
    view.canvas.set_index(1)  # another slice's header: the same patient data
    view._update_tags()
    view.set_tags_visible(False)
    view.set_tags_visible(True)
    run(qtbot, session.audit.flush())
    oid = handle.object_id
    assert _access_rows(open_server, device_id) == [
        ("client.image.open", "series", oid, "ok"),
        ("client.patient.open", "series", oid, "ok")]

    # The same files opened again: a new opening, looked at again, with the panel open.
    run(qtbot, view.open_paths(paths))
    assert view.active.handle is not handle
    run(qtbot, session.audit.flush())
    assert sorted(_access_rows(open_server, device_id)[2:]) == [
        ("client.image.open", "series", oid, "ok"),
        ("client.patient.open", "series", oid, "ok")]
