"""Step 5 as most learners build it: the React shop (client/), served by this server.

GET /shop/                    the built client (client/dist/index.html)
GET /shop/assets/<file>       its script and stylesheet (content-hashed names)

The shop is built from source by `make client` (Node.js and npm; see client/README.md), and
talks to this server only through the HTTP API everyone else uses (/api/config,
/api/products, /api/orders, and offline /checkout/<id>/confirm). Without a build, /shop/ says
how to make one. Its page gets the checkout page's Content-Security-Policy: scripts from this
origin only, plus the Stripe.js origin in use (offline that is this server too).
"""
from __future__ import annotations

import sys
from pathlib import Path

from flask import Blueprint, current_app, make_response, send_from_directory

from ..config import PROJECT_ROOT
from ..pages import content_security_policy
from .course_folder import course_folder

bp = Blueprint("shop", __name__, url_prefix="/shop")

DIST = PROJECT_ROOT / "client" / "dist"  # where `make client` builds
# An installed copy (Binder / a class hub image installs the package, not the repository): a
# build copied into the environment beside the notebooks, outside the learners' homes.
INSTALLED_DIST = Path(sys.prefix) / "share" / "stripe-payments-lab" / "shop"
ASSET_MAX_AGE = 365 * 24 * 3600  # asset names change with their content

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop not built · Stripe payments lab</title>
</head><body><main><h1>The React shop is not built yet</h1>
<p>The shop at <code>/shop/</code> is built from <code>client/</code> with Node.js (20.19 or
later) and npm. In the project folder run <code>make client</code> (without make: in
<code>client/</code>, <code>npm ci</code> then <code>npm run build</code>), then reload this page.</p>
<p>Meanwhile the <a href="../dashboard">dashboard</a> and every checkout page work without it.</p>
</main></body></html>
"""


def dist_folder() -> Path:
    """The build: `make client`'s in the package's folder; else, for a plain `pip install .`
    started in a clone, the clone's; else an installed copy's."""
    if current_app.config.get("SHOP_DIST"):
        return Path(current_app.config["SHOP_DIST"])
    folder = course_folder()
    for dist in (DIST, folder / "client" / "dist" if folder else DIST, INSTALLED_DIST):
        if dist.is_dir():
            return dist
    return DIST


def _secured(response):
    response.headers["Content-Security-Policy"] = content_security_policy(stripe_js=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/")
def index():
    page = dist_folder() / "index.html"
    if not page.is_file():
        return _secured(make_response(NOT_BUILT, 503))
    response = make_response(page.read_bytes())
    response.mimetype = "text/html"
    # Small, and it names the current build's assets: always ask again.
    response.headers["Cache-Control"] = "no-cache"
    return _secured(response)


@bp.get("/assets/<path:filename>")
def asset(filename: str):
    response = send_from_directory(dist_folder() / "assets", filename, max_age=ASSET_MAX_AGE)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
