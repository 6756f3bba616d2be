"""UI language: English in the source, Simplified Chinese through Qt's translation catalogue.

The language is the user's setting if set, else the first OS UI language we support. It can
change at runtime: installing a translator makes Qt send ``LanguageChange`` to every widget,
and each widget re-applies its strings in ``retranslate()`` (see ``changeEvent`` overrides).
The ``.qm`` catalogues are compiled from ``app/ui/i18n/*.ts`` by scripts/bootstrap.sh.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLocale, QTranslator

log = logging.getLogger(__name__)

ENGLISH = "en"
CHINESE = "zh_CN"
# Shown in the language menu in their own script, so a user can find theirs whatever the
# current language is; hence not translated.
LANGUAGES: dict[str, str] = {ENGLISH: "English", CHINESE: "简体中文"}
QM_DIR = Path(__file__).resolve().parent / "i18n"
CATALOGUE = "safeconsult"

# BCP 47 tags (as QLocale.uiLanguages gives them) that mean Simplified Chinese.
_SIMPLIFIED = ("zh-hans", "zh-cn", "zh-sg", "zh-my")


def language_for_tag(tag: str) -> str | None:
    """The supported language for one UI language tag (``en-GB``, ``zh-Hans-CN``), if any."""
    tag = tag.replace("_", "-").lower()
    if tag == "zh" or tag.startswith(_SIMPLIFIED):
        return CHINESE
    if tag == "en" or tag.startswith("en-"):
        return ENGLISH
    return None


def pick_language(setting: str, ui_languages: Sequence[str]) -> str:
    """The user's setting if it is one we have, else the OS preference, else English."""
    if setting in LANGUAGES:
        return setting
    for tag in ui_languages:
        found = language_for_tag(tag)
        if found is not None:
            return found
    return ENGLISH


def system_ui_languages() -> list[str]:
    return list(QLocale.system().uiLanguages())


class LanguageSwitcher:
    """Installs the translators of one language on the application, replacing the last."""

    def __init__(self, app: QCoreApplication, qm_dir: Path = QM_DIR) -> None:
        self._app = app
        self._qm_dir = qm_dir
        self._installed: list[QTranslator] = []
        self.current = ENGLISH

    def apply(self, language: str) -> bool:
        """Switch to ``language``. False (and English stays) when its catalogue is missing."""
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        translators: list[QTranslator] = []
        if language != ENGLISH:
            ours = QTranslator(self._app)
            if not ours.load(f"{CATALOGUE}_{language}", str(self._qm_dir)):
                log.warning(
                    "translation catalogue missing; run scripts/bootstrap.sh",
                    extra={"event": "i18n_missing", "state": language},
                )
                return False
            translators.append(ours)
            # Qt's own strings (standard buttons, context menus of text fields). Imported here:
            # an English start needs no QLibraryInfo (one Qt type fewer before the first frame).
            from PySide6.QtCore import QLibraryInfo

            qt_base = QTranslator(self._app)
            qt_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
            if qt_base.load(f"qtbase_{language}", qt_dir):
                translators.append(qt_base)
        for old in self._installed:
            QCoreApplication.removeTranslator(old)
        for new in translators:
            QCoreApplication.installTranslator(new)
        self._installed = translators
        self.current = language
        # Numbers and dates follow the UI language, not only the words.
        QLocale.setDefault(QLocale(language))
        return True


_PLACEHOLDER = re.compile(r"%(\d)")


def fill(template: str, *args: str) -> str:
    """Qt-style ``%1``, ``%2`` substitution in one pass (a value containing "%2" stays as is).

    Translations may reorder the placeholders, which is why they are numbered.
    """
    return _PLACEHOLDER.sub(
        lambda m: args[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(args) else m.group(0),
        template,
    )
