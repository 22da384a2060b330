import re
import pytest
from tests.e2e.test_browser import Tab
pytestmark = pytest.mark.browser

@pytest.fixture
def tab(browser, live_server):
    t = Tab(browser, live_server.url)
    yield t
    t.close()

def test_probe(tab, live_server):
    tab.login(live_server.seeded.emails["admin"])
    page = tab.page
    gid = live_server.seeded.grace_id
    page.goto(f"{live_server.url}/customers/{gid}/edit"); print("edit get", len(tab.errors))
    page.screenshot(path="/tmp/p1.png"); print("shot1", len(tab.errors))
    page.get_by_label("Primary e-mail").fill("broken"); print("fill", len(tab.errors))
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_load_state("networkidle"); print("post", len(tab.errors), tab.errors[-1:] )
    page.screenshot(path="/tmp/tmp-error.png"); print("shot2", len(tab.errors))
    page.goto(f"{live_server.url}/customers/{gid}"); print("detail", len(tab.errors))
    page.screenshot(path="/tmp/p3.png", full_page=True); print("shot3", len(tab.errors))
