"""The one PHI tag for widgets.

A widget that shows patient data is marked with :func:`mark_phi` (a dynamic Qt property, so it
survives reparenting and needs no registry). Two features read the same tag:

* auto-lock hides every widget from :func:`phi_widgets` before showing the lock screen;
* screen-share redaction paints over :func:`phi_rects` of the shared window, every frame.

Marking a container covers its children: both features treat the container's area as PHI.
:class:`PhiLabel` is the stock way to show a :class:`~app.core.phi.Phi` value: it is marked at
birth and reveals the value only while it is shown.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import QLabel, QWidget

from app.core.phi import Phi

PHI_PROPERTY = "safeconsult_phi"
_DIRECT_CHILDREN = Qt.FindChildOption.FindDirectChildrenOnly


def mark_phi(widget: QWidget, phi: bool = True) -> QWidget:
    """Tag ``widget`` (and so its area) as showing patient data. Returns it for chaining."""
    widget.setProperty(PHI_PROPERTY, phi)
    return widget


def is_phi(widget: QWidget) -> bool:
    return bool(widget.property(PHI_PROPERTY))


def phi_widgets(root: QWidget, *, visible_only: bool = False) -> list[QWidget]:
    """Every PHI-tagged widget in ``root``'s tree, ``root`` included, outermost first.

    Children of a tagged widget are not listed separately: hiding or covering the tagged
    ancestor already covers them.
    """
    found: list[QWidget] = []

    def walk(widget: QWidget) -> None:
        if visible_only and not widget.isVisible():
            return
        if is_phi(widget):
            found.append(widget)
            return
        for child in widget.findChildren(QWidget, options=_DIRECT_CHILDREN):
            walk(child)

    walk(root)
    return found


def phi_rects(root: QWidget) -> list[QRect]:
    """The areas of ``root`` (in its own coordinates) that show PHI now, for redaction.

    Clipped to ``root``; widgets that are hidden or scrolled out of view give nothing.
    """
    bounds = root.rect()
    rects = []
    for widget in phi_widgets(root, visible_only=True):
        visible = widget.visibleRegion().boundingRect()  # already clipped by ancestors
        if visible.isEmpty():
            continue
        top_left = widget.mapTo(root, visible.topLeft())
        rect = QRect(top_left, visible.size()).intersected(bounds)
        if not rect.isEmpty():
            rects.append(rect)
    return rects


class PhiLabel(QLabel):
    """A label for one PHI value, e.g. a patient's name.

    The plain text exists in the widget only while it is on screen: it is revealed in
    ``showEvent`` and dropped in ``hideEvent`` (so a locked window holds no PHI in its labels).
    Text selection stays off: copying PHI to the clipboard is a deliberate, audited act
    elsewhere, not a side effect of a label.
    """

    def __init__(self, value: Phi[str] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        mark_phi(self)
        # Plain text: a value is data, never markup (a name with "<" must not become HTML).
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self._value = value

    def value(self) -> Phi[str] | None:
        return self._value

    def setValue(self, value: Phi[str] | None) -> None:
        self._value = value
        if self.isVisible():
            self._reveal()

    def _reveal(self) -> None:
        self.setText(self._value.reveal() if self._value is not None else "")

    def showEvent(self, event: QShowEvent) -> None:
        self._reveal()
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:
        self.clear()
        super().hideEvent(event)
