"""The one place anything reaches Allure: the files a failed test's artifacts writer listed, the
run's corpus table and each test's oracle label.

Only called when allure-pytest is loaded and writing results (``--alluredir``,
:func:`.runstate.allure_active`); ``.walredo`` dumps and pages are attached as
``application/octet-stream`` with their extension, the rest as text.
"""

from __future__ import annotations

from collections.abc import Sequence

from .artifacts import Artifact

__all__ = ["attach", "attach_global_text", "label"]


def attach(artifacts: Sequence[Artifact]) -> None:
    """Attach every artifact to the current test's Allure result, in order."""
    import allure

    for a in artifacts:
        if a.mime.startswith("text/"):
            allure.attach.file(str(a.path), name=a.name, attachment_type=allure.attachment_type.TEXT)
        else:
            allure.attach.file(str(a.path), name=a.name, attachment_type=a.mime, extension=a.extension)


def attach_global_text(name: str, text: str) -> None:
    """Attach ``text`` to the run as a whole (Allure's global attachments, shown on the report's
    overview), not to one test."""
    import allure

    allure.global_attach(text, name=name, attachment_type=allure.attachment_type.TEXT)


def label(name: str, value: str) -> None:
    """Add a label to the current test's Allure result."""
    import allure

    allure.dynamic.label(name, value)
