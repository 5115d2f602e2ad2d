"""Errors in Stripe's shape: {"error": {"type", "message", "param", "code"}} with a 4xx status.

Bad input never becomes a 500 or an HTML page: every HTTP error, expected or not, is answered
as JSON here, and an unexpected exception is logged on the server, never shown to the client.
"""
from __future__ import annotations

import logging

import stripe
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from .pages import html_page

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.headers = param, code, headers or {}


def stripe_error_answer(e: stripe.StripeError) -> ApiError:
    """The one mapping of a Stripe error the server did not expect to an HTTP answer.

    Code that gives a Stripe error a meaning for the order (say, "Stripe does not know this
    PaymentIntent") catches it itself; every other one comes here (see register_error_handlers).
    """
    where = f"{request.method} {request.path}" if request else "?"
    if isinstance(e, (stripe.AuthenticationError, stripe.PermissionError)):
        log.warning("Stripe refused the API key during %s", where)
        return ApiError(503, "Stripe refused the server's API key: check STRIPE_SECRET_KEY.",
                        type="api_error")
    if isinstance(e, stripe.InvalidRequestError):
        log.warning("Stripe refused a request during %s: %s", where, e.user_message or e)
        return ApiError(409, "Stripe refused this request in the payment's current state; "
                        "nothing was changed. Reload the page and try again.",
                        code="payment_intent_unexpected_state")
    log.warning("Stripe call failed during %s: %s", where, type(e).__name__)
    return ApiError(503, "Could not reach Stripe; nothing was charged. Retry later (an order "
                    "saved meanwhile is reused with the same Idempotency-Key).",
                    type="api_connection_error")


def as_api_error(e: ApiError | stripe.StripeError) -> ApiError:
    return e if isinstance(e, ApiError) else stripe_error_answer(e)


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    error = {"type": type, "message": message, "param": param}
    if code:
        error["code"] = code
    return {"error": error}


# Machines' URLs: an unknown one under these answers the JSON error, whatever the client accepts.
API_PREFIXES = ("/api/", "/webhook", "/offline-stripe/", "/dashboard/reset")


def wants_a_page() -> bool:
    """A person's browser asking for a page (it prefers HTML to JSON) at a URL that is not
    the API's: a mistyped /dashbord gets a page with links, not raw JSON."""
    if request.method not in ("GET", "HEAD") or request.path.startswith(API_PREFIXES):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def page_not_found():
    return html_page("page_not_found.html", 404, path=request.path[:200])


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(e: ApiError):
        return jsonify(error_body(e.message, e.type, e.param, e.code)), e.status, e.headers

    @app.errorhandler(stripe.StripeError)
    def _stripe_error(e: stripe.StripeError):
        return _api_error(stripe_error_answer(e))

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        if e.code == 404 and wants_a_page():
            return page_not_found()
        messages = {
            404: "Unrecognized request URL. See GET /api/products and the README for the API.",
            405: "This method is not allowed on this URL.",
            413: "Request body too large.",
        }
        code = {404: "resource_missing", 413: "request_too_large"}.get(e.code or 0)
        message = messages.get(e.code or 0, e.description or e.name)
        response = jsonify(error_body(message, "invalid_request_error", None, code))
        headers = {k: v for k, v in e.get_headers() if k.lower() == "allow"}
        return response, e.code or 400, headers

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.exception("unexpected error while handling a request")
        return jsonify(error_body("An internal error occurred. The server log has details.",
                                  "api_error")), 500

