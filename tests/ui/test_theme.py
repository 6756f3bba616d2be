"""Light and dark looks: explicit choice, following the OS, and the saved preference."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette

from app.config import Settings
from app.ui.theme import DARK, LIGHT, palette_for, resolve_scheme


def window_lightness(app) -> int:
    return app.palette().color(QPalette.ColorRole.Window).lightness()


@pytest.mark.parametrize(
    ("theme", "system", "expected"),
    [
        ("system", Qt.ColorScheme.Dark, DARK),
        ("system", Qt.ColorScheme.Light, LIGHT),
        ("system", Qt.ColorScheme.Unknown, LIGHT),
        ("light", Qt.ColorScheme.Dark, LIGHT),
        ("dark", Qt.ColorScheme.Light, DARK),
    ],
)
def test_resolve_scheme(theme, system, expected):
    assert resolve_scheme(theme, system) == expected


@pytest.mark.parametrize("scheme", [LIGHT, DARK])
def test_text_contrast_is_high(scheme):
    """Readable at a distance: text on base at least 7:1 (WCAG AAA)."""
    palette = palette_for(scheme)

    def luminance(role) -> float:
        def channel(c: float) -> float:
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
        color = palette.color(role)
        r, g, b = (channel(v) for v in (color.redF(), color.greenF(), color.blueF()))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    role = QPalette.ColorRole
    for fg, bg, needed in ((role.Text, role.Base, 7), (role.WindowText, role.Window, 7),
                           (role.HighlightedText, role.Highlight, 4.5)):
        hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
        assert (hi + 0.05) / (lo + 0.05) >= needed, (scheme, fg)


def test_menu_switches_theme_and_saves_it(qapp, make_window, theme):
    saved: list[Settings] = []
    window = make_window(saved=saved)
    window.theme_actions["dark"].trigger()
    assert window_lightness(qapp) < 80
    assert window.theme_actions["dark"].isChecked()
    assert saved[-1].theme == "dark"
    window.theme_actions["light"].trigger()
    assert window_lightness(qapp) > 200
    assert saved[-1].theme == "light"


def test_system_theme_follows_the_os(qapp, theme):
    hints = QGuiApplication.styleHints()
    theme.apply("system")
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)  # what the platform does at dusk
    assert theme.scheme == DARK and window_lightness(qapp) < 80
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert theme.scheme == LIGHT and window_lightness(qapp) > 200


def test_explicit_theme_ignores_the_os(qapp, theme):
    theme.apply("light")
    QGuiApplication.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert theme.scheme == LIGHT


def test_unknown_theme_is_refused(theme):
    with pytest.raises(ValueError):
        theme.apply("sepia")


def test_dark_screenshot(qapp, make_window, theme, save_screenshot):
    from app.services.app_state import AppState, ConnectionState, SignedInUser

    state = AppState(user=SignedInUser("u2", "it.li", "it_admin", "d2"),
                     connection=ConnectionState.ONLINE)
    window = make_window(state=state)
    theme.apply("dark")
    window.show()
    window.workspace.show_area("admin")
    # Stylesheet colours follow the scheme too (the navigation background is dark).
    assert window.workspace.navigation.grab().toImage().pixelColor(5, 5).lightness() < 80
    save_screenshot(window, "main-dark.png")
