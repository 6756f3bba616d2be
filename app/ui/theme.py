"""Light and dark looks, following the OS unless the user chose one.

We set our own palettes on the Fusion style instead of relying on each platform's native
style: the colours (and their contrast) are then the same on every workstation, and dark mode
works where the native style ignores it. "system" follows ``QStyleHints.colorScheme()`` and
its change signal, so switching the OS to dark at night switches the app too.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")
LIGHT, DARK = "light", "dark"
BASE_POINT_SIZE = 12  # read at arm's length on a ward cart, not only at a desk

# role -> (light, dark). High contrast (text on base >= 12:1) and a calm clinical blue.
_COLOURS: dict[QPalette.ColorRole, tuple[str, str]] = {
    QPalette.ColorRole.Window: ("#f3f5f8", "#1c2026"),
    QPalette.ColorRole.WindowText: ("#17202b", "#e7ecf2"),
    QPalette.ColorRole.Base: ("#ffffff", "#13171c"),
    QPalette.ColorRole.AlternateBase: ("#eef2f6", "#222830"),
    QPalette.ColorRole.Text: ("#17202b", "#e7ecf2"),
    QPalette.ColorRole.PlaceholderText: ("#5f6b78", "#8d99a6"),
    QPalette.ColorRole.Button: ("#e6ebf1", "#2a313a"),
    QPalette.ColorRole.ButtonText: ("#17202b", "#e7ecf2"),
    QPalette.ColorRole.Highlight: ("#0b5cad", "#4a9ff0"),
    QPalette.ColorRole.HighlightedText: ("#ffffff", "#0b1520"),
    QPalette.ColorRole.Link: ("#0b5cad", "#7cbaf5"),
    QPalette.ColorRole.ToolTipBase: ("#17202b", "#e7ecf2"),
    QPalette.ColorRole.ToolTipText: ("#ffffff", "#17202b"),
    QPalette.ColorRole.Mid: ("#c3ccd6", "#3a434e"),
    QPalette.ColorRole.Dark: ("#9aa6b2", "#0e1115"),
    QPalette.ColorRole.Light: ("#ffffff", "#3a434e"),
}
_DISABLED_TEXT = ("#8792a0", "#66717d")

# Colours the palette has no role for: (light, dark).
_EXTRA = {
    "error": ("#b3261e", "#ff9a8f"),
    "ok": ("#1e7b34", "#74d68a"),
    "warn_bg": ("#8a4b00", "#8a4b00"),  # the shared-device banner: white on amber, both looks
    "nav_bg": ("#e4e9ef", "#232931"),
}


def resolve_scheme(theme: str, system: Qt.ColorScheme) -> str:
    """``light`` or ``dark`` for a theme setting and the OS's current scheme."""
    if theme in (LIGHT, DARK):
        return theme
    return DARK if system == Qt.ColorScheme.Dark else LIGHT


def palette_for(scheme: str) -> QPalette:
    index = 1 if scheme == DARK else 0
    palette = QPalette()
    for role, pair in _COLOURS.items():
        palette.setColor(role, QColor(pair[index]))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText,
                 QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(_DISABLED_TEXT[index]))
    return palette


def stylesheet_for(scheme: str) -> str:
    c = {name: pair[1 if scheme == DARK else 0] for name, pair in _EXTRA.items()}
    return f"""
QFrame#sidePanel {{ background: {c["nav_bg"]}; }}
QListWidget#navigation {{
    background: transparent; border: none; padding: 8px 0; font-size: 14pt; outline: 0;
}}
QStatusBar {{ border-top: 1px solid palette(mid); }}
QListWidget#navigation::item {{ padding: 12px 20px; border-left: 4px solid transparent; }}
QListWidget#navigation::item:selected {{
    border-left: 4px solid palette(highlight); background: palette(base); color: palette(text);
}}
QLabel[role="heading"] {{ font-size: 20pt; font-weight: 600; }}
QLabel[role="subtle"] {{ color: palette(placeholder-text); }}
QLabel[role="error"] {{ color: {c["error"]}; font-weight: 600; }}
QLabel[state="ok"] {{ color: {c["ok"]}; }}
QLabel[state="bad"] {{ color: {c["error"]}; font-weight: 600; }}
QFrame#sharedDeviceBanner {{ background: {c["warn_bg"]}; }}
QFrame#sharedDeviceBanner QLabel {{ color: #ffffff; font-weight: 600; font-size: 13pt; }}
QFrame#sharedDeviceBanner QPushButton {{ background: #ffffff; color: #5a3100; font-weight: 600; }}
QFrame#lockWarning {{ background: {c["warn_bg"]}; }}
QFrame#lockWarning QLabel {{ color: #ffffff; font-weight: 600; font-size: 14pt; }}
QLabel#wipedMessage {{ font-size: 16pt; }}
QFrame#notification {{ border: 1px solid {c["error"]}; border-radius: 4px; }}
QFrame#notification QLabel {{ color: {c["error"]}; font-weight: 600; }}
QLineEdit {{ padding: 6px; min-height: 28px; }}
QPushButton {{ padding: 8px 18px; min-height: 28px; }}
QPushButton:default {{
    background: palette(highlight); color: palette(highlighted-text); font-weight: 600;
}}
QStatusBar QLabel {{ padding: 2px 10px; }}
"""


class ThemeController(QObject):
    """Applies a theme setting and keeps following the OS while it is ``system``."""

    def __init__(self, app: QApplication, *, fusion_set: bool = False) -> None:
        """``fusion_set``: the application was created with ``-style Fusion`` (the
        composition root does that: it spares Python a QStyle wrapper before the first
        frame, see app/main.py); otherwise the style is set here."""
        super().__init__(app)
        self._app = app
        self.theme = "system"
        self.scheme = LIGHT
        if not fusion_set:
            app.setStyle("Fusion")
        font = app.font()
        font.setPointSize(max(font.pointSize(), BASE_POINT_SIZE))
        app.setFont(font)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._system_changed)

    def apply(self, theme: str) -> None:
        if theme not in THEMES:
            raise ValueError(f"unknown theme {theme!r}")
        self.theme = theme
        self._apply_scheme(resolve_scheme(theme, QGuiApplication.styleHints().colorScheme()))

    def _system_changed(self, scheme: Qt.ColorScheme) -> None:
        if self.theme == "system":
            self._apply_scheme(resolve_scheme("system", scheme))

    def _apply_scheme(self, scheme: str) -> None:
        self.scheme = scheme
        self._app.setPalette(palette_for(scheme))
        self._app.setStyleSheet(stylesheet_for(scheme))
