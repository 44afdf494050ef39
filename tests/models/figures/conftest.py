"""One headless Chromium for the whole session; without Chromium or Playwright its tests are skipped."""
import pytest

from browser import INSTALL_HINT, browser_available, launch_chromium


@pytest.fixture(scope="session")
def browser():
    if not browser_available():
        pytest.skip(INSTALL_HINT)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser):
    """open_page(path[, viewport]) -> (page, requests, problems): the page from its file:// URL in a
    fresh context, with every request it made and every console error or uncaught exception."""
    contexts = []

    def open_(path, viewport=None):
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        requests, problems = [], []
        context.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(path.resolve().as_uri())
        page.wait_for_function("window.explorer && window.explorer.state")
        return page, requests, problems

    yield open_
    for context in contexts:
        context.close()
