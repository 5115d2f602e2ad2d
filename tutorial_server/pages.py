"""The HTML pages' common parts: the Content-Security-Policy, where Stripe.js comes from, and
rendering a page with the headers every page carries (the checkout pages, the HTML 404).

Stripe.js is versioned by the same release names as the API since 2025 (acacia, basil,
clover, ...): https://docs.stripe.com/sdks/stripejs-versioning . The release paired with the
pinned API version is loaded from js.stripe.com/<release>/stripe.js, the URL
@stripe/stripe-js 10.2.1 (the React shop's) builds for its RELEASE_TRAIN 'endive';
js.stripe.com/v3 is the older, unversioned one.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, make_response, render_template, request

from .gateway import API_VERSION

REAL_STRIPE_JS = f"https://js.stripe.com/{API_VERSION.split('.')[1]}/stripe.js"
# Offline, the stand-in serves a mock Stripe.js at this path. The lab passes it on from its
# own address (lab/stripe_js_relay.py sets OFFLINE_STRIPE_JS_PATH); the server alone loads it
# from the stand-in itself.
STAND_IN_STRIPE_JS_PATH = "/js.stripe.com/v3/"


def _stand_in_origin() -> str | None:
    """The offline stand-in's origin when pages load the mock from it directly, else None."""
    backend = current_app.config.get("BACKEND_URL")
    if not current_app.config["SETTINGS"].offline or not backend \
            or current_app.config.get("OFFLINE_STRIPE_JS_PATH"):
        return None
    parts = urlsplit(backend)
    return f"{parts.scheme}://{parts.netloc}"


def stripe_js_sources(offline: bool) -> dict[str, list[str]]:
    """What a page's Content-Security-Policy must allow for Stripe.js."""
    if offline:
        # The mock Stripe.js and its API calls come from this server ('self'), or from the
        # stand-in when nothing passes it on.
        origin = _stand_in_origin()
        extra = [origin] if origin else []
        return {"script-src": extra, "connect-src": extra, "frame-src": []}
    # Real Stripe.js: its script, its API, the Payment Element's and 3-D Secure's iframes.
    return {"script-src": ["https://js.stripe.com", "https://*.js.stripe.com"],
            "connect-src": ["https://api.stripe.com"],
            "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com",
                          "https://hooks.stripe.com"]}


def stripe_js_url() -> str:
    """Where the pages load Stripe.js from: js.stripe.com in test mode. Offline, the lab's
    path on this server, which passes the stand-in's mock on (the mock calls the API it was
    loaded from, so the page then talks to its own origin only: from a classmate's laptop and
    behind JupyterHub's proxy too); without the lab, the stand-in's own address."""
    if not current_app.config["SETTINGS"].offline:
        return REAL_STRIPE_JS
    relay = current_app.config.get("OFFLINE_STRIPE_JS_PATH")
    if relay:
        return request.script_root + relay
    return (current_app.config.get("BACKEND_URL") or "") + STAND_IN_STRIPE_JS_PATH


def content_security_policy(stripe_js: bool) -> str:
    """Only this app, plus the Stripe.js origin in use on the page that loads Stripe.js."""
    sources = stripe_js_sources(current_app.config["SETTINGS"].offline) if stripe_js else {}
    frames = sources.get("frame-src") or ["'none'"]
    return "; ".join([
        "default-src 'self'",
        " ".join(["script-src", "'self'", *sources.get("script-src", [])]),
        " ".join(["connect-src", "'self'", *sources.get("connect-src", [])]),
        " ".join(["frame-src", *frames]),
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def page(template: str, status: int = 200, *, stripe_js: bool = False, **context):
    """Render a template with the pages' headers: the CSP, nosniff, and no caching (a
    checkout page carries its order's client secret)."""
    settings = current_app.config["SETTINGS"]
    html = render_template(template, mode=settings.mode, offline=settings.offline, **context)
    response = make_response(html, status)
    response.headers["Content-Security-Policy"] = content_security_policy(stripe_js)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    # A checkout link may carry the order's access code (class mode): no Referer to other
    # sites (Stripe.js's origin). Not "no-referrer": that makes a browser send `Origin: null`
    # with same-origin POSTs, which security.py refuses.
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def html_page(template: str, status: int = 200, **context):
    """A page without Stripe.js (the HTML 404), in the checkout pages' look and CSP."""
    return page(template, status, **context)


def favicon():
    """The lab's icon (the JupyterLab launcher's too), for browsers that ask /favicon.ico
    whatever the page says: without it every page view logs a 404."""
    return current_app.send_static_file("lab-icon.svg")
