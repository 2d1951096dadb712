"""The browser check the report pages go through (tests/browser.py) catches what it is for:
a script error or a console message is reported; an empty page is blank. (A file:// image that
does not load logs nothing in headless Chromium: the report pages embed their charts as data
URIs, and their integration test checks those.)"""

from tests import browser


def test_console_messages_and_script_errors_are_reported(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        "<html><body><h1>Weekly reports</h1><script>console.error('boom'); notDefined();</script></body></html>"
    )
    shown = browser.render(page, tmp_path / "bad.png")
    assert len(shown.console) == 2
    assert '"boom"' in shown.console[0] and "notDefined is not defined" in shown.console[1]


def test_an_empty_page_is_blank_and_a_page_with_text_is_not(tmp_path):
    empty, text = tmp_path / "empty.html", tmp_path / "text.html"
    empty.write_text("<html><body></body></html>")
    text.write_text("<html><body><h1>Weekly reports</h1><p>ath_0001: 3 sessions</p></body></html>")
    assert browser.render(empty, tmp_path / "empty.png") == browser.Rendered([], 1)
    shown = browser.render(text, tmp_path / "text.png")
    assert shown.console == [] and shown.distinct_colours > 2
