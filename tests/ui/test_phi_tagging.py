"""One PHI tag for widgets: marking, the tree walk lock and redaction use, and PhiLabel."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.core.phi import PLACEHOLDER, Phi
from app.ui.phi import PhiLabel, is_phi, mark_phi, phi_rects, phi_widgets

NAME = "Zhang Wei"


@pytest.fixture
def tree(qtbot):
    """root > [plain label, phi panel > [inner label], plain box > [phi label]]"""
    root = QWidget()
    root.resize(400, 300)
    layout = QVBoxLayout(root)
    layout.setContentsMargins(0, 0, 0, 0)
    plain = QLabel("Consults")
    panel = mark_phi(QWidget())
    QVBoxLayout(panel).addWidget(QLabel("inside the PHI panel"))
    box = QWidget()
    deep = PhiLabel(Phi(NAME))
    QVBoxLayout(box).addWidget(deep)
    for widget in (plain, panel, box):
        layout.addWidget(widget)
    qtbot.addWidget(root)
    return root, plain, panel, box, deep


def test_mark_and_unmark(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    assert not is_phi(widget)
    assert mark_phi(widget) is widget and is_phi(widget)
    mark_phi(widget, False)
    assert not is_phi(widget)


def test_walk_finds_tagged_widgets_outermost_first(tree):
    root, _plain, panel, _box, deep = tree
    assert phi_widgets(root) == [panel, deep]  # the label inside the panel is covered by it


def test_walk_includes_a_tagged_root(tree):
    _root, _plain, panel, _box, _deep = tree
    assert phi_widgets(panel) == [panel]


def test_visible_only_skips_hidden_branches(qtbot, tree):
    root, _plain, panel, box, deep = tree
    with qtbot.waitExposed(root):
        root.show()
    assert phi_widgets(root, visible_only=True) == [panel, deep]
    box.hide()
    assert phi_widgets(root, visible_only=True) == [panel]
    assert phi_widgets(root) == [panel, deep]  # the lock still hides hidden ones too


def test_rects_are_in_root_coordinates_and_clipped(qtbot, tree):
    root, _plain, panel, _box, deep = tree
    with qtbot.waitExposed(root):
        root.show()
    rects = phi_rects(root)
    assert rects == [
        QRect(panel.mapTo(root, panel.rect().topLeft()), panel.size()),
        QRect(deep.mapTo(root, deep.rect().topLeft()), deep.size()),
    ]
    assert all(root.rect().contains(r) for r in rects)
    panel.hide()
    assert len(phi_rects(root)) == 1


def test_phi_label_reveals_only_while_shown(qtbot):
    label = PhiLabel(Phi(NAME))
    qtbot.addWidget(label)
    assert is_phi(label)
    assert label.text() == ""  # not revealed before it is on screen
    with qtbot.waitExposed(label):
        label.show()
    assert label.text() == NAME
    label.hide()
    assert label.text() == ""  # a hidden (e.g. locked) label holds no PHI
    label.setValue(Phi("Li Na"))
    assert label.text() == ""
    label.show()
    assert label.text() == "Li Na"
    label.setValue(None)
    assert label.text() == ""


def test_phi_label_value_stays_wrapped(qtbot):
    label = PhiLabel(Phi(NAME))
    qtbot.addWidget(label)
    assert str(label.value()) == PLACEHOLDER
    assert label.textInteractionFlags() == Qt.TextInteractionFlag.NoTextInteraction
    assert label.textFormat() == Qt.TextFormat.PlainText  # data, never markup
