"""GET /docs: Swagger UI on /openapi.json, from the package's files, under the strict CSP, in Chromium."""
import pytest

from support import require_tool
from rest import docs, openapi

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 20_000
METHODS = {"get", "put", "post", "delete", "patch"}


def test_the_page_loads_only_files_of_this_origin_and_no_inline_script(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert '<script src="/docs/assets/swagger-ui-bundle.js" defer>' in html
    assert '<script src="/static/docs.js" defer>' in html
    assert "<script>" not in html and "http" not in html.replace("http-equiv", "")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert 'data-spec-url="/openapi.json"' in html


@pytest.mark.parametrize("name, mimetype", [("swagger-ui-bundle.js", "text/javascript"),
                                            ("swagger-ui.css", "text/css"),
                                            ("favicon-32x32.png", "image/png")])
def test_assets_come_from_the_package(client, name, mimetype):
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 200 and response.mimetype == mimetype
    assert response.data == (docs.SWAGGER_UI_DIST / name).read_bytes()
    assert "max-age=86400" in response.headers["Cache-Control"]


@pytest.mark.parametrize("name", ["index.css", "LICENSE", "..%2Fflask_swagger_ui.py", "nope.js"])
def test_any_other_file_is_a_json_404(client, name):
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 404 and response.get_json()["status_code"] == 404


@pytest.fixture(scope="module")
def browser():
    require_tool(CHROMIUM, "the API documentation browser test")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
        yield browser
        browser.close()


def _operation_count():
    return sum(1 for item in openapi.load_spec()["paths"].values() for method in item if method in METHODS)


@pytest.mark.browser
@pytest.mark.live
def test_chromium_renders_every_operation_without_a_csp_violation(browser, live_server):
    from playwright.sync_api import expect
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    console, errors, requests = [], [], []
    page.on("console", lambda message: console.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(live_server.url + "/docs")
        expect(page.locator(".opblock").first).to_be_visible()
        expect(page.locator(".opblock")).to_have_count(_operation_count())
        expect(page.locator(".info .title")).to_contain_text("JWT API")
        # One operation opens, and its responses are those of the document.
        page.locator("#operations-tokens-createToken .opblock-summary").first.click()
        expect(page.locator("#operations-tokens-createToken .responses-table").first).to_be_visible()
        page.wait_for_timeout(300)
    finally:
        context.close()
    violations = [m for m in console if "Content Security Policy" in m]
    assert violations == [] and errors == [], (violations, errors)
    assert all(url.startswith(live_server.url) for url in requests), requests
