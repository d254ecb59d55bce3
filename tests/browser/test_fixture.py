"""The browser fixture skips only where Chromium is genuinely absent, and never in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import require_chromium


def test_an_absent_browser_skips_with_the_way_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception, match="make test` installs Debian's chromium"):
        require_chromium(tmp_path / "chromium", ci=False)


def test_an_absent_browser_fails_in_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="CI runs the browser tests"):
        require_chromium(tmp_path / "chromium", ci=True)


def test_a_file_that_is_not_executable_is_absent(tmp_path: Path) -> None:
    (tmp_path / "chromium").write_text("not a browser")
    with pytest.raises(pytest.skip.Exception):
        require_chromium(tmp_path / "chromium", ci=False)
