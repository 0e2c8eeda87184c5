"""The one place anything reaches Allure: the files a failed test's artifacts writer listed.

Only called when allure-pytest is loaded and writing results (``--alluredir``,
:func:`.runstate.allure_active`); ``.walredo`` dumps and pages are attached as
``application/octet-stream`` with their extension, the rest as text.
"""

from __future__ import annotations

from collections.abc import Sequence

from .artifacts import Artifact

__all__ = ["attach"]


def attach(artifacts: Sequence[Artifact]) -> None:
    """Attach every artifact to the current test's Allure result, in order."""
    import allure

    for a in artifacts:
        if a.mime.startswith("text/"):
            allure.attach.file(str(a.path), name=a.name, attachment_type=allure.attachment_type.TEXT)
        else:
            allure.attach.file(str(a.path), name=a.name, attachment_type=a.mime, extension=a.extension)
