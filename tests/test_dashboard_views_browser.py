"""The dashboard as the room sees it and as a keyboard and a screen reader use it (issue 24):
a reset clears every view and stops asking for the order that is gone; thirty learner names
read in full at 1280x720; focus and scroll survive a refresh, Demo order and the view tabs; at
200 % zoom (640x360) no column is cut off; the Follow view's projector mode fits one order on a
1280x720 screen with the trace as a list beside its diagram. axe-core checks every state;
screenshots of the projector views go to test-artifacts/screenshots/projector-*.png."""
from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect

from tutorial_server.lab.reset import reset_running_lab
from tutorial_server.lab.shop import DIST
from tutorial_server.notebook.customer import pay_with_test_card

from .axe import AXE_JS, record, run_axe
from .browsers import SCREENSHOTS
from .running_lab import RunningLab, new_webhook_secret, wait_for


@pytest.fixture(scope="module", autouse=True)
def built():
    if not (DIST / "vendor" / "mermaid.min.js").is_file():
        pytest.fail("The Mermaid library is not built: run `make client`.")
    if not AXE_JS.exists():
        pytest.fail("axe-core is missing: run `make node_modules/.installed` (npm ci).")


@contextmanager
def dashboard_page(browser, width=1280, height=720, scale=1):
    # bypass_csp: only so axe can be injected; the page still sends its CSP.
    context = browser.new_context(viewport={"width": width, "height": height},
                                  device_scale_factor=scale, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error"
            and "404" not in m.text else None)  # a gone order's 404 is expected once
    try:
        yield page
    finally:
        context.close()


def axe_clean(page, name: str) -> None:
    violations = run_axe(page)
    record(f"dashboard: {name}", violations)
    assert violations == [], (name, violations)


def paid_order(lab, customer) -> str:
    order = lab.order("prod_enamel_mug", 1, customer)["order"]
    pay_with_test_card(lab.gateway(), order["payment_intent"], "success")
    lab.wait_for_status(order["id"], "paid")
    return order["id"]


def active(page) -> str:
    return page.evaluate("document.activeElement.id || document.activeElement.getAttribute("
                         "'aria-label') || document.activeElement.tagName")


def expect_lab_empty_everywhere(page, order_id: str) -> None:
    expect(page.locator("#follow-summary")).to_have_text(
        f"No order {order_id} on this server: the lab is empty.")
    expect(page.locator("#journey li.done, #journey li.current, #journey li[aria-current]")) \
        .to_have_count(0)
    expect(page.locator("#trace-diagram > *")).to_have_count(0)
    expect(page.locator("#trace-list li")).to_have_count(0)
    expect(page.locator("#follow-events tbody tr")).to_have_count(0)
    expect(page.locator("#follow-now")).to_have_text("")
    for view, boxes in (("orders", ("#orders", "#payments")), ("webhooks", ("#deliveries", "#events")),
                        ("learners", ("#learners",))):
        page.locator(f"#tab-{view}").click()
        for box in boxes:
            expect(page.locator(box)).to_contain_text("the lab is empty")
        axe_clean(page, f"{view} view after a reset")
    expect(page.locator('.step-count')).to_have_text(["–", "0", "–", "0", "0", "0"])


def test_a_reset_empties_every_view_and_the_gone_order_is_asked_for_no_more(fresh_lab, customer,
                                                                                browser):
    lab = fresh_lab
    with dashboard_page(browser) as page:
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/api/orders/" in r.url else None)
        for how in ("the dashboard's button", "the CLI's reset --yes"):
            order_id = paid_order(lab, customer)
            page.goto(f"{lab.url}/dashboard#follow={order_id}")
            expect(page.locator('#journey li[data-step="6"]')).to_have_class("current")
            expect(page.locator("#trace-diagram svg")).to_be_visible()
            axe_clean(page, "following a paid order")
            if how == "the dashboard's button":
                page.locator("#reset-open").click()
                page.get_by_role("button", name="Yes, reset the lab").click()
            else:
                reset_running_lab(lab.url)  # what `python -m tutorial_server.lab reset --yes` does
            expect(page.locator("#demo-link")).to_have_text("The lab was reset: it is empty.")
            expect_lab_empty_everywhere(page, order_id)
            page.locator("#tab-follow").click()
            expect(page.locator("#follow-summary")).to_contain_text("the lab is empty")
            axe_clean(page, f"Follow view of a gone order, after {how}")
            mine = lambda: len([u for u in asked if order_id in u])  # noqa: E731
            before = mine()
            time.sleep(5)  # three polls of the page, two of the trace
            assert mine() == before, f"the gone order is still polled after {how}"
        assert page.problems == [], page.problems


def test_thirty_learner_names_read_in_full_at_720p(tmp_path, browser):
    roster = tmp_path / "class.txt"
    names = [f"learner{n:02d}" for n in range(1, 31)]
    roster.write_text("\n".join(names) + "\n")
    lab = RunningLab(tmp_path / "lab.sqlite3", new_webhook_secret(), tmp_path / "lab.log",
                     args=["--roster", str(roster)]).start()
    try:
        for name in names[:12]:
            lab.order("prod_drip_bags", 1, name)
        with dashboard_page(browser) as page:
            page.goto(f"{lab.url}/dashboard#learners")
            expect(page.locator("#learners li")).to_have_count(30)
            shown = page.eval_on_selector_all("#learners li b", """bs => bs.map(b => ({
                text: b.innerText, fits: b.scrollWidth <= b.clientWidth + 1,
                inside: b.getBoundingClientRect().right <= b.closest('li').getBoundingClientRect().right}))""")
            assert sorted(s["text"] for s in shown) == names  # each in full, so all distinct
            assert all(s["fits"] and s["inside"] for s in shown), shown
            bottom = page.evaluate("document.querySelector('main').getBoundingClientRect().bottom")
            assert bottom <= 720, bottom
            page.screenshot(path=str(SCREENSHOTS / "projector-learners.png"))
            axe_clean(page, "learners view, 30 names")
    finally:
        lab.stop()


def test_focus_and_scroll_survive_a_refresh_demo_order_and_the_tabs(fresh_lab, customer, browser):
    lab = fresh_lab
    first = lab.order("prod_drip_bags", 1, customer)["order"]
    with dashboard_page(browser, 1280, 260) as page:  # short: the page scrolls
        page.goto(f"{lab.url}/dashboard")
        link = page.get_by_role("link", name=f"Follow {customer}'s order {first['id']}")
        link.focus()
        page.evaluate("window.scrollTo(0, 60)")
        y = page.evaluate("window.scrollY")
        assert y > 0
        lab.order("prod_enamel_mug", 1, customer)  # a new order arrives: the table is redrawn
        expect(page.locator("#orders tbody tr")).to_have_count(2)
        expect(page.locator("#orders tbody tr.fresh")).to_have_count(1)
        assert active(page) == f"Follow {customer}'s order {first['id']}"
        assert page.evaluate("window.scrollY") == y
        # A view tab: focus stays on it, the page does not jump to the table of the same id.
        page.locator("#tab-webhooks").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#view-webhooks")).to_be_visible()
        assert active(page) == "tab-webhooks"
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Shift+Tab")  # back along the tabs to the first
        assert active(page) == "tab-orders"
        page.keyboard.press("Enter")
        expect(page.locator("#view-orders")).to_be_visible()
        assert active(page) == "tab-orders" and page.url.endswith("#orders")
        # Demo order: focus stays on the button, its link is announced outside every view.
        page.locator("#demo-order").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#demo-link")).to_contain_text("Demo order order_")
        expect(page.locator("#view-follow")).to_be_visible()
        assert active(page) == "demo-order"
        assert page.locator("#demo-link").evaluate("el => !el.closest('.view')")
        axe_clean(page, "after Demo order")
        assert page.problems == [], page.problems


NO_COLUMN_LOST = """() => [...document.querySelectorAll('main table')].filter(t => t.offsetParent)
    .flatMap(t => {
      const box = t.closest('.scroll-box');
      const right = box.getBoundingClientRect().left + box.scrollWidth;
      const scrolls = box.scrollWidth > box.clientWidth;
      return [...t.tHead.rows[0].cells].filter(th => {
        const r = th.getBoundingClientRect();
        const reachable = r.right <= innerWidth + 1 || (scrolls && box.tabIndex === 0
          && getComputedStyle(box).overflowX === 'auto' && r.right <= right + 1);
        return !reachable || r.width < 10;
      }).map(th => t.id + ': ' + th.textContent);
    })"""


def test_at_200_percent_zoom_no_column_is_lost(fresh_lab, customer, browser):
    lab = fresh_lab
    order_id = paid_order(lab, customer)
    lab.order("prod_drip_bags", 2, customer)
    with dashboard_page(browser, 640, 360, scale=2) as page:  # 1280x720 at 200 %
        for view in ("orders", "webhooks", f"follow={order_id}"):
            page.goto(f"{lab.url}/dashboard#{view}")
            expect(page.locator("#live")).to_contain_text("live")
            if view == "webhooks":
                expect(page.locator("#events tbody")).to_contain_text("fulfilled")
            if view.startswith("follow"):
                expect(page.locator("#trace-list li").first).to_be_visible()
            page.wait_for_timeout(300)  # the boxes' ResizeObserver
            assert page.evaluate(NO_COLUMN_LOST) == [], view
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 640, (view, width)
            page.screenshot(path=str(SCREENSHOTS / f"zoom-200-{view.split('=')[0]}.png"),
                            full_page=True)
            axe_clean(page, f"{view.split('=')[0]} view at 200 % zoom")
        assert page.problems == [], page.problems


def test_projector_mode_fits_one_orders_six_steps_on_720p(fresh_lab, customer, browser):
    lab = fresh_lab
    order_id = paid_order(lab, customer)
    steps = sorted({m["step"] for m in lab.get(f"/api/orders/{order_id}/trace").json()["data"]})
    with dashboard_page(browser) as page:
        page.goto(f"{lab.url}/dashboard#follow={order_id}")
        expect(page.locator("#trace-diagram svg")).to_be_visible()
        axe_clean(page, "Follow view")
        page.get_by_role("button", name="Projector mode").click()
        expect(page.locator("#projector")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#trace-condensed")).to_be_checked()
        svg = page.locator("#trace-diagram svg")
        arrows = svg.locator(":is(.messageLine0, .messageLine1)")
        expect(arrows).to_have_count(len(steps))
        # The text version: one item per arrow, each saying its step, who and what.
        items = page.locator("#trace-list li")
        expect(items).to_have_count(len(steps))
        texts = items.all_inner_texts()
        assert [t.split(" · ")[0] for t in texts] == [f"Step {n}" for n in steps], texts
        assert all(" → " in t and "+" in t for t in texts), texts
        assert svg.get_attribute("role") == "img"
        assert f"order {order_id}: {len(steps)} arrows" in svg.get_attribute("aria-label")
        box = svg.bounding_box()
        assert box["y"] < 360 and box["y"] + box["height"] <= 720, box
        assert page.evaluate("document.documentElement.scrollHeight") <= 720
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        list_box = page.locator("#trace-steps").bounding_box()
        assert list_box["x"] >= box["x"] + box["width"] - 1  # beside the diagram
        page.screenshot(path=str(SCREENSHOTS / "projector-follow-condensed.png"))
        axe_clean(page, "Follow view, projector mode, condensed")
        page.get_by_label("full: every message").check()
        expect(page.locator("#trace-text")).not_to_contain_text("condensed:")
        expect(arrows).not_to_have_count(len(steps))
        wait_for(lambda: items.count() > len(steps))
        assert page.evaluate("document.documentElement.scrollHeight") <= 720
        page.screenshot(path=str(SCREENSHOTS / "projector-follow-full.png"))
        axe_clean(page, "Follow view, projector mode, full")
        for view in ("orders", "webhooks"):
            page.locator(f"#tab-{view}").click()
            expect(page.locator("#steps")).to_be_visible()  # projector mode is the Follow view's
            page.screenshot(path=str(SCREENSHOTS / f"projector-{view}.png"))
        assert page.problems == [], page.problems
